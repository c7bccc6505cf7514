/**
 * The sans-IO stack: fed frames (through its devices) and the time, it
 * returns frames (through its devices) and its next deadline. It owns no
 * host timers or sockets. Layering follows smoltcp: wire formats below,
 * interfaces and routing, then the UDP socket table.
 */
import type { ErrnoName } from '@moat/abi';
import type { Allocate, PacketBuffer } from './buffer.js';
import { Counters } from './counters.js';
import type { Device } from './device.js';
import { IPV4_ANY, inSubnet, type Ipv4Address } from './wire/address.js';
import { emitIpv4Header, IPPROTO_UDP, IPV4_HEADER_LEN, parseIpv4 } from './wire/ipv4.js';
import { emitUdpHeader, parseUdp, UDP_HEADER_LEN } from './wire/udp.js';
import { UdpSocket, type Endpoint } from './udp-socket.js';

export interface InterfaceConfig {
  name: string;
  device: Device;
  addr: Ipv4Address;
  prefixLength: number;
}

export interface Interface extends InterfaceConfig {}

/** Linux's default ephemeral port range (net.ipv4.ip_local_port_range). */
export const EPHEMERAL_FIRST = 32768;
export const EPHEMERAL_LAST = 60999;
const DEFAULT_TTL = 64;

export type SendResult = { ok: true } | { ok: false; errno: ErrnoName };

export class Stack {
  readonly interfaces: Interface[] = [];
  readonly counters = new Counters();
  private readonly udpByPort = new Map<number, UdpSocket>();
  private nextEphemeral = EPHEMERAL_FIRST;
  private nextIdent = 1;

  addInterface(config: InterfaceConfig): Interface {
    const iface = { ...config };
    this.interfaces.push(iface);
    return iface;
  }

  /** True when `addr` is one this host answers to (an interface address, or the loopback net). */
  isLocal(addr: Ipv4Address): boolean {
    return this.interfaces.some(
      (i) => i.addr === addr || (i.device.medium === 'ip' && inSubnet(addr, i.addr, i.prefixLength) && i.prefixLength <= 8),
    );
  }

  /** The interface a datagram to `dst` leaves by (the connected subnet). */
  route(dst: Ipv4Address): Interface | undefined {
    let best: Interface | undefined;
    for (const i of this.interfaces) {
      if (inSubnet(dst, i.addr, i.prefixLength) && (!best || i.prefixLength > best.prefixLength)) best = i;
    }
    return best;
  }

  // ---- UDP socket table -------------------------------------------------

  udpSocket(allocate: Allocate): UdpSocket {
    return new UdpSocket(allocate);
  }

  /** Binds `socket` to `local`; port 0 picks an ephemeral port. */
  udpBind(socket: UdpSocket, local: Endpoint): ErrnoName | null {
    if (socket.local) return 'EINVAL';
    if (local.addr !== IPV4_ANY && !this.isLocal(local.addr)) return 'EADDRNOTAVAIL';
    let port = local.port;
    if (port === 0) {
      const found = this.freeEphemeralPort();
      if (found === undefined) return 'EADDRINUSE';
      port = found;
    } else if (this.udpByPort.has(port)) return 'EADDRINUSE';
    socket.local = { addr: local.addr, port };
    this.udpByPort.set(port, socket);
    return null;
  }

  udpConnect(socket: UdpSocket, remote: Endpoint): ErrnoName | null {
    const iface = this.route(remote.addr);
    if (!iface) return 'ENETUNREACH';
    if (!socket.local) {
      const err = this.udpBind(socket, { addr: IPV4_ANY, port: 0 });
      if (err) return err;
    }
    socket.remote = { ...remote };
    return null;
  }

  udpClose(socket: UdpSocket): void {
    if (socket.local && this.udpByPort.get(socket.local.port) === socket) this.udpByPort.delete(socket.local.port);
    socket.clear();
  }

  /** Largest payload one datagram from this host to `dst` may carry (no fragmentation yet). */
  udpMaxPayload(dst: Ipv4Address): number {
    const iface = this.route(dst);
    return iface ? Math.min(iface.device.mtu, 65535) - IPV4_HEADER_LEN - UDP_HEADER_LEN : 0;
  }

