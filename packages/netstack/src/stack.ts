/**
 * The sans-IO stack: fed frames (through its devices) and the time (through
 * the clock its owner supplies), it returns frames (through its devices) and
 * its next deadline. It owns no host timers or sockets. Layering follows
 * smoltcp: wire formats below; interfaces with Ethernet and ARP or bare IP;
 * IPv4 with fragmentation, reassembly and ICMP; then the datagram sockets.
 *
 * Every received frame is counted once as `rx.frames` and ends in exactly one
 * `in.*` counter (consumed by a layer) or one `drop.*` counter (the reason).
 */
import type { ErrnoName } from '@moat/abi';
import { ArpCache, DEFAULT_ARP_OPTIONS, type ArpOptions } from './arp-cache.js';
import type { Allocate, PacketBuffer } from './buffer.js';
import { Counters } from './counters.js';
import type { Device } from './device.js';
import { DEFAULT_REASSEMBLY_LIMITS, planFragments, Reassembler, type ReassemblyLimits } from './ipv4-fragment.js';
import { DatagramSocket, type Endpoint } from './datagram-socket.js';
import { IPV4_ANY, IPV4_BROADCAST, inSubnet, prefixMask, type Ipv4Address } from './wire/address.js';
import { ARP_LEN, ARP_REPLY, ARP_REQUEST, emitArp, parseArp } from './wire/arp.js';
import { internetChecksum } from './wire/checksum.js';
import {
  emitEthernetHeader,
  ETHERNET_HEADER_LEN,
  ethernetFrameLength,
  ETHERTYPE_ARP,
  ETHERTYPE_IPV4,
  MAC_BROADCAST,
  parseEthernet,
  writeMac,
  type MacAddress,
} from './wire/ethernet.js';
import {
  emitIcmp,
  ICMP_DEST_UNREACHABLE,
  ICMP_ECHO_REPLY,
  ICMP_ECHO_REQUEST,
  ICMP_HEADER_LEN,
  ICMP_NET_UNREACHABLE,
  ICMP_HOST_UNREACHABLE,
  ICMP_PORT_UNREACHABLE,
  ICMP_PROTOCOL_UNREACHABLE,
  ICMP_REASSEMBLY_TIME_EXCEEDED,
  ICMP_TIME_EXCEEDED,
  icmpLength,
  parseIcmp,
  type IcmpMessage,
} from './wire/icmp.js';
import {
  emitIpv4Header,
  IPPROTO_ICMP,
  IPPROTO_TCP,
  IPPROTO_UDP,
  IPV4_HEADER_LEN,
  parseIpv4,
  readU32,
  type Ipv4Packet,
} from './wire/ipv4.js';
import { emitUdpHeader, parseUdp, UDP_HEADER_LEN } from './wire/udp.js';
import { randomBytes } from 'node:crypto';
import { TcpLayer } from './tcp/tcp-layer.js';
import { earlier } from './deadline.js';

export interface InterfaceConfig {
  name: string;
  device: Device;
  addr: Ipv4Address;
  prefixLength: number;
  /** Required on an Ethernet device. */
  mac?: MacAddress;
}

export interface Interface extends InterfaceConfig {
  /** Address resolution, on Ethernet interfaces only. */
  readonly arp: ArpCache | undefined;
}

export interface StackOptions {
  /** The owner's clock, in milliseconds. */
  now?: () => number;
  /** Buffers for what the stack sends of its own accord (ARP, ICMP); charged to the kernel. */
  allocate?: Allocate;
  reassembly?: Partial<ReassemblyLimits>;
  arp?: Partial<ArpOptions>;
  /** ICMP errors the stack may send per second (a token bucket of that depth), so a flood cannot make it flood back. */
  icmpErrorsPerSecond?: number;
  /** The secret of RFC 6528's initial sequence numbers (16 bytes or more); random when not given. */
  isnKey?: Uint8Array;
}

/** Linux's default ephemeral port range (net.ipv4.ip_local_port_range). */
export const EPHEMERAL_FIRST = 32768;
export const EPHEMERAL_LAST = 60999;
const DEFAULT_TTL = 64;
/** The most an IPv4 datagram can carry (65535 less its 20-byte header). */
const IPV4_MAX_PAYLOAD = 65535 - IPV4_HEADER_LEN;

