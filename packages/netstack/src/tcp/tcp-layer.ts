/**
 * The TCP layer of the stack: the port table, demultiplexing of segments to
 * connections by their four-tuple or to a listener, RSTs for segments nobody
 * wants (RFC 9293 3.10.7.1), and the output of every connection on each poll.
 */
import type { ErrnoName } from '@moat/abi';
import type { Allocate } from '../buffer.js';
import type { Counters } from '../counters.js';
import type { Endpoint } from '../datagram-socket.js';
import { IPV4_ANY, type Ipv4Address } from '../wire/address.js';
import type { Ipv4Packet } from '../wire/ipv4.js';
import { emitTcpHeader, noOptions, parseTcp, tcpHeaderLength, TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN, type TcpHeader } from '../wire/tcp.js';
import { TcpConnection, type OutSegment, type TcpTransitionObserver } from './connection.js';
import { NO_BYTES } from './no-bytes.js';
import { IsnGenerator } from './isn.js';
import { seqGt } from './seq.js';
import { TcpSocket } from './tcp-socket.js';
import { TurnQueue } from '../turn-queue.js';

/** What the layer needs of the stack around it. */
export interface TcpHost {
  now(): number;
  readonly counters: Counters;
  isLocal(addr: Ipv4Address): boolean;
  /** The source address and MSS (MTU less 40) of the route to `dst`, or undefined when unreachable. */
  routeFor(dst: Ipv4Address): { src: Ipv4Address; mss: number } | undefined;
  /**
   * Sends one IPv4 datagram: `headerLength` bytes that `fill` writes, then
   * `payload`, which the stack puts in place first (copied, or gathered
   * when `payloadStable`: see Stack.ipv4Send). `fill` gets them together
   * (unless gathered) and `offload`: leave the checksum to the device (loopback).
   */
  send(
    src: Ipv4Address,
    dst: Ipv4Address,
    headerLength: number,
    payload: Uint8Array,
    payloadStable: boolean,
    allocate: Allocate,
    fill: (out: Uint8Array, offload: boolean) => void,
  ): void;
  /** Ephemeral ports free in this layer's table. */
  freePort(taken: (port: number) => boolean): number | undefined;
  /** Buffers for what the layer sends of its own accord (RSTs). */
  allocateOwn: Allocate;
}

const key = (localAddr: number, localPort: number, remoteAddr: number, remotePort: number) =>
  `${localAddr}:${localPort}>${remoteAddr}:${remotePort}`;

const sameTuple = (o: Owned, localAddr: number, localPort: number, remoteAddr: number, remotePort: number): boolean => {
  const e = o.conn.endpoints;
  return e.localPort === localPort && e.remotePort === remotePort && e.localAddr === localAddr && e.remoteAddr === remoteAddr;
};

interface Owned {
  key: string;
  conn: TcpConnection;
  allocate: Allocate;
  /** The connection's deadline when it was last polled. */
  deadline: number | undefined;
  /** In the active list, waiting for the next poll. */
  queued: boolean;
}

export class TcpLayer {
  /** Port -> the socket bound to it (a listener, or a connection's own socket). */
  private readonly ports = new Map<number, TcpSocket>();
  private readonly conns = new Map<string, Owned>();
  /** Local ports still used by connections (TIME-WAIT and orphans included), with how many. */
  private readonly connPorts = new Map<number, number>();
  /** Listener connections by the listener they belong to, to promote them when established. */
  private readonly listenerOf = new Map<TcpConnection, TcpSocket>();
  /**
   * Connections that may have something to send: touched by a segment or by
   * their user since the last poll. A poll visits these, and the others only
   * when one of their timers may be due, so an idle connection costs a poll
   * nothing (10,000 of them in TIME-WAIT or keep-alive used to be visited on
   * every loopback hop). A forgotten connection may stay queued until the
   * next poll, which skips it.
   */
  private readonly active = new TurnQueue<Owned>();
  /**
   * The last two connections a segment was for: on loopback a stream's data
   * and its ACKs alternate between its two ends, and a hit costs no key.
   */
  private recent: Owned | undefined;
  private older: Owned | undefined;
  /** No idle connection's deadline is earlier than this (it may be earlier than any: then a poll finds none due and raises it). */
  private timersAt = Infinity;
  private readonly isn: IsnGenerator;
  /** Given to every connection made from now on (before its first transition): a tracer's hook. */
  onTransition: TcpTransitionObserver | undefined;

  constructor(
    private readonly host: TcpHost,
    isnKey: Uint8Array,
  ) {
    this.isn = new IsnGenerator(isnKey);
  }