  /**
   * Sends one datagram whole or not at all: `payload` is copied into a
   * buffer from `allocate` (the sender's share) with room for the headers.
   */
  udpSend(socket: UdpSocket, payload: Uint8Array, dst: Endpoint, allocate: Allocate): SendResult {
    const iface = this.route(dst.addr);
    if (!iface) return { ok: false, errno: 'ENETUNREACH' };
    if (payload.length > this.udpMaxPayload(dst.addr)) return { ok: false, errno: 'EMSGSIZE' };
    if (!socket.local) {
      const err = this.udpBind(socket, { addr: IPV4_ANY, port: 0 });
      if (err) return { ok: false, errno: err };
    }
    const total = IPV4_HEADER_LEN + UDP_HEADER_LEN + payload.length;
    const frame = allocate(total);
    if (!frame) return { ok: false, errno: 'ENOBUFS' };
    const src = socket.local!.addr === IPV4_ANY ? iface.addr : socket.local!.addr;
    frame.bytes.set(payload, IPV4_HEADER_LEN + UDP_HEADER_LEN);
    emitUdpHeader(socket.local!.port, dst.port, src, dst.addr, payload.length, frame.bytes, IPV4_HEADER_LEN);
    emitIpv4Header(
      {
        dscpEcn: 0,
        identification: this.nextIdent++ & 0xffff,
        dontFragment: true,
        moreFragments: false,
        fragmentOffset: 0,
        ttl: DEFAULT_TTL,
        protocol: IPPROTO_UDP,
        src,
        dst: dst.addr,
      },
      UDP_HEADER_LEN + payload.length,
      frame.bytes,
    );
    if (!iface.device.transmit(frame)) {
      this.counters.add('tx.deviceQueueFull');
      return { ok: false, errno: 'ENOBUFS' };
    }
    socket.stats.sent++;
    this.counters.add('udp.tx');
    return { ok: true };
  }

  // ---- receive path ----------------------------------------------------

  /**
   * Processes every frame waiting in the devices. Returns the next time the
   * stack needs to be polled again, or undefined when it has no timers.
   */
  poll(_now: number): number | undefined {
    for (const iface of this.interfaces) {
      for (let frame = iface.device.receive(); frame; frame = iface.device.receive()) {
        this.receiveIpv4(frame);
      }
    }
    return undefined;
  }

  private receiveIpv4(frame: PacketBuffer): void {
    try {
      this.counters.add('ipv4.rx');
      const ip = parseIpv4(frame.bytes);
      if (!ip.ok) return this.counters.add(`drop.${ip.reason}`);
      const p = ip.value;
      if (p.moreFragments || p.fragmentOffset !== 0) return this.counters.add('drop.ipv4.fragment');
      if (!this.isLocal(p.dst)) return this.counters.add('drop.ipv4.notForUs');
      if (p.protocol !== IPPROTO_UDP) return this.counters.add('drop.ipv4.protocol');
      const udp = parseUdp(p.payload, p.src, p.dst);
      if (!udp.ok) return this.counters.add(`drop.${udp.reason}`);
      const u = udp.value;
      const socket = this.udpByPort.get(u.dstPort);
      const accepts =
        socket &&
        (socket.local!.addr === IPV4_ANY || socket.local!.addr === p.dst) &&
        (!socket.remote || (socket.remote.addr === p.src && socket.remote.port === u.srcPort));
      if (!accepts) return this.counters.add('drop.udp.noSocket');
      const outcome = socket.enqueue(u.payload, { addr: p.src, port: u.srcPort });
      if (outcome === 'queued') this.counters.add('udp.rx');
      else this.counters.add(outcome === 'full' ? 'drop.udp.queueFull' : 'drop.udp.noBuffer');
    } finally {
      frame.release();
    }
  }

  private freeEphemeralPort(): number | undefined {
    const span = EPHEMERAL_LAST - EPHEMERAL_FIRST + 1;
    for (let i = 0; i < span; i++) {
      const port = this.nextEphemeral;
      this.nextEphemeral = port === EPHEMERAL_LAST ? EPHEMERAL_FIRST : port + 1;
      if (!this.udpByPort.has(port)) return port;
    }
    return undefined;
  }
}