export type SendResult = { ok: true } | { ok: false; errno: ErrnoName };
/** Where a datagram goes: out of `iface` to `nextHop`, from `src` unless the socket is bound to an address. */
type Route = { iface: Interface; nextHop: Ipv4Address; src: Ipv4Address };

export class Stack {
  readonly interfaces: Interface[] = [];
  readonly counters = new Counters();
  /** The default route's gateway, if any. */
  gateway: Ipv4Address | undefined;
  private readonly now: () => number;
  private readonly allocateOwn: Allocate;
  private readonly reassembler: Reassembler;
  private readonly arpOptions: ArpOptions;
  private readonly udpByPort = new Map<number, DatagramSocket>();
  private readonly pingById = new Map<number, DatagramSocket>();
  private readonly nextEphemeral = { udp: EPHEMERAL_FIRST, tcp: EPHEMERAL_FIRST };
  private nextPingId = 1;
  private nextIdent = 1;
  private readonly icmpRate: number;
  private icmpTokens: number;
  private icmpRefilledAt = 0;
  /** TCP: listeners, connections, and their demultiplexing. */
  readonly tcp: TcpLayer;

  constructor(options: StackOptions = {}) {
    this.now = options.now ?? (() => performance.now());
    this.allocateOwn = options.allocate ?? ((n) => ({ bytes: new Uint8Array(n), release() {} }));
    this.reassembler = new Reassembler({ ...DEFAULT_REASSEMBLY_LIMITS, ...options.reassembly }, this.counters);
    this.arpOptions = { ...DEFAULT_ARP_OPTIONS, ...options.arp };
    this.icmpRate = options.icmpErrorsPerSecond ?? 100;
    this.icmpTokens = this.icmpRate;
    this.tcp = new TcpLayer(
      {
        now: this.now,
        counters: this.counters,
        isLocal: (addr) => this.isLocal(addr),
        routeFor: (dst) => {
          const route = this.route(dst);
          return route && { src: route.src, mss: Math.min(route.iface.device.mtu, 65535) - 40 };
        },
        // Segments are cut to the MSS, so they never need fragmenting: DF set, as TCP does for path MTU discovery.
        send: (src, dst, headerLength, payload, payloadStable, allocate, fill) =>
          void this.ipv4Send(src, dst, IPPROTO_TCP, headerLength + payload.length, true, allocate, fill, payload, payloadStable),
        // The next free port after the last one given, as for UDP: a port just freed is the last to come back.
        freePort: (taken) => this.nextFreePort('tcp', taken),
        allocateOwn: this.allocateOwn,
      },
      options.isnKey ?? randomBytes(16),
    );
  }

  addInterface(config: InterfaceConfig): Interface {
    if (config.device.medium === 'ethernet' && config.mac === undefined) throw new Error(`interface ${config.name}: an Ethernet device needs a MAC address`);
    const iface: Interface = {
      ...config,
      arp: config.device.medium === 'ethernet' ? new ArpCache(this.arpOptions, this.counters) : undefined,
    };
    this.interfaces.push(iface);
    return iface;
  }

  /** True when `addr` is one this host answers to: an interface's address, or anything in a loopback net. */
  isLocal(addr: Ipv4Address): boolean {
    return this.interfaces.some((i) => i.addr === addr || (i.device.medium === 'ip' && inSubnet(addr, i.addr, i.prefixLength)));
  }

  private isBroadcast(addr: Ipv4Address): boolean {
    return (
      addr === IPV4_BROADCAST ||
      this.interfaces.some((i) => i.prefixLength < 31 && addr === ((i.addr | ~prefixMask(i.prefixLength)) >>> 0))
    );
  }

