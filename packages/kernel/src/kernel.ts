/**
 * The kernel: one per simulated machine. It owns every kernel object (the
 * domains' handle tables, sockets, buffers and the stack) and serves the
 * domains' requests. It never runs domain code and never hands a domain
 * anything but copied bytes.
 */
import {
  argsProblem,
  argsValid,
  decodeFrame,
  encodeReply,
  Errno,
  errnoName,
  MAX_CALL_ID,
  MAX_FRAME_BYTES,
  peekCallId,
  SYSCALL_BY_NUMBER,
  UNKNOWN_CALL_ID,
  type DomainAccounting,
} from '@moat/abi';
import {
  LoopbackDevice,
  parseIpv4Address,
  parseMacAddress,
  PCAP_LINKTYPE_ETHERNET,
  PCAP_LINKTYPE_RAW,
  Stack,
  type Device,
} from '@moat/netstack';
import { join } from 'node:path';
import { Account, DEFAULT_LIMITS, type Limits } from './account.js';
import { CapturedDevice, PcapFile } from './drivers/capture.js';
import { EthernetPort, type Wire } from './drivers/ethernet-port.js';
import { BufferPool, type PoolStats } from './buffer-pool.js';
import { Domain, type CallOutcomes, type DomainPort } from './domain.js';
import type { KSocket } from './ksocket.js';
import { fail, type Blocked, type Done } from './outcome.js';
import { HANDLERS } from './syscalls.js';

/** An Ethernet interface of the machine; its wire is attached later (`attachWire`). */
export interface InterfaceSpec {
  name: string;
  /** Address and prefix, e.g. '10.0.0.1/24'. */
  addr: string;
  /** e.g. '02:00:00:00:00:01'. */
  mac: string;
  /** IP MTU (Ethernet payload), default 1500. */
  mtu?: number;
}

export interface KernelOptions {
  /** Total bytes of packet buffers (all domains). */
  poolBytes?: number;
  /** Ethernet interfaces besides loopback (127.0.0.1/8, always there). */
  interfaces?: InterfaceSpec[];
  /** The default route's gateway. */
  gateway?: string;
  /** Write one pcap file per interface (`<machine>-<iface>.pcap`) into this folder. */
  captureDir?: string;
  /** Names capture files. */
  machineName?: string;
  /** Bytes of buffers the stack may hold for what it sends of its own accord (ARP, ICMP). */
  stackBufferBytes?: number;
  /** Requests served from one domain before the next domain's turn (invariant 7). */
  batchPerDomain?: number;
  /** Malformed frames after which a domain is reported for killing (0: never). */
  malformedLimit?: number;
  /** Told when a domain crosses `malformedLimit`; the host decides what to do. */
  onOops?: (domain: string, reason: string) => void;
  now?: () => number;
}

interface Parked {
  /** Kept whole, not copied: its onTimeout may depend on progress made while parked. */
  blocked: Blocked;
  domain: Domain;
  callId: number;
  syscall: string;
}

export interface DomainStats {
  name: string;
  alive: boolean;
  exitReason?: string;
  accounting: DomainAccounting;
  limits: Limits;
  calls: CallOutcomes;
  malformed: number;
}

export interface InterfaceStats {
  name: string;
  addr: string;
  counters: Record<string, number>;
  /** The attached wire's statistics (for a simulated link: this direction's faults). */
  wire?: Record<string, number>;
  capture?: { path: string; records: number };
}

export interface KernelStats {
  domains: DomainStats[];
  interfaces: InterfaceStats[];
  /** What the stack itself holds (ARP and ICMP packets): its own account. */
  stackAccount: DomainAccounting;
  pool: PoolStats;
  stack: Record<string, number>;
  /** Domains whose release left something behind: must stay 0. */
  leaks: string[];
  /** Exceptions caught while serving a request: must stay 0. */
  internalErrors: number;
  lastInternalError?: string;
  /** The last schema violation seen, for diagnostics. */
  lastMalformed?: string;
}

interface Port {
  spec: InterfaceSpec;
  device: EthernetPort;
  capture?: PcapFile;
}

export class Kernel {
  readonly stack: Stack;
  readonly pool: BufferPool;
  private readonly stackAccount: Account;
  private readonly ports = new Map<string, Port>();
  private loopbackCapture: PcapFile | undefined;
  private stackDeadline: number | undefined;
  readonly now: () => number;
  private readonly domains = new Map<string, Domain>();
  private readonly departed: Domain[] = [];
  private readonly runnable: Domain[] = [];
  private parked: Parked[] = [];
  /** Live stream sockets, whose buffers are charged to their owners after each poll. */
  private readonly streams = new Set<KSocket>();
  private scheduled = false;
  private timer: NodeJS.Timeout | undefined;
  private timerAt = Infinity;
  private readonly leaks: string[] = [];
  private internalErrors = 0;
  private lastInternalError: string | undefined;
  private lastMalformed: string | undefined;
  private readonly batch: number;