  socket(allocate: Allocate): TcpSocket {
    return new TcpSocket(allocate);
  }

  /**
   * Binds `s` to `local`; port 0 picks an ephemeral port no socket and no
   * connection uses. A port held by a socket is never shared; one still used
   * by a connection (in TIME-WAIT, say) only with SO_REUSEADDR, as on Linux.
   */
  bind(s: TcpSocket, local: Endpoint): ErrnoName | null {
    if (s.local) return 'EINVAL';
    if (local.addr !== IPV4_ANY && !this.host.isLocal(local.addr)) return 'EADDRNOTAVAIL';
    let port = local.port;
    if (port === 0) {
      const free = this.host.freePort((p) => this.ports.has(p) || this.connPorts.has(p));
      if (free === undefined) return 'EADDRINUSE';
      port = free;
    } else if (this.ports.has(port) || (this.connPorts.has(port) && !s.reuseAddr)) return 'EADDRINUSE';
    s.local = { addr: local.addr, port };
    this.ports.set(port, s);
    return null;
  }

  listen(s: TcpSocket, backlog: number): ErrnoName | null {
    if (s.conn) return 'EINVAL';
    if (!s.local) {
      const err = this.bind(s, { addr: IPV4_ANY, port: 0 });
      if (err) return err;
    }
    // Linux caps the backlog at somaxconn (4096) and treats 0 as 1.
    const limit = Math.min(Math.max(backlog, 1), 4096);
    if (s.listener) s.listener.backlog = limit;
    else s.listener = { backlog: limit, pending: new Set(), ready: [] };
    return null;
  }

  /** Starts an active open; the kernel waits for `s.conn` to be established or to fail. */
  connect(s: TcpSocket, remote: Endpoint): ErrnoName | null {
    if (s.listener) return 'EISCONN';
    if (s.conn) return s.conn.established ? 'EISCONN' : 'EALREADY';
    const route = this.host.routeFor(remote.addr);
    if (!route) return 'ENETUNREACH';
    if (!s.local) {
      const err = this.bind(s, { addr: IPV4_ANY, port: 0 });
      if (err) return err;
    }
    const localAddr = s.local!.addr === IPV4_ANY ? route.src : s.local!.addr;
    const k = key(localAddr, s.local!.port, remote.addr, remote.port);
    if (this.conns.has(k)) return 'EADDRINUSE';
    const now = this.host.now();
    const endpoints = { localAddr, localPort: s.local!.port, remoteAddr: remote.addr, remotePort: remote.port };
    const conn = new TcpConnection(endpoints, this.isn.isn(endpoints, now), now, { ...s.config, mss: route.mss });
    conn.onTransition = this.onTransition;
    s.remote = { ...remote };
    s.conn = conn;
    this.track(k, conn, s.allocate);
    conn.open(now);
    return null;
  }

  /** The oldest established connection of a listener, as a socket of its own; undefined when none is ready. */
  accept(listener: TcpSocket, allocate: Allocate): TcpSocket | undefined {
    const conn = listener.listener?.ready.shift();
    if (!conn) return undefined;
    const s = new TcpSocket(allocate);
    const e = conn.endpoints;
    s.local = { addr: e.localAddr, port: e.localPort };
    s.remote = { addr: e.remoteAddr, port: e.remotePort };
    s.conn = conn;
    // From now on the accepted socket's owner pays for what the connection sends.
    const owned = this.conns.get(key(e.localAddr, e.localPort, e.remoteAddr, e.remotePort));
    if (owned) owned.allocate = allocate;
    return s;
  }

  /** Stops listening (shutdown(SHUT_RD) of a listener, as Linux does): queued connections are reset, the port stays bound. */
  stopListening(s: TcpSocket): void {
    const now = this.host.now();
    for (const c of [...(s.listener?.pending ?? []), ...(s.listener?.ready ?? [])]) c.abort(now);
    s.listener = undefined;
  }

  /**
   * The socket is gone. A listener's connections not yet accepted are reset;
   * a connection goes on closing in the stack (or is reset, with `abort`)
   * until it reaches CLOSED.
   */
  close(s: TcpSocket, abort: boolean): void {
    const now = this.host.now();
    if (s.listener) {
      for (const c of [...s.listener.pending, ...s.listener.ready]) c.abort(now);
      s.listener = undefined;
    }
    if (s.conn) {
      if (abort) s.conn.abort(now);
      else {
        s.conn.orphan();
        if (!s.conn.closed && s.conn.state !== 'TIME_WAIT') s.conn.close(now);
      }
    }
    if (s.local && this.ports.get(s.local.port) === s) this.ports.delete(s.local.port);
  }