  /**
   * The interface and next hop for `dst`: one of our own addresses goes over
   * loopback (as on Linux, whatever interface holds it); then the longest
   * connected prefix; then the default gateway.
   */
  route(dst: Ipv4Address): Route | undefined {
    if (this.isLocal(dst)) {
      const lo = this.interfaces.find((i) => i.device.medium === 'ip');
      if (lo) return { iface: lo, nextHop: dst, src: dst };
    }
    let best: Interface | undefined;
    for (const i of this.interfaces) {
      if (inSubnet(dst, i.addr, i.prefixLength) && (!best || i.prefixLength > best.prefixLength)) best = i;
    }
    if (best) return { iface: best, nextHop: dst, src: best.addr };
    if (dst === IPV4_BROADCAST) {
      const first = this.interfaces.find((i) => i.device.medium === 'ethernet');
      return first && { iface: first, nextHop: dst, src: first.addr };
    }
    if (this.gateway === undefined) return undefined;
    const via = this.interfaces.find((i) => inSubnet(this.gateway!, i.addr, i.prefixLength));
    return via && { iface: via, nextHop: this.gateway, src: via.addr };
  }

  // ---- datagram sockets ------------------------------------------------

  udpSocket(allocate: Allocate): DatagramSocket {
    return new DatagramSocket('udp', allocate);
  }

  /** An ICMP echo ("ping") socket, as Linux's SOCK_DGRAM/IPPROTO_ICMP: its identifier plays the port's part. */
  pingSocket(allocate: Allocate): DatagramSocket {
    return new DatagramSocket('ping', allocate);
  }

  /** Binds `socket` to `local`; port 0 picks an ephemeral port (or a free echo identifier). */
  bind(socket: DatagramSocket, local: Endpoint): ErrnoName | null {
    if (socket.local) return 'EINVAL';
    if (local.addr !== IPV4_ANY && !this.isLocal(local.addr)) return 'EADDRNOTAVAIL';
    const table = this.tableOf(socket);
    let port = local.port;
    if (port === 0) {
      const found = socket.kind === 'udp' ? this.freeEphemeralPort() : this.freePingId();
      if (found === undefined) return 'EADDRINUSE';
      port = found;
    } else if (table.has(port)) return 'EADDRINUSE';
    socket.local = { addr: local.addr, port };
    table.set(port, socket);
    return null;
  }

  connect(socket: DatagramSocket, remote: Endpoint): ErrnoName | null {
    if (!this.route(remote.addr)) return 'ENETUNREACH';
    if (!socket.local) {
      const err = this.bind(socket, { addr: IPV4_ANY, port: 0 });
      if (err) return err;
    }
    socket.remote = { ...remote };
    return null;
  }

  close(socket: DatagramSocket): void {
    const table = this.tableOf(socket);
    if (socket.local && table.get(socket.local.port) === socket) table.delete(socket.local.port);
    socket.clear();
  }

  /**
   * Largest payload one datagram to `dst` may carry: with `dontFragment`,
   * what fits the outgoing interface's MTU; otherwise what IPv4 can carry,
   * fragmented as needed.
   */
  maxPayload(socket: DatagramSocket, dst: Ipv4Address): number {
    const route = this.route(dst);
    if (!route) return 0;
    const header = socket.kind === 'udp' ? UDP_HEADER_LEN : 0;
    const limit = socket.dontFragment ? Math.min(route.iface.device.mtu, 65535) - IPV4_HEADER_LEN : IPV4_MAX_PAYLOAD;
    return limit - header;
  }

  /**
   * Sends one datagram whole or not at all. `payload` is copied into buffers
   * from `allocate` (the sender's share): one frame when it fits the MTU,
   * else one per fragment (or EMSGSIZE with `dontFragment`).
   */
  send(socket: DatagramSocket, payload: Uint8Array, dst: Endpoint, allocate: Allocate): SendResult {
    if (!this.route(dst.addr)) return { ok: false, errno: 'ENETUNREACH' };
    if (payload.length > this.maxPayload(socket, dst.addr)) return { ok: false, errno: 'EMSGSIZE' };
    if (!socket.local) {
      const err = this.bind(socket, { addr: IPV4_ANY, port: 0 });
      if (err) return { ok: false, errno: err };
    }
    const local = socket.local!;
    const sent =
      socket.kind === 'udp'
        ? this.ipv4Send(local.addr, dst.addr, IPPROTO_UDP, UDP_HEADER_LEN + payload.length, socket.dontFragment, allocate, (out, offload, src) => {
            out.set(payload, UDP_HEADER_LEN);
            emitUdpHeader(local.port, dst.port, src, dst.addr, payload.length, out, 0, offload);
          })
        : this.sendEcho(socket, payload, dst, allocate);
    if (sent.ok) {
      socket.stats.sent++;
      this.counters.add(`out.${socket.kind}`);
    }
    return sent;
  }