  constructor(private readonly options: KernelOptions = {}) {
    this.pool = new BufferPool(options.poolBytes);
    this.now = options.now ?? (() => performance.now());
    this.batch = options.batchPerDomain ?? 16;
    this.stackAccount = new Account({ maxHandles: 0, maxPendingCalls: 0, maxBufferBytes: options.stackBufferBytes ?? 1 << 20 });
    this.stack = new Stack({ now: this.now, allocate: (n) => this.pool.allocate(n, this.stackAccount) });
    const capture = (iface: string, linktype: number) =>
      options.captureDir ? new PcapFile(join(options.captureDir, `${options.machineName ?? 'machine'}-${iface}.pcap`), linktype) : undefined;
    let loopback: Device = new LoopbackDevice();
    this.loopbackCapture = capture('lo', PCAP_LINKTYPE_RAW);
    if (this.loopbackCapture) loopback = new CapturedDevice(loopback, this.loopbackCapture);
    this.stack.addInterface({ name: 'lo', device: loopback, addr: parseIpv4Address('127.0.0.1'), prefixLength: 8 });
    for (const spec of options.interfaces ?? []) {
      const [addr, prefix] = spec.addr.split('/');
      const device = new EthernetPort(spec.mtu ?? 1500, () => this.schedule());
      const port: Port = { spec, device, capture: capture(spec.name, PCAP_LINKTYPE_ETHERNET) };
      if (port.capture) device.tap = (frame) => port.capture!.write(frame);
      this.stack.addInterface({ name: spec.name, device, addr: parseIpv4Address(addr!), prefixLength: Number(prefix ?? 24), mac: parseMacAddress(spec.mac) });
      this.ports.set(spec.name, port);
    }
    if (options.gateway) this.stack.gateway = parseIpv4Address(options.gateway);
  }

  /** The device of an Ethernet interface, which a wire delivers its frames to. */
  portOf(iface: string): EthernetPort {
    const port = this.ports.get(iface);
    if (!port) throw new Error(`no interface named ${iface}`);
    return port.device;
  }

  /** Connects an interface to its wire, replacing (and closing) any before. */
  attachWire(iface: string, wire: Wire): void {
    const device = this.portOf(iface);
    device.wire?.close();
    device.wire = wire;
    this.schedule();
  }

  domain(name: string): Domain | undefined {
    return this.domains.get(name);
  }

  attach(name: string, port: DomainPort, limits: Partial<Limits> = {}): Domain {
    if (this.domains.has(name)) throw new Error(`domain ${name} is already attached`);
    const d = new Domain(name, port, { ...DEFAULT_LIMITS, ...limits });
    this.domains.set(name, d);
    return d;
  }

  /** A frame (or anything else) arrived on a domain's channel. */
  submit(d: Domain, message: unknown): void {
    if (!d.alive) return;
    if (d.account.pendingCalls >= d.account.limits.maxPendingCalls) {
      // Over its share of pending calls: refused at once, before any decoding.
      const id = message instanceof Uint8Array ? peekCallId(message) : UNKNOWN_CALL_ID;
      d.count('(queue)', 'EAGAIN');
      return this.reply(d, id, fail(Errno.EAGAIN));
    }
    d.account.pendingCalls++;
    if (d.queue.push(message) === 1) this.runnable.push(d);
    this.schedule();
  }

  /**
   * Releases everything a domain held (invariant 6): its sockets close, the
   * grants it made are revoked, its queued and parked calls are dropped, and
   * peers blocked on its sockets are answered with ECONNRESET.
   */
  detach(name: string, reason: string): DomainStats | undefined {
    const d = this.domains.get(name);
    if (!d) {
      const gone = this.departed.find((x) => x.name === name);
      return gone && this.domainStats(gone);
    }
    d.alive = false;
    d.exitReason = reason;
    this.domains.delete(name);
    d.account.pendingCalls -= d.queue.length;
    d.queue.length = 0;
    this.parked = this.parked.filter((p) => {
      if (p.domain !== d) return true;
      d.account.pendingCalls--;
      return false;
    });
    for (const [handle, entry] of [...d.table.entries()]) {
      d.table.remove(handle);
      // A dead domain's connections are reset: its peers see ECONNRESET.
      if (!entry.grantedBy) this.destroySocket(entry.object, true);
      else {
        const grants = entry.object.grants;
        const i = grants.findIndex((g) => g.domain === d && g.handle === handle);
        if (i >= 0) grants.splice(i, 1);
      }
    }
    if (!d.account.empty) this.leaks.push(`${name}: ${JSON.stringify(d.account.snapshot())}`);
    this.departed.push(d);
    this.retryParked();
    this.schedule(); // the resets of its connections go out on the next poll
    return this.domainStats(d);
  }