  /** A segment for us; `trusted`: it came over loopback, whose checksums are offloaded (not computed, not verified). */
  input(p: Ipv4Packet, trusted = false, tail?: Uint8Array): void {
    const parsed = parseTcp(p.payload, p.src, p.dst, !trusted, tail);
    if (!parsed.ok) return this.host.counters.add(`drop.${parsed.reason}`);
    const seg = parsed.value;
    const now = this.host.now();
    const owned = this.demux(p.dst, seg.dstPort, p.src, seg.srcPort);
    if (owned && this.reopensTimeWait(owned.conn, seg)) {
      this.forget(owned.key, owned.conn);
      this.host.counters.add('tcp.timeWaitReopened');
    } else if (owned) {
      this.markActive(owned);
      this.host.counters.add('in.tcp');
      owned.conn.input(seg, seg.payload, now);
      // A duplicate ACK for each out-of-order segment (and the ACK that a filled hole earns) goes at once,
      // not once per poll: the sender's fast retransmit counts them (RFC 5681 4.2). Other ACKs wait for the poll.
      if (owned.conn.ackUrgent) {
        const out = owned.conn.output(now);
        for (let i = 0; i < out.length; i++) this.emit(owned.conn.endpoints.localAddr, owned.conn.endpoints.remoteAddr, out[i]!, owned.allocate);
      }
      return;
    }
    const listener = this.ports.get(seg.dstPort);
    const l = listener?.listener;
    if (l && (listener.local!.addr === IPV4_ANY || listener.local!.addr === p.dst)) {
      if (seg.flags & TCP_RST) return this.host.counters.add('drop.tcp.rstToListener');
      if (seg.flags & TCP_ACK) return this.reset(p, seg, 'drop.tcp.ackToListener'); // RFC 9293 3.10.7.2
      if (!(seg.flags & TCP_SYN)) return this.host.counters.add('drop.tcp.noSyn');
      // A full backlog drops the SYN, as Linux does: the client retries, no RST tells it to give up.
      if (l.pending.size + l.ready.length >= l.backlog) return this.host.counters.add('drop.tcp.backlogFull');
      const route = this.host.routeFor(p.src);
      if (!route) return this.host.counters.add('drop.tcp.noRoute');
      const endpoints = { localAddr: p.dst, localPort: seg.dstPort, remoteAddr: p.src, remotePort: seg.srcPort };
      const conn = new TcpConnection(endpoints, this.isn.isn(endpoints, now), now, { ...listener.config, mss: route.mss });
      conn.onTransition = this.onTransition;
      conn.accept(seg, now);
      l.pending.add(conn);
      this.listenerOf.set(conn, listener);
      this.track(key(p.dst, seg.dstPort, p.src, seg.srcPort), conn, listener.allocate);
      return this.host.counters.add('in.tcpSyn');
    }
    this.reset(p, seg, 'drop.tcp.noSocket');
  }

  /** The connection of a four-tuple (local first), looked up by its key unless it is one of the last two found. */
  private demux(localAddr: Ipv4Address, localPort: number, remoteAddr: Ipv4Address, remotePort: number): Owned | undefined {
    const recent = this.recent;
    if (recent !== undefined && sameTuple(recent, localAddr, localPort, remoteAddr, remotePort)) return recent;
    const older = this.older;
    const owned = older !== undefined && sameTuple(older, localAddr, localPort, remoteAddr, remotePort) ? older : this.conns.get(key(localAddr, localPort, remoteAddr, remotePort));
    if (owned !== undefined) {
      this.older = recent;
      this.recent = owned;
    }
    return owned;
  }

  private markActive(owned: Owned): void {
    if (owned.queued) return;
    owned.queued = true;
    this.active.push(owned);
  }

  /**
   * A new SYN for a four-tuple still in TIME-WAIT starts a new connection when
   * its sequence number is beyond the old one's (RFC 9293 3.6.1, RFC 6191), as
   * Linux allows: the old connection is over, and its TIME-WAIT only guards
   * against its own stray segments.
   */
  private reopensTimeWait(conn: TcpConnection, seg: TcpHeader): boolean {
    return conn.state === 'TIME_WAIT' && (seg.flags & (TCP_SYN | TCP_ACK | TCP_RST)) === TCP_SYN && seqGt(seg.seq, conn.sequence.rcvNxt);
  }