  /** A ping socket sends an echo request the caller wrote; the stack sets its identifier and checksum. */
  private sendEcho(socket: DatagramSocket, message: Uint8Array, dst: Endpoint, allocate: Allocate): SendResult {
    if (message.length < ICMP_HEADER_LEN || message[0] !== ICMP_ECHO_REQUEST || message[1] !== 0) return { ok: false, errno: 'EINVAL' };
    const id = socket.local!.port;
    return this.ipv4Send(socket.local!.addr, dst.addr, IPPROTO_ICMP, message.length, socket.dontFragment, allocate, (out) => {
      out.set(message);
      out[2] = out[3] = 0;
      out[4] = id >> 8;
      out[5] = id & 0xff;
      const sum = internetChecksum(out);
      out[2] = sum >> 8;
      out[3] = sum & 0xff;
    });
  }

  // ---- IPv4 output -------------------------------------------------------

  /**
   * Builds and sends one IPv4 datagram whose `l4Length` bytes of payload
   * `fill` writes (given whether the device offloads TCP and UDP checksums,
   * loopback, and the source address it will carry). All buffers come
   * from `allocate`; if any is refused, none is kept (ENOBUFS).
   *
   * `tail`: the last `tail.length` of those bytes, which the stack puts in
   * place before `fill` runs (so a checksum may cover them): copied in, or,
   * when `tailStable` (they stay as they are until acknowledged) and the
   * device gathers (loopback), left where they are as the packet's tail.
   */
  private ipv4Send(
    from: Ipv4Address,
    dst: Ipv4Address,
    protocol: number,
    l4Length: number,
    dontFragment: boolean,
    allocate: Allocate,
    fill: (out: Uint8Array, offload: boolean, src: Ipv4Address) => void,
    tail?: Uint8Array,
    tailStable = false,
  ): SendResult {
    const route = this.route(dst);
    if (!route) return { ok: false, errno: 'ENETUNREACH' };
    const { iface } = route;
    const src = from === IPV4_ANY ? route.src : from;
    const offload = iface.device.checksumOffload === true;
    const link = iface.device.medium === 'ethernet' ? ETHERNET_HEADER_LEN : 0;
    const mtu = Math.min(iface.device.mtu, 65535);
    const header = {
      dscpEcn: 0,
      identification: this.nextIdent++ & 0xffff,
      dontFragment,
      moreFragments: false,
      fragmentOffset: 0,
      ttl: DEFAULT_TTL,
      protocol,
      src,
      dst,
    };
    const tailLength = tail === undefined ? 0 : tail.length;
    const headLength = l4Length - tailLength;
    if (IPV4_HEADER_LEN + l4Length <= mtu) {
      const gather = tailStable && tailLength > 0 && offload && iface.device.gather === true;
      const frame = allocate(this.frameLength(iface, IPV4_HEADER_LEN + (gather ? headLength : l4Length)));
      if (!frame) return { ok: false, errno: 'ENOBUFS' };
      const at = link + IPV4_HEADER_LEN;
      if (gather) frame.tail = tail;
      else if (tailLength > 0) frame.bytes.set(tail!, at + headLength);
      fill(frame.bytes.subarray(at, at + (gather ? headLength : l4Length)), offload, src);
      emitIpv4Header(header, l4Length, frame.bytes, link);
      this.linkOutput(route, frame, IPV4_HEADER_LEN + l4Length);
      return { ok: true };
    }
    if (dontFragment) return { ok: false, errno: 'EMSGSIZE' };
    // Too big for one frame: build the whole transport payload once, then copy it out in fragments.
    const whole = allocate(l4Length);
    if (!whole) return { ok: false, errno: 'ENOBUFS' };
    try {
      if (tailLength > 0) whole.bytes.set(tail!, headLength);
      fill(whole.bytes, offload, src);
      const plan = planFragments(l4Length, mtu);
      const frames: PacketBuffer[] = [];
      for (const part of plan) {
        const frame = allocate(this.frameLength(iface, IPV4_HEADER_LEN + part.length));
        if (!frame) {
          for (const f of frames) f.release();
          return { ok: false, errno: 'ENOBUFS' };
        }
        frames.push(frame);
      }
      plan.forEach((part, i) => {
        const frame = frames[i]!;
        frame.bytes.set(whole.bytes.subarray(part.offset, part.offset + part.length), link + IPV4_HEADER_LEN);
        emitIpv4Header({ ...header, moreFragments: part.more, fragmentOffset: part.offset }, part.length, frame.bytes, link);
        this.linkOutput(route, frame, IPV4_HEADER_LEN + part.length);
      });
      this.counters.add('out.fragmented');
      this.counters.add('out.fragments', plan.length);
      return { ok: true };
    } finally {
      whole.release();
    }
  }