  /**
   * Closes a socket for good: its buffers go back, every grant of it is
   * revoked, waiters on it fail. A stream's connection closes in order, or is
   * reset with `abort`.
   */
  destroySocket(s: KSocket, abort = false): void {
    if (s.closed) return;
    s.closed = true;
    // What the connection still holds (a FIN-WAIT's unacknowledged data, say) is the kernel's from now on.
    this.chargeStream(s);
    this.streams.delete(s);
    if (s.stream) this.stack.tcp.close(s.stream, abort);
    else this.stack.close(s.dgram!);
    s.owner.account.sockets--;
    for (const [handle, entry] of [...s.owner.table.entries()]) {
      if (entry.object === s) s.owner.table.remove(handle);
    }
    for (const g of s.grants.splice(0)) g.domain.table.remove(g.handle);
    this.retryParked();
  }

  stats(): KernelStats {
    return {
      domains: [...this.domains.values(), ...this.departed].map((d) => this.domainStats(d)),
      interfaces: [...this.ports.values()].map(({ spec, device, capture }) => ({
        name: spec.name,
        addr: spec.addr,
        counters: { ...device.counters },
        wire: device.wire?.stats(),
        capture: capture && { path: capture.path, records: capture.records },
      })),
      stackAccount: this.stackAccount.snapshot(),
      pool: this.pool.stats(),
      stack: this.stack.counters.snapshot(),
      leaks: [...this.leaks],
      internalErrors: this.internalErrors,
      lastInternalError: this.lastInternalError,
      lastMalformed: this.lastMalformed,
    };
  }

  /** Stops the kernel's timer, closes wires and capture files; pending calls stay unanswered (their domains are gone with it). */
  shutdown(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    for (const { device, capture } of this.ports.values()) {
      device.wire?.close();
      capture?.close();
    }
    this.loopbackCapture?.close();
  }