  /** RFC 9293 3.10.7.1: answer a segment nobody owns with a RST (never a RST with a RST). */
  private reset(p: Ipv4Packet, seg: TcpHeader & { payload: Uint8Array }, counter: string): void {
    this.host.counters.add(counter);
    if (seg.flags & TCP_RST) return;
    const len = seg.payload.length + (seg.flags & TCP_SYN ? 1 : 0) + (seg.flags & TCP_FIN ? 1 : 0);
    const header: TcpHeader =
      seg.flags & TCP_ACK
        ? { srcPort: seg.dstPort, dstPort: seg.srcPort, seq: seg.ack, ack: 0, flags: TCP_RST, window: 0, urgentPointer: 0, options: noOptions() }
        : { srcPort: seg.dstPort, dstPort: seg.srcPort, seq: 0, ack: (seg.seq + len) >>> 0, flags: TCP_RST | TCP_ACK, window: 0, urgentPointer: 0, options: noOptions() };
    this.emit(p.dst, p.src, { header, payload: NO_BYTES, payloadStable: true }, this.host.allocateOwn);
    this.host.counters.add('out.tcpRst');
  }

  /** Sends what every connection has to send; promotes, forgets and returns the earliest deadline. */
  poll(now: number): number | undefined {
    if (now >= this.timersAt) {
      // Some timer may be due: take those connections in, and find the next timer of the rest.
      let next = Infinity;
      for (const owned of this.conns.values()) {
        const t = owned.deadline;
        if (t === undefined) continue;
        if (t <= now) this.markActive(owned);
        else if (t < next) next = t;
      }
      this.timersAt = next;
    }
    if (this.active.length === 0) return this.timersAt === Infinity ? undefined : this.timersAt;
    // Taken out first: emitting may touch others (a RST's listener), which then wait for the next poll
    // (unless they are further on in this batch).
    const count = this.active.take();
    const batch = this.active.turn;
    for (let i = 0; i < count; i++) {
      const owned = batch[i]!;
      owned.queued = false;
      const { key: k, conn, allocate } = owned;
      if (this.conns.get(k) !== owned) continue; // forgotten meanwhile
      const out = conn.output(now);
      for (let j = 0; j < out.length; j++) this.emit(conn.endpoints.localAddr, conn.endpoints.remoteAddr, out[j]!, allocate);
      // A handshake reset in SYN-RECEIVED sends a passive connection back to LISTEN (RFC 9293 3.10.7.4):
      // here the listener socket does the listening, so that connection is over.
      const over = conn.closed || conn.state === 'LISTEN';
      const listener = this.listenerOf.get(conn);
      if (listener) {
        const l = listener.listener;
        if (conn.established || over || !l) {
          l?.pending.delete(conn);
          this.listenerOf.delete(conn);
          if (conn.established && l) l.ready.push(conn);
        }
      }
      if (over) {
        this.forget(k, conn);
        continue;
      }
      const t = (owned.deadline = conn.deadline());
      if (t !== undefined && t < this.timersAt) this.timersAt = t;
    }
    // A transition taken while polling (a timer's) may have left work: poll again at once.
    if (this.active.length > 0) return now;
    return this.timersAt === Infinity ? undefined : this.timersAt;
  }

  private track(k: string, conn: TcpConnection, allocate: Allocate): void {
    const owned: Owned = { key: k, conn, allocate, deadline: undefined, queued: false };
    // The connection says when its user gave it work (a write, a read that opens the window, a close).
    conn.onActivity = () => this.markActive(owned);
    this.markActive(owned);
    this.conns.set(k, owned);
    const port = owned.conn.endpoints.localPort;
    this.connPorts.set(port, (this.connPorts.get(port) ?? 0) + 1);
  }

  private forget(k: string, conn: TcpConnection): void {
    const owned = this.conns.get(k);
    if (owned === this.recent) this.recent = undefined;
    if (owned === this.older) this.older = undefined;
    conn.onActivity = undefined;
    this.conns.delete(k);
    const port = conn.endpoints.localPort;
    const left = (this.connPorts.get(port) ?? 1) - 1;
    if (left > 0) this.connPorts.set(port, left);
    else this.connPorts.delete(port);
  }

  /** Some connection has work for the next poll (a segment came, or its user wrote, read or closed). */
  get busy(): boolean {
    return this.active.length > 0;
  }

  /** Connections the layer holds (orphans included), for counters and tests. */
  get connections(): number {
    return this.conns.size;
  }

  private emit(src: Ipv4Address, dst: Ipv4Address, seg: OutSegment, allocate: Allocate): void {
    const { header, payload } = seg;
    this.host.send(src, dst, tcpHeaderLength(header.options), payload, seg.payloadStable, allocate, (out, offload) =>
      emitTcpHeader(header, src, dst, payload.length, out, 0, offload),
    );
    this.host.counters.add('out.tcp');
  }
}