  private frameLength(iface: Interface, ipLength: number): number {
    return iface.device.medium === 'ethernet' ? ethernetFrameLength(ipLength) : ipLength;
  }

  /** Hands an IPv4 packet (with room for its link header) to the interface, resolving the next hop first on Ethernet. */
  private linkOutput({ iface, nextHop }: Route, frame: PacketBuffer, ipLength: number): void {
    if (iface.device.medium === 'ip') return this.transmit(iface, frame);
    emitEthernetHeader({ dst: MAC_BROADCAST, src: iface.mac!, ethertype: ETHERTYPE_IPV4 }, ipLength, frame.bytes);
    if (this.isBroadcast(nextHop)) return this.transmit(iface, frame);
    const now = this.now();
    const mac = iface.arp!.lookup(nextHop, now);
    if (mac !== undefined) {
      writeMac(frame.bytes, 0, mac);
      return this.transmit(iface, frame);
    }
    const { queued, sendRequest } = iface.arp!.enqueue(nextHop, frame, now);
    if (!queued) frame.release();
    if (sendRequest) this.sendArp(iface, ARP_REQUEST, MAC_BROADCAST, nextHop, 0);
  }

  private transmit(iface: Interface, frame: PacketBuffer): void {
    this.counters.add('tx.frames');
    if (!iface.device.transmit(frame)) this.counters.add('tx.deviceQueueFull');
  }

  private sendArp(iface: Interface, opcode: typeof ARP_REQUEST | typeof ARP_REPLY, dstMac: MacAddress, targetIp: Ipv4Address, targetMac: MacAddress): void {
    const frame = this.allocateOwn(ethernetFrameLength(ARP_LEN));
    if (!frame) return this.counters.add('tx.noBuffer');
    emitArp({ opcode, senderMac: iface.mac!, senderIp: iface.addr, targetMac, targetIp }, frame.bytes, ETHERNET_HEADER_LEN);
    emitEthernetHeader({ dst: dstMac, src: iface.mac!, ethertype: ETHERTYPE_ARP }, ARP_LEN, frame.bytes);
    this.counters.add(opcode === ARP_REQUEST ? 'out.arpRequest' : 'out.arpReply');
    this.transmit(iface, frame);
  }

  // ---- input ---------------------------------------------------------------