  // ---- serving ---------------------------------------------------------

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => this.drain());
  }

  /** Serves queued requests round-robin, a batch per domain per turn, so no domain starves another. */
  private drain(): void {
    this.scheduled = false;
    this.pumpStack(); // frames may have arrived from a wire
    let rounds = 0;
    while (this.runnable.length > 0 && rounds++ < 64) {
      const turn = this.runnable.splice(0);
      for (const d of turn) {
        for (let i = 0; i < this.batch && d.queue.length > 0; i++) {
          d.account.pendingCalls--;
          this.serve(d, d.queue.shift());
        }
        if (d.queue.length > 0 && d.alive) this.runnable.push(d);
      }
      this.pumpStack();
    }
    if (this.runnable.length > 0) this.schedule(); // let host messages (deaths, stats) in between
  }

  private serve(d: Domain, message: unknown): void {
    if (!(message instanceof Uint8Array)) return this.malformed(d, UNKNOWN_CALL_ID, 'frame is not a byte array', Errno.EINVAL);
    if (message.byteLength > MAX_FRAME_BYTES) return this.malformed(d, peekCallId(message), 'frame too large', Errno.EMSGSIZE);
    // Invariant 3: decode only bytes no domain can change any more. A posted frame
    // arrives cloned or transferred, so it is the kernel's alone; one in shared
    // memory is still the domain's to change, and is copied first.
    const frame = message.buffer instanceof SharedArrayBuffer ? message.slice() : message;
    let decoded: unknown;
    try {
      decoded = decodeFrame(frame);
    } catch {
      return this.malformed(d, peekCallId(frame), 'frame is not msgpack', Errno.EINVAL);
    }
    if (!Array.isArray(decoded) || decoded.length < 2) return this.malformed(d, peekCallId(frame), 'frame is not [id, sysno, ...args]', Errno.EINVAL);
    const [callId, sysno] = decoded;
    if (!Number.isInteger(callId) || callId < 1 || callId > MAX_CALL_ID) return this.malformed(d, UNKNOWN_CALL_ID, 'bad call id', Errno.EINVAL);
    const name = Number.isInteger(sysno) ? SYSCALL_BY_NUMBER[sysno] : undefined;
    if (!name) {
      d.count(`sys${String(sysno).slice(0, 12)}`, 'ENOSYS');
      return this.reply(d, callId, fail(Errno.ENOSYS));
    }
    const args = decoded.slice(2);
    if (!argsValid(sysno, args)) {
      d.count(name, 'EINVAL');
      return this.malformed(d, callId, argsProblem(sysno, args) ?? 'invalid arguments', Errno.EINVAL, false);
    }
    let outcome;
    try {
      outcome = HANDLERS[name](this, d, args);
    } catch (err) {
      // A bug, never the domain's fault: answer it and keep serving everyone else.
      this.internalErrors++;
      this.lastInternalError = `${name}: ${(err as Error)?.stack ?? err}`;
      outcome = fail(Errno.EFAULT);
    }
    if ('blocked' in outcome) {
      d.account.pendingCalls++;
      this.parked.push({ blocked: outcome.blocked, domain: d, callId, syscall: name });
      if (outcome.blocked.deadline !== undefined && outcome.blocked.deadline < this.timerAt) this.armTimer();
      return;
    }
    this.finish(d, callId, name, outcome);
  }

  private finish(d: Domain, callId: number, syscall: string, done: Done): void {
    d.count(syscall, done.errno === 0 ? 'OK' : errnoName(done.errno));
    this.reply(d, callId, done);
  }

  private reply(d: Domain, callId: number, done: Done): void {
    try {
      // encodeReply returns an exact copy, never the encoder's scratch memory,
      // so a domain never receives a byte of another's reply.
      d.port.post(encodeReply(callId, done.errno, done.errno === 0 ? done.result : undefined));
    } finally {
      done.after?.();
    }
  }

  private malformed(d: Domain, callId: number, why: string, errno: number, count = true): void {
    d.malformed++;
    if (count) d.count('(malformed)', errnoName(errno));
    this.lastMalformed = `${d.name}: ${why}`;
    this.reply(d, callId, fail(errno));
    const limit = this.options.malformedLimit ?? 0;
    if (limit > 0 && d.malformed === limit) this.options.onOops?.(d.name, `${limit} malformed frames (last: ${why})`);
  }

  // ---- the stack and blocked calls ------------------------------------

  /** Lets the stack process what arrived, the wires send what is due, and parked calls finish. */
  private pumpStack(): void {
    this.pollStack();
    this.retryParked();
    this.armTimer();
  }

  private pollStack(): void {
    const now = this.now();
    this.stackDeadline = this.stack.poll(now);
    for (const { device } of this.ports.values()) {
      const due = device.wire?.flush(now);
      if (due !== undefined && (this.stackDeadline === undefined || due < this.stackDeadline)) this.stackDeadline = due;
    }
    for (const s of this.streams) this.chargeStream(s);
  }

  /** A stream socket whose connection's buffers are charged to its owner (invariant 5). */
  trackStream(s: KSocket): void {
    this.streams.add(s);
  }

  /**
   * Brings the owner's stream bytes up to date with what the socket's
   * connection holds now; a closed socket holds nothing of its owner's.
   */
  chargeStream(s: KSocket): void {
    const held = s.closed ? 0 : (s.stream?.conn?.heldBytes ?? 0);
    s.owner.account.streamBytes += held - s.charged;
    s.charged = held;
  }

  /** Finishes every parked call that can now finish; a finished send may queue frames that finish others. */
  private retryParked(): void {
    let progress = true;
    while (progress && this.parked.length > 0) {
      progress = false;
      const waiting = this.parked;
      this.parked = [];
      for (const p of waiting) {
        let done: Done | null;
        try {
          done = p.blocked.retry();
        } catch (err) {
          this.internalErrors++;
          this.lastInternalError = `${p.syscall} (retry): ${(err as Error)?.stack ?? err}`;
          done = fail(Errno.EFAULT);
        }
        if (!done) {
          this.parked.push(p);
          continue;
        }
        progress = true;
        p.domain.account.pendingCalls--;
        this.finish(p.domain, p.callId, p.syscall, done);
      }
      if (progress) this.pollStack();
    }
  }

  /** One timer for the earliest of: a parked call's timeout, the stack's deadline, a wire's next delivery. */
  private armTimer(): void {
    let next = this.stackDeadline ?? Infinity;
    for (const { blocked } of this.parked) if (blocked.deadline !== undefined && blocked.deadline < next) next = blocked.deadline;
    if (next === this.timerAt) return;
    clearTimeout(this.timer);
    this.timerAt = next;
    if (next === Infinity) return;
    this.timer = setTimeout(() => this.expire(), Math.max(0, next - this.now()));
  }

  private expire(): void {
    this.timerAt = Infinity;
    const now = this.now();
    this.parked = this.parked.filter((p) => {
      if (p.blocked.deadline === undefined || p.blocked.deadline > now) return true;
      p.domain.account.pendingCalls--;
      this.finish(p.domain, p.callId, p.syscall, p.blocked.onTimeout);
      return false;
    });
    this.pumpStack();
  }

  private domainStats(d: Domain): DomainStats {
    return {
      name: d.name,
      alive: d.alive,
      exitReason: d.exitReason,
      accounting: d.account.snapshot(),
      limits: d.account.limits,
      calls: d.calls,
      malformed: d.malformed,
    };
  }
}