  /**
   * Processes every frame waiting in the devices, then the timers (ARP
   * retries, reassembly timeouts). Returns when the stack next needs a poll,
   * or undefined when nothing is pending.
   */
  poll(now: number = this.now()): number | undefined {
    // Receive, then let TCP answer; what it sends over loopback is received in the next round, so a
    // handshake or a request and its reply on one machine complete within one poll.
    let tcpDeadline: number | undefined;
    for (let round = 0; round < 64; round++) {
      const sentBefore = this.counters.get('tx.frames');
      let received = 0;
      for (let i = 0; i < this.interfaces.length; i++) {
        const iface = this.interfaces[i]!;
        for (let frame = iface.device.receive(); frame; frame = iface.device.receive(), received++) this.receive(iface, frame);
      }
      tcpDeadline = this.tcp.poll(now);
      if (received === 0 && this.counters.get('tx.frames') === sentBefore) break;
    }
    let deadline = tcpDeadline;
    for (let i = 0; i < this.interfaces.length; i++) {
      const iface = this.interfaces[i]!;
      if (!iface.arp) continue;
      const due = iface.arp.poll(now);
      for (const ip of due.requests) this.sendArp(iface, ARP_REQUEST, MAC_BROADCAST, ip, 0);
      for (const frame of due.failed) frame.release();
      deadline = earlier(deadline, due.deadline);
    }
    const frag = this.reassembler.poll(now);
    for (const lost of frag.expired) {
      // RFC 792: tell the sender, when its first fragment (the one an error must quote) came.
      if (lost.firstFragment && !this.isBroadcast(lost.dst)) {
        this.sendIcmpError(lost.src, { type: ICMP_TIME_EXCEEDED, code: ICMP_REASSEMBLY_TIME_EXCEEDED, original: lost.firstFragment });
      }
    }
    return earlier(deadline, frag.deadline);
  }

  private receive(iface: Interface, frame: PacketBuffer): void {
    this.counters.add('rx.frames');
    try {
      if (iface.device.medium === 'ip') this.ipv4Input(frame.bytes, iface.device.checksumOffload === true, frame.tail);
      else this.ethernetInput(iface, frame.bytes);
    } finally {
      frame.release();
    }
  }

  private ethernetInput(iface: Interface, bytes: Uint8Array): void {
    const eth = parseEthernet(bytes);
    if (!eth.ok) return this.counters.add(`drop.${eth.reason}`);
    const { dst, ethertype, payload } = eth.value;
    if (dst !== iface.mac && dst !== MAC_BROADCAST) return this.counters.add('drop.ethernet.notForUs');
    if (ethertype === ETHERTYPE_ARP) return this.arpInput(iface, payload);
    if (ethertype === ETHERTYPE_IPV4) return this.ipv4Input(payload);
    this.counters.add('drop.ethernet.ethertype');
  }

  private arpInput(iface: Interface, payload: Uint8Array): void {
    const arp = parseArp(payload);
    if (!arp.ok) return this.counters.add(`drop.${arp.reason}`);
    const p = arp.value;
    if (p.targetIp !== iface.addr) return this.counters.add('drop.arp.notForUs');
    if (p.senderMac === MAC_BROADCAST || p.senderIp === IPV4_ANY || this.isBroadcast(p.senderIp)) {
      return this.counters.add('drop.arp.badSender');
    }
    this.counters.add('in.arp');
    // RFC 826: a request for us teaches us its sender too, so the reply to it needs no request of ours.
    for (const waiting of iface.arp!.update(p.senderIp, p.senderMac, this.now())) {
      writeMac(waiting.bytes, 0, p.senderMac);
      this.transmit(iface, waiting);
    }
    if (p.opcode === ARP_REQUEST) this.sendArp(iface, ARP_REPLY, p.senderMac, p.senderIp, p.senderMac);
  }

  /**
   * `trusted`: it came over loopback, whose TCP and UDP checksums are not
   * computed (Device.checksumOffload), so they are not verified either. A
   * reassembled datagram is as trusted as the fragment that completed it.
   */
  private ipv4Input(bytes: Uint8Array, trusted = false, tail?: Uint8Array): void {
    const ip = parseIpv4(bytes, tail === undefined ? 0 : tail.length);
    if (!ip.ok) return this.counters.add(`drop.${ip.reason}`);
    let p = ip.value;
    // Only a TCP segment of this stack's own is ever gathered (ipv4Send): never a fragment, nor anything else.
    if (tail !== undefined && (p.protocol !== IPPROTO_TCP || p.moreFragments || p.fragmentOffset !== 0)) return this.counters.add('drop.ipv4.gathered');
    const broadcast = this.isBroadcast(p.dst);
    if (!broadcast && !this.isLocal(p.dst)) return this.counters.add('drop.ipv4.notForUs');
    if (p.src === IPV4_BROADCAST || this.isBroadcast(p.src)) return this.counters.add('drop.ipv4.badSource');
    if (p.moreFragments || p.fragmentOffset !== 0) {
      const refusedBefore = this.counters.total('drop.frag.');
      const whole = this.reassembler.accept(p, bytes.subarray(0, p.headerLength + p.payload.length), this.now());
      if (!whole) {
        // Held (or a duplicate of one held) unless the reassembler refused it and counted why.
        if (this.counters.total('drop.frag.') === refusedBefore) this.counters.add('in.fragment');
        return;
      }
      p = { ...p, moreFragments: false, fragmentOffset: 0, payload: whole };
    }
    if (p.protocol === IPPROTO_UDP) return this.udpInput(p, broadcast, trusted);
    if (p.protocol === IPPROTO_TCP) {
      if (broadcast) return this.counters.add('drop.tcp.broadcast');
      return this.tcp.input(p, trusted, tail);
    }
    if (p.protocol === IPPROTO_ICMP) return this.icmpInput(p, broadcast);
    this.counters.add('drop.ipv4.protocol');
    if (!broadcast) this.sendIcmpError(p.src, { type: ICMP_DEST_UNREACHABLE, code: ICMP_PROTOCOL_UNREACHABLE, nextHopMtu: 0, original: quoteOf(p) });
  }

  private udpInput(p: Ipv4Packet, broadcast: boolean, trusted: boolean): void {
    const udp = parseUdp(p.payload, p.src, p.dst, !trusted);
    if (!udp.ok) return this.counters.add(`drop.${udp.reason}`);
    const u = udp.value;
    const socket = this.udpByPort.get(u.dstPort);
    if (!socket || !accepts(socket, p.dst, p.src, u.srcPort)) {
      this.counters.add('drop.udp.noSocket');
      // RFC 1122 3.2.2: no error about a broadcast.
      if (!broadcast) this.sendIcmpError(p.src, { type: ICMP_DEST_UNREACHABLE, code: ICMP_PORT_UNREACHABLE, nextHopMtu: 0, original: quoteOf(p) });
      return;
    }
    this.deliver(socket, u.payload, { addr: p.src, port: u.srcPort }, 'udp');
  }

  private icmpInput(p: Ipv4Packet, broadcast: boolean): void {
    const icmp = parseIcmp(p.payload);
    if (!icmp.ok) return this.counters.add(`drop.${icmp.reason}`);
    const m = icmp.value;
    if (m.type === ICMP_ECHO_REQUEST) {
      if (broadcast) return this.counters.add('drop.icmp.broadcastEcho'); // no smurf amplifier
      this.counters.add('in.icmpEchoRequest');
      return this.sendIcmp(p.dst, p.src, { type: ICMP_ECHO_REPLY, id: m.id, seq: m.seq, data: m.data }, 'out.icmpEchoReply');
    }
    if (m.type === ICMP_ECHO_REPLY) {
      const socket = this.pingById.get(m.id);
      if (!socket || !accepts(socket, p.dst, p.src, 0)) return this.counters.add('drop.icmp.noSocket');
      return this.deliver(socket, p.payload, { addr: p.src, port: 0 }, 'icmpEchoReply');
    }
    // An error: find the datagram it quotes and report it to the socket that sent it.
    if (!('original' in m)) return this.counters.add('drop.icmp.unexpected');
    const quote = m.original;
    const ihl = (quote[0]! & 0x0f) * 4;
    if (quote[0]! >> 4 !== 4 || ihl < IPV4_HEADER_LEN || quote.length < ihl + 8) return this.counters.add('drop.icmp.badQuote');
    this.counters.add('in.icmpError');
    if (m.type !== ICMP_DEST_UNREACHABLE || quote[9] !== IPPROTO_UDP) return;
    const srcPort = (quote[ihl]! << 8) | quote[ihl + 1]!;
    const dstPort = (quote[ihl + 2]! << 8) | quote[ihl + 3]!;
    const socket = this.udpByPort.get(srcPort);
    // As Linux without IP_RECVERR: only a connected socket hears of it.
    if (!socket?.remote || socket.remote.addr !== readU32(quote, 16) || socket.remote.port !== dstPort) return;
    socket.pendingError = m.code === ICMP_PORT_UNREACHABLE || m.code === ICMP_PROTOCOL_UNREACHABLE ? 'ECONNREFUSED'
      : m.code === ICMP_NET_UNREACHABLE ? 'ENETUNREACH'
      : m.code === ICMP_HOST_UNREACHABLE ? 'EHOSTUNREACH'
      : socket.pendingError;
  }

  private deliver(socket: DatagramSocket, payload: Uint8Array, from: Endpoint, what: string): void {
    const outcome = socket.enqueue(payload, from);
    if (outcome === 'queued') this.counters.add(`in.${what}`);
    else this.counters.add(outcome === 'full' ? `drop.${socket.kind}.queueFull` : `drop.${socket.kind}.noBuffer`);
  }

  private sendIcmpError(to: Ipv4Address, message: IcmpMessage): void {
    const now = this.now();
    this.icmpTokens = Math.min(this.icmpRate, this.icmpTokens + ((now - this.icmpRefilledAt) * this.icmpRate) / 1000);
    this.icmpRefilledAt = now;
    if (this.icmpTokens < 1) return this.counters.add('out.icmpRateLimited');
    this.icmpTokens--;
    this.sendIcmp(IPV4_ANY, to, message, 'out.icmpError');
  }

  private sendIcmp(from: Ipv4Address, to: Ipv4Address, message: IcmpMessage, counter: string): void {
    const sent = this.ipv4Send(from, to, IPPROTO_ICMP, icmpLength(message), false, this.allocateOwn, (out) => emitIcmp(message, out));
    this.counters.add(sent.ok ? counter : `out.icmpFailed.${sent.errno}`);
  }

  // ---- port and identifier tables -------------------------------------------------

  private tableOf(socket: DatagramSocket): Map<number, DatagramSocket> {
    return socket.kind === 'udp' ? this.udpByPort : this.pingById;
  }

  private freeEphemeralPort(): number | undefined {
    return this.nextFreePort('udp', (port) => this.udpByPort.has(port));
  }

  /** Ephemeral ports go round the range, one cursor per protocol, so a port just freed is the last to be reused. */
  private nextFreePort(protocol: 'udp' | 'tcp', taken: (port: number) => boolean): number | undefined {
    const span = EPHEMERAL_LAST - EPHEMERAL_FIRST + 1;
    for (let i = 0; i < span; i++) {
      const port = this.nextEphemeral[protocol];
      this.nextEphemeral[protocol] = port === EPHEMERAL_LAST ? EPHEMERAL_FIRST : port + 1;
      if (!taken(port)) return port;
    }
    return undefined;
  }

  private freePingId(): number | undefined {
    for (let i = 0; i < 0xffff; i++) {
      const id = this.nextPingId;
      this.nextPingId = id === 0xffff ? 1 : id + 1;
      if (!this.pingById.has(id)) return id;
    }
    return undefined;
  }
}

/** Whether a socket takes a datagram: its binding matches, and a connected socket only hears its peer. */
function accepts(socket: DatagramSocket, dst: Ipv4Address, src: Ipv4Address, srcPort: number): boolean {
  const local = socket.local!;
  if (local.addr !== IPV4_ANY && local.addr !== dst) return false;
  return !socket.remote || (socket.remote.addr === src && (socket.kind === 'ping' || socket.remote.port === srcPort));
}

/** What an ICMP error about `p` quotes: its header (rebuilt, without options) and the first 8 bytes of its payload. */
function quoteOf(p: Ipv4Packet): Uint8Array {
  const head = p.payload.subarray(0, 8);
  const out = new Uint8Array(IPV4_HEADER_LEN + head.length);
  emitIpv4Header(p, p.payload.length, out);
  out.set(head, IPV4_HEADER_LEN);
  return out;
}
