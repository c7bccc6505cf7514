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
  encodeReplyInto,
  Errno,
  errnoName,
  MAX_CALL_ID,
  FAULT_ERRNO,
  MAX_FRAME_BYTES,
  MAX_REQUEST_ITEMS,
  peekArrayLength,
  peekCallId,
  replyBytesAt,
  SYSCALL_BY_NUMBER,
  SYSCALLS,
  UNKNOWN_CALL_ID,
  type DomainAccounting,
  type FaultDelivery,
  type RecvfromResult,
} from '@moat/abi';
import {
  earlier,
  formatIpv4Address,
  LoopbackDevice,
  parseIpv4Address,
  parseMacAddress,
  PCAP_LINKTYPE_ETHERNET,
  PCAP_LINKTYPE_RAW,
  Stack,
  TurnQueue,
  type Device,
  type Endpoints,
} from '@moat/netstack';
import { join } from 'node:path';
import { Account, DEFAULT_LIMITS, type Limits } from './account.js';
import { PcapFile, TappedDevice } from './drivers/capture.js';
import { EthernetPort, type Wire } from './drivers/ethernet-port.js';
import { BufferPool, type PoolStats } from './buffer-pool.js';
import { Domain, type CallOutcomes, type DomainPort } from './domain.js';
import { Conductor, type LockstepMember } from './lockstep.js';
import type { KSocket } from './ksocket.js';
import { fail, type Blocked, type Done } from './outcome.js';
import { planFault, type FaultRequest, type PlannedFault } from './faults.js';
import { Recorder, type RecordedTimeline } from './recorder.js';
import { HANDLERS, sendRecord } from './syscalls.js';

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
  /** Told when a domain is to be killed: a planned 'kill' fault came due, or its watchdog fired. */
  onKill?: (domain: string, reason: string) => void;
  /**
   * Record the event trace (recorder.ts): every served call, every TCP
   * transition, domains attaching, detaching and reported. Off by default;
   * docs/architecture.md says what it costs.
   */
  trace?: boolean;
  /** Most events the trace keeps (default 100,000); past it they are only counted as dropped. */
  traceEvents?: number;
  /** With `trace`, also record each frame sent or received on every interface (loopback once per packet). */
  tracePackets?: boolean;
  now?: () => number;
  /**
   * Deterministic mode (docs/scenarios.md, "Lockstep"): the conductor's
   * virtual clock (lockstep.ts), no timers or setImmediate of the kernel's
   * own; the worker lets the conductor go on after every event, and it
   * serves rounds only when no domain of any of its kernels is running and
   * moves the clock only when every domain waits.
   */
  lockstep?: boolean;
  /** Lockstep: the conductor of the run, shared by every kernel of the worker (one kernel alone makes its own). */
  conductor?: Conductor;
  /** The TCP ISN secret (RFC 6528); random when left out. Lockstep derives it from the run's seed. */
  isnKey?: Uint8Array;
  /**
   * Called after each round of serving, once the stack has been polled for
   * what the round's calls did (or before, when no call is parked for the
   * poll to finish): the worker bumps the wake-up words of the domains it
   * answered then (see worker.ts), not reply by reply.
   */
  afterRound?: () => void;
}

/** Syscall numbers whose first argument is a handle (the ABI's schemas title it so). */
const HANDLE_FIRST: readonly boolean[] = SYSCALL_BY_NUMBER.map((name) => {
  const items = name && (SYSCALLS[name].args as { items?: { title?: string }[] }).items;
  return items?.[0]?.title === 'handle';
});

/** A connection's four-tuple as the trace names it: 'local > remote'. */
/** Pool bytes kept for the stack's own frames: a few dozen ARP requests, ICMP errors and RSTs. */
const STACK_RESERVED_BYTES = 32 * 1024;

/**
 * Frame and send-ring bytes a domain may spend per turn beside its batch of
 * frames (deficit round robin): four writes of 64 KiB, so that a streaming
 * domain's records reach TCP four at a time rather than one per round (a
 * round's poll and wake-ups cost as much as the copy), while a domain of
 * small calls waits behind at most this much copying per other domain.
 */
const QUANTUM_BYTES = 256 * 1024;

/**
 * How long (ms) the kernel looks for the next call of a caller it has just
 * answered in its reply slot, before it goes back to its event loop (as
 * Linux's busy polling of a socket does). A blocked caller usually makes its
 * next call within microseconds; found here, it is served in the same drain,
 * and the kernel is not woken for it: a sync null call took 8.8 µs without
 * and 6.7 with 5 µs of polling (2 µs: 7.1; 10 µs: 6.5).
 */
const BUSY_POLL_MS = 0.005;

/** The arguments of a call that has none (a null call): one shared array, as handlers only read theirs. */
const NO_ARGS: unknown[] = [];

/** The most a recv's reply holds after its data: the address (5 bytes), port (3), flags (1) and answered count (5), rounded up. */
const RECV_REPLY_TAIL_BYTES = 16;

/** What serving a queued message costs the kernel, in the drain's units: its bytes (at least 1). */
function frameCost(message: unknown): number {
  if (!(message instanceof Uint8Array) || message.byteLength > MAX_FRAME_BYTES) return 1; // refused unread
  return Math.max(1, message.byteLength);
}

const connText = (e: Endpoints) =>
  `${formatIpv4Address(e.localAddr)}:${e.localPort} > ${formatIpv4Address(e.remoteAddr)}:${e.remotePort}`;

interface Parked {
  /** Kept whole, not copied: its onTimeout may depend on progress made while parked. */
  blocked: Blocked;
  domain: Domain;
  callId: number;
  syscall: string;
  /** When the kernel took the request (for the trace), and the handle it names. */
  start: number;
  handle: number;
}

export interface DomainStats {
  name: string;
  alive: boolean;
  exitReason?: string;
  accounting: DomainAccounting;
  limits: Limits;
  calls: CallOutcomes;
  malformed: number;
  /** Socket data the kernel copied in from the domain (sent) and out to it (received, peeks included). */
  bytes: { sent: number; received: number };
  /** Of that: the sends that came as send ring records, not calls, and the bytes that went out as read-ahead. */
  batched: { ringSends: number; readAheadBytes: number };
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

export class Kernel implements LockstepMember {
  readonly stack: Stack;
  /** The event trace, when `trace` is on. */
  readonly recorder: Recorder | undefined;
  readonly pool: BufferPool;
  private readonly stackAccount: Account;
  private readonly ports = new Map<string, Port>();
  private loopbackCapture: PcapFile | undefined;
  private stackDeadline: number | undefined;
  readonly now: () => number;
  private readonly domains = new Map<string, Domain>();
  private readonly departed: Domain[] = [];
  /** The domains with work, in the order they became runnable (a round takes them as its turn). */
  private readonly runnable = new TurnQueue<Domain>();
  private parked: Parked[] = [];
  /** Domains whose send ring waits on its first record (Domain.ringStuck). */
  private readonly stuckRings = new Set<Domain>();
  /** Live stream sockets, whose buffers are charged to their owners after each poll. */
  private readonly streams = new Set<KSocket>();
  /** Domains with a watchdog or a fault planned for a time: the timer looks at them. */
  private readonly timed = new Set<Domain>();
  private scheduled = false;
  /** Inside drain(): arrivals join its rounds instead of scheduling another. */
  private draining = false;
  /** The next drain polls the stack before serving: a wire delivered frames, or sockets were reset. */
  private pollFirst = true;
  /** The stack's TCP counters when streams were last charged (pollStack). */
  private tcpActivity = -1;
  private timer: NodeJS.Timeout | undefined;
  private timerAt = Infinity;
  private readonly leaks: string[] = [];
  private internalErrors = 0;
  private lastInternalError: string | undefined;
  private lastMalformed: string | undefined;
  private readonly batch: number;
  /** Lockstep: the run's conductor and clock (lockstep.ts); undefined otherwise. */
  private readonly conductor: Conductor | undefined;
  /** Lockstep: the host holds the clock (hold op, or every awaited domain has ended). */
  private held = false;
  /** Lockstep: the domains the run waits for that have not ended (undefined: not told). */
  private awaited: Set<string> | undefined;
  /** Lockstep: detaches the host asked for, carried out in attach order once no domain runs. */
  private readonly exits = new Map<string, { reason: string; done: (stats: DomainStats | undefined) => void; restartAfterMs?: number }>();
  /**
   * While tracing, the clock's latest reading on the serving path. Calls in a
   * round are served back to back, so the time one is answered is the time the
   * next is taken: recording costs one clock read per call, not two (a read
   * takes about 0.3 µs on some virtual machines, a tenth of the kernel's work
   * for a null call).
   */
  private tick = 0;

  constructor(private readonly options: KernelOptions = {}) {
    this.pool = new BufferPool(options.poolBytes);
    if (options.lockstep) {
      const conductor = (this.conductor = options.conductor ?? new Conductor());
      conductor.join(this);
      this.now = () => conductor.now;
    } else this.now = options.now ?? (() => performance.now());
    this.batch = options.batchPerDomain ?? 16;
    const stackBytes = options.stackBufferBytes ?? 1 << 20;
    // The stack's own frames (ARP, ICMP errors and echo replies, RSTs) keep a reserve of the pool, so a
    // domain that takes every buffer it can cannot stop neighbour resolution for the others (invariant 5).
    this.stackAccount = new Account({ maxHandles: 0, maxPendingCalls: 0, maxBufferBytes: stackBytes, reservedBufferBytes: Math.min(stackBytes, STACK_RESERVED_BYTES) });
    if (!this.pool.reserve(this.stackAccount)) throw new Error(`the pool (${this.pool.capacityBytes} B) cannot hold the stack's reserve of ${STACK_RESERVED_BYTES} B`);
    this.stack = new Stack({ now: this.now, isnKey: options.isnKey, allocate: (n) => this.pool.allocate(n, this.stackAccount) });
    const kernelTrack = `kernel:${options.machineName ?? 'machine'}`;
    const recorder = options.trace ? new Recorder({ capacity: options.traceEvents, now: this.now }) : undefined;
    this.recorder = recorder;
    // A hook rather than a scan of every connection's transitions after each poll.
    if (recorder) this.stack.tcp.onTransition = (conn, t) => recorder.transition(kernelTrack, t.from, t.to, t.event, connText(conn.endpoints));
    const packets = options.tracePackets ? recorder : undefined;
    const capture = (iface: string, linktype: number) =>
      options.captureDir ? new PcapFile(join(options.captureDir, `${options.machineName ?? 'machine'}-${iface}.pcap`), linktype) : undefined;
    let loopback: Device = new LoopbackDevice();
    const loCapture = (this.loopbackCapture = capture('lo', PCAP_LINKTYPE_RAW));
    if (loCapture || packets) {
      loopback = new TappedDevice(loopback, (frame) => {
        loCapture?.write(frame);
        packets?.packet(kernelTrack, 'lo', 'lo', frame, false);
      });
    }
    this.stack.addInterface({ name: 'lo', device: loopback, addr: parseIpv4Address('127.0.0.1'), prefixLength: 8 });
    for (const spec of options.interfaces ?? []) {
      const [addr, prefix] = spec.addr.split('/');
      const device = new EthernetPort(spec.mtu ?? 1500, () => this.schedule(), this.now);
      const port: Port = { spec, device, capture: capture(spec.name, PCAP_LINKTYPE_ETHERNET) };
      if (port.capture || packets) {
        device.tap = (frame, direction) => {
          port.capture?.write(frame);
          packets?.packet(kernelTrack, spec.name, direction, frame, true);
        };
      }
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

  /**
   * A new domain. `watchdogMs`: the kernel asks the host to kill it (onKill)
   * once it has run that long with no call queued or parked, i.e. hung,
   * counting from its first answered call. `faults`: planned at once.
   */
  attach(name: string, port: DomainPort, limits: Partial<Limits> = {}, options: { watchdogMs?: number; faults?: FaultRequest[] } = {}): Domain {
    if (this.domains.has(name)) throw new Error(`domain ${name} is already attached`);
    const d = new Domain(name, port, { ...DEFAULT_LIMITS, ...limits });
    if (!this.pool.reserve(d.account)) {
      throw new Error(`domain ${name}: cannot reserve ${d.account.limits.reservedBufferBytes} buffer bytes (pool ${this.pool.capacityBytes} B, ${this.pool.stats().reservedBytes} B reserved for others, at most its maxBufferBytes)`);
    }
    if (options.watchdogMs !== undefined) {
      if (!(Number.isFinite(options.watchdogMs) && options.watchdogMs > 0)) throw new Error(`domain ${name}: watchdogMs must be a positive number`);
      // Armed from its first answered call on: loading its program is not hanging.
      d.watchdogMs = options.watchdogMs;
      this.timed.add(d);
    }
    this.domains.set(name, d);
    this.conductor?.attached(name);
    this.recorder?.lifecycle(name, 'attach');
    // Planned before its first call can arrive, so a fault at call N never misses it.
    try {
      for (const f of options.faults ?? []) this.injectFault(name, f);
    } catch (err) {
      this.detach(name, 'bad fault plan');
      throw err;
    }
    this.armTimer();
    return d;
  }

  /**
   * Plans a fault for a domain (see faults.ts): at its Nth call from now on
   * counting from its first, or after a delay. Throws on a malformed request.
   */
  injectFault(name: string, request: FaultRequest): void {
    const d = this.domains.get(name);
    if (!d) throw new Error(`no domain named ${name}`);
    const plan = planFault(request, this.now());
    if (typeof plan === 'string') throw new Error(`fault for ${name}: ${plan}`);
    d.faults.push(plan);
    if (plan.at !== undefined) {
      this.timed.add(d);
      this.armTimer();
    }
  }

  /**
   * A frame (or anything else) arrived on a domain's channel. `now`: serve
   * it in this turn of the event loop rather than after a setImmediate (the
   * worker's port handler: it saves a turn of the loop on every call).
   * Fairness is the drain's either way; inside a drain it only queues.
   */
  submit(d: Domain, message: unknown, now = false): void {
    if (!d.alive) return;
    d.runningSince = undefined; // it is in the kernel now
    if (d.account.pendingCalls >= d.account.limits.maxPendingCalls) {
      // Over its share of pending calls: refused at once, before any decoding.
      const id = message instanceof Uint8Array ? peekCallId(message) : UNKNOWN_CALL_ID;
      return this.finish(d, id, '(queue)', fail(Errno.EAGAIN), this.recorder ? this.now() : 0);
    }
    d.account.pendingCalls++;
    // Lockstep serves domains in attach order, when lockstepAdvance decides; arrival order is the OS's.
    if (this.options.lockstep) return void d.queue.push(message);
    d.queue.push(message);
    this.makeRunnable(d);
    if (this.draining) return;
    if (now) this.drain();
    else this.schedule(false);
  }

  /** The domain wrote to its send ring after the kernel found it empty (a RingDoorbell came): it takes a turn. */
  ringDoorbell(d: Domain): void {
    if (!d.alive || this.options.lockstep) return;
    d.ringIdle = false;
    this.makeRunnable(d);
    if (!this.draining) this.schedule(false);
  }

  private makeRunnable(d: Domain): void {
    if (d.scheduled) return;
    d.scheduled = true;
    this.runnable.push(d);
  }

  /**
   * Releases everything a domain held (invariant 6): its sockets close, the
   * grants it made are revoked, its queued and parked calls are dropped, and
   * peers blocked on its sockets are answered with ECONNRESET.
   */
  detach(name: string, reason: string): DomainStats | undefined {
    const d = this.domains.get(name);
    if (!d) {
      // The latest life of that name: a restarted domain has departed more than once.
      const gone = [...this.departed].reverse().find((x) => x.name === name);
      return gone && this.domainStats(gone);
    }
    d.alive = false;
    d.exitReason = reason;
    this.timed.delete(d);
    this.domains.delete(name);
    this.recorder?.lifecycle(name, 'detach', { reason, unanswered: d.account.pendingCalls });
    d.account.pendingCalls -= d.queue.length;
    d.queue.length = 0;
    // Its ring's records go with it, as its queued calls do.
    d.ringStuck = undefined;
    this.stuckRings.delete(d);
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
    // The grants it made (of sockets others granted it, too) are charged to it: they go with it.
    for (const other of this.domains.values()) {
      for (const [handle, entry] of [...other.table.entries()]) {
        if (entry.payer !== d.account) continue;
        other.table.remove(handle);
        const grants = entry.object.grants;
        const i = grants.findIndex((g) => g.domain === other && g.handle === handle);
        if (i >= 0) grants.splice(i, 1);
      }
    }
    if (!d.account.empty) this.leaks.push(`${name}: ${JSON.stringify(d.account.snapshot())}`);
    this.pool.unreserve(d.account);
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

  /** The event trace so far: empty when the kernel does not record (`trace`). Times count from `recorder.startedAt`. */
  timeline(): RecordedTimeline {
    return this.recorder?.timeline() ?? { events: [], dropped: 0 };
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

  /** A drain on the next turn of the event loop; `poll`: the stack has something to do even if no call is queued. */
  private schedule(poll = true): void {
    if (poll) this.pollFirst = true;
    if (this.scheduled || this.options.lockstep) return; // lockstepAdvance polls when pollFirst says so
    this.scheduled = true;
    setImmediate(() => this.drain());
  }

  /**
   * Serves queued requests round-robin (invariant 7), as deficit round robin:
   * each turn a domain may spend up to `batch` frames and QUANTUM_BYTES more
   * of frame bytes, so a domain of large frames (which cost the kernel in
   * proportion to their size) gets no more of the kernel than one of small ones.
   */
  private drain(): void {
    this.scheduled = false;
    if (this.pollFirst) {
      // Frames from a wire wait for a poll; loopback's were taken by the poll after the round that sent them.
      this.pollFirst = false;
      this.pumpStack();
    }
    this.draining = true;
    try {
      this.rounds();
    } finally {
      this.draining = false;
      // Every round ends with one; this one is for a round a kernel bug cut short (see inRounds).
      this.options.afterRound?.();
    }
    if (this.runnable.length > 0) this.schedule(false); // let host messages (deaths, stats) in between
  }

  /**
   * Whether the kernel is serving its rounds now: a reply made meanwhile is
   * followed by afterRound before the kernel goes back to its event loop, so
   * whoever flushes wake-ups there need not schedule a flush of its own.
   */
  get inRounds(): boolean {
    return this.draining;
  }

  private rounds(): void {
    let rounds = 0;
    while (this.runnable.length > 0 && rounds++ < 64) {
      if (this.recorder) this.tick = this.now();
      const sentBefore = this.stack.counters.get('tx.frames');
      this.answeredInSlot = undefined;
      // Served from this turn while the next gathers.
      const count = this.runnable.take();
      const turn = this.runnable.turn;
      for (let t = 0; t < count; t++) {
        const d = turn[t]!;
        d.scheduled = false;
        d.deficit += QUANTUM_BYTES;
        // Its ring's records first: they were written before any frame it posts after them.
        const ringLeft = this.drainRing(d);
        for (let i = 0; i < this.batch && d.queue.length > 0; i++) {
          const cost = frameCost(d.queue[0]);
          if (cost > d.deficit) break;
          d.deficit -= cost;
          d.account.pendingCalls--;
          this.serveGuarded(d, d.queue.shift());
        }
        if ((d.queue.length > 0 || ringLeft) && d.alive) this.makeRunnable(d);
        else d.deficit = 0; // an idle domain banks nothing
      }
      // The round gave the stack nothing to carry (no frame sent, no connection with work): as a null call, or a
      // call that only reads or sets a socket's state.
      const stackIdle = this.stack.counters.get('tx.frames') === sentBefore && !this.stack.tcp.busy;
      // The domains answered need not wait for a poll that can finish no parked call: none is parked, or the stack is idle.
      if (this.parked.length === 0 || stackIdle) this.options.afterRound?.();
      // Nor is the poll needed at all then, unless a call or a ring waits on the stack (its timers have their own wake-up).
      if (!stackIdle || this.parked.length > 0 || this.stuckRings.size > 0 || this.pollFirst) this.pumpStack();
      this.options.afterRound?.();
      // Requests that arrived meanwhile join the next round, not the next drain. Every port is pulled only
      // when some domain has more: a lone caller's own port is empty (it waits for its reply), and pulling
      // all 65 cost it more than serving its call. A flooder's calls come one message event each, so its
      // own port tells; then every port is pulled, and a newcomer waits a turn, not the flooder's backlog.
      if (this.runnable.length === 0) for (let t = 0; t < count; t++) turn[t]!.port.pull?.();
      const answered = this.answeredInSlot as Domain | undefined; // set by reply() during the round
      if (this.runnable.length === 0 && answered?.alive) this.busyPoll(answered);
      if (this.runnable.length > 0) for (const d of this.domains.values()) d.port.pull?.();
    }
  }

  /** Pulls `d`'s port (once at least) until some domain has a call or BUSY_POLL_MS has passed (real time, not the kernel's clock). */
  private busyPoll(d: Domain): void {
    const until = performance.now() + BUSY_POLL_MS;
    do d.port.pull?.();
    while (this.runnable.length === 0 && performance.now() < until);
  }

  /** A kernel bug met while serving `where`, never the domain's fault: counted, and the call answered EFAULT while the kernel serves everyone else. */
  private kernelBug(where: string, err: unknown): Done {
    this.internalErrors++;
    this.lastInternalError = `${where}: ${(err as Error)?.stack ?? err}`;
    return fail(Errno.EFAULT);
  }

  /** A parked call's (or a stuck ring record's) retry, as call `callId` of `d` (see recvBuffer); a throw is a kernel bug, answered EFAULT. */
  private retryGuarded(blocked: Blocked, syscall: string, d?: Domain, callId = UNKNOWN_CALL_ID): Done | null {
    this.answeringDomain = d;
    this.answeringCall = callId;
    try {
      return blocked.retry();
    } catch (err) {
      return this.kernelBug(`${syscall} (retry)`, err);
    } finally {
      this.answeringDomain = undefined;
    }
  }

  /** serve, and if it throws (a kernel bug), count it and answer the call rather than die. */
  private serveGuarded(d: Domain, message: unknown): void {
    try {
      this.serve(d, message);
    } catch (err) {
      const answer = this.kernelBug('serve', err);
      const id = message instanceof Uint8Array ? peekCallId(message) : UNKNOWN_CALL_ID;
      try {
        this.reply(d, id, answer);
      } catch {
        // the domain's channel is gone: nothing to answer
      }
    }
  }

  private serve(d: Domain, message: unknown): void {
    // Taken now: when the call before it was answered (or the round began).
    const start = this.tick;
    d.served++;
    if (d.faults.length > 0) {
      const due = this.dueFault(d);
      if (due) return this.deliverFault(d, message instanceof Uint8Array ? peekCallId(message) : UNKNOWN_CALL_ID, due);
    }
    if (!(message instanceof Uint8Array)) return this.malformed(d, UNKNOWN_CALL_ID, 'frame is not a byte array', Errno.EINVAL, start);
    if (message.byteLength > MAX_FRAME_BYTES) return this.malformed(d, peekCallId(message), 'frame too large', Errno.EMSGSIZE, start);
    // Invariant 3: decode only bytes no domain can change any more. A posted frame
    // arrives cloned or transferred, so it is the kernel's alone; one in shared
    // memory is still the domain's to change, and is copied first.
    const frame = message.buffer instanceof SharedArrayBuffer ? message.slice() : message;
    const items = peekArrayLength(frame);
    if (items !== undefined && items > MAX_REQUEST_ITEMS) return this.malformed(d, peekCallId(frame), `frame declares ${items} items`, Errno.EINVAL, start);
    let decoded: unknown;
    try {
      decoded = decodeFrame(frame);
    } catch {
      return this.malformed(d, peekCallId(frame), 'frame is not msgpack', Errno.EINVAL, start);
    }
    if (!Array.isArray(decoded) || decoded.length < 2) return this.malformed(d, peekCallId(frame), 'frame is not [id, sysno, ...args]', Errno.EINVAL, start);
    const [callId, sysno] = decoded;
    if (!Number.isInteger(callId) || callId < 1 || callId > MAX_CALL_ID) return this.malformed(d, UNKNOWN_CALL_ID, 'bad call id', Errno.EINVAL, start);
    const name = Number.isInteger(sysno) ? SYSCALL_BY_NUMBER[sysno] : undefined;
    // One counter for every unknown number: a counter per number would let a domain grow the kernel's memory at will.
    if (!name) return this.finish(d, callId, '(unknown syscall)', fail(Errno.ENOSYS), start);
    const args = decoded.length === 2 ? NO_ARGS : decoded.slice(2);
    const handle = HANDLE_FIRST[sysno] && Number.isInteger(args[0]) ? (args[0] as number) : NaN;
    if (!argsValid(sysno, args)) return this.malformed(d, callId, argsProblem(sysno, args) ?? 'invalid arguments', Errno.EINVAL, start, name, handle);
    const ringError = d.ringErrors.size > 0 ? d.ringErrors.get(handle) : undefined;
    if (ringError !== undefined && (name === 'sendto' || name === 'recvfrom' || name === 'close')) {
      d.ringErrors.delete(handle);
      // A queued send's error is the socket's pending error: the next send or recv reports it, as Linux reports an
      // asynchronous error; close clears it.
      if (name !== 'close') return this.finish(d, callId, name, fail(ringError), start, handle);
    }
    let outcome;
    this.answeringDomain = d;
    this.answeringCall = callId;
    try {
      outcome = HANDLERS[name](this, d, args);
    } catch (err) {
      outcome = this.kernelBug(name, err);
    } finally {
      this.answeringDomain = undefined;
    }
    if ('blocked' in outcome) {
      d.account.pendingCalls++;
      this.parked.push({ blocked: outcome.blocked, domain: d, callId, syscall: name, start, handle });
      if (this.recorder) this.tick = this.now();
      if (outcome.blocked.deadline !== undefined && outcome.blocked.deadline < this.timerAt) this.armTimer();
      return;
    }
    this.finish(d, callId, name, outcome, start, handle);
  }

  /**
   * Answers a call: counts its result, replies, and records it in the trace
   * from `start` (when the kernel took the request) to now. `handle` is the
   * one it named (NaN if none); a new socket's is its result.
   */
  private finish(d: Domain, callId: number, syscall: string, done: Done, start: number, handle = NaN): void {
    d.count(syscall, done.errno === 0 ? 'OK' : errnoName(done.errno));
    if (done.errno === 0) {
      if (syscall === 'socket') handle = done.result as number;
      // Socket data copied in from the domain and out to it, for the report.
      else if (syscall === 'sendto') d.bytes.sent += done.result as number;
      else if (syscall === 'recvfrom') {
        const [data, , , , answered] = done.result as RecvfromResult;
        d.bytes.received += data.byteLength;
        if (answered !== undefined) d.batched.readAheadBytes += data.byteLength - answered;
      }
    }
    this.reply(d, callId, done);
    if (this.recorder) {
      this.tick = this.now();
      this.recorder.syscall(d.name, syscall, start, this.tick, done.errno, handle);
    }
    this.noteIfRunning(d);
  }

  /** With a watchdog, a domain with nothing left in the kernel starts running now. */
  private noteIfRunning(d: Domain): void {
    if (d.watchdogMs !== undefined && d.account.pendingCalls === 0) {
      d.runningSince = this.now();
      if (d.runningSince + d.watchdogMs < this.timerAt) this.armTimer();
    }
  }

  /** The planned fault due at this call (its serial number, or the time), taken off the plan. */
  private dueFault(d: Domain): PlannedFault | undefined {
    const now = d.faults.some((f) => f.at !== undefined) ? this.now() : 0;
    const i = d.faults.findIndex((f) => f.atCall === d.served || (f.at !== undefined && now >= f.at));
    return i < 0 ? undefined : d.faults.splice(i, 1)[0];
  }

  /**
   * Delivers a fault in place of the answer to call `callId`: a kill is the
   * host's to carry out; the others go back as the call's reply (FAULT_ERRNO),
   * which libc acts on.
   */
  private deliverFault(d: Domain, callId: number, fault: PlannedFault): void {
    d.count('(fault)', fault.kind);
    this.recorder?.lifecycle(d.name, 'fault', { kind: fault.kind, detail: fault.detail });
    if (fault.kind === 'kill') return this.askKill(d, fault.detail);
    // A hung domain makes no call again: lockstep need not wait for it, and its watchdog runs on the virtual clock.
    if (fault.kind === 'hang') d.hung = true;
    d.port.post(encodeReply(callId, FAULT_ERRNO, { fault: fault.kind, detail: fault.detail } satisfies FaultDelivery), callId);
    this.noteIfRunning(d);
  }

  /**
   * `n` bytes where a stream recv copies its data for the reply to the call
   * being served or retried. When its caller waits for that reply in its
   * reply slot, they are the slot's bytes where the reply's data goes
   * (replyBytesAt): the slot is claimed now, the reply is written
   * around them, and the data is copied once. Otherwise they are one scratch buffer
   * shared by every recv, which is safe because a recv's reply (which copies
   * the data into a frame of its own) is made before the kernel serves or
   * retries anything else, and carries only the bytes this recv wrote.
   */
  recvBuffer(n: number): Uint8Array {
    const d = this.answeringDomain;
    const slot = d?.port.slotFor?.(this.answeringCall);
    if (slot) {
      this.claimed = { d: d!, callId: this.answeringCall, slot };
      const at = replyBytesAt(this.answeringCall, n);
      // Room for what follows the data too (address, port, flags, the answered count); if not, the reply goes on the port.
      if (at + n + RECV_REPLY_TAIL_BYTES <= slot.length) return slot.subarray(at, at + n);
    }
    if (this.recvScratch.length < n) this.recvScratch = new Uint8Array(Math.max(n, 2 * this.recvScratch.length));
    return this.recvScratch.subarray(0, n);
  }
  private recvScratch = new Uint8Array(0);
  /** The call whose handler or retry runs now (see recvBuffer). */
  private answeringDomain: Domain | undefined;
  private answeringCall = UNKNOWN_CALL_ID;
  /** The reply slot recvBuffer claimed, and for which call: only that call's reply may go in it. */
  private claimed: { d: Domain; callId: number; slot: Uint8Array } | undefined;
  /** The last caller this round answered in its reply slot (whose next call the kernel then looks for: busyPoll). */
  private answeredInSlot: Domain | undefined;

  private reply(d: Domain, callId: number, done: Done): void {
    try {
      const result = done.errno === 0 ? done.result : undefined;
      // Straight into the blocked caller's own slot (claimed by recvBuffer already, or now) when it fits; otherwise
      // encodeReply's exact copy, never the encoder's scratch memory, so a domain never receives a byte of another's reply.
      const claimed = this.claimed;
      this.claimed = undefined;
      const slot = claimed?.d === d && claimed.callId === callId ? claimed.slot : d.port.slotFor?.(callId);
      const at = slot && encodeReplyInto(slot, callId, done.errno, result);
      if (at) {
        d.port.post(slot!.subarray(at.start, at.end), callId, true);
        this.answeredInSlot = d;
      } else if (!slot && d.port.postReply) d.port.postReply(callId, done.errno, result);
      else d.port.post(encodeReply(callId, done.errno, result), callId);
    } finally {
      done.after?.();
    }
  }

  /** A frame that broke the ABI: answered (under `syscall` when it named a valid one), and counted towards the oops limit. */
  private malformed(d: Domain, callId: number, why: string, errno: number, start: number, syscall = '(malformed)', handle = NaN): void {
    d.malformed++;
    this.lastMalformed = `${d.name}: ${why}`;
    this.finish(d, callId, syscall, fail(errno), start, handle);
    const limit = this.options.malformedLimit ?? 0;
    if (limit > 0 && d.malformed === limit) {
      const reason = `${limit} malformed frames (last: ${why})`;
      this.recorder?.lifecycle(d.name, 'oops', { reason });
      d.dying = !!this.options.lockstep;
      this.options.onOops?.(d.name, reason);
    }
  }

  /** Asks the host to kill a domain; in lockstep nothing more happens to it until the host's detach comes. */
  private askKill(d: Domain, reason: string): void {
    if (this.options.lockstep) d.dying = true;
    this.options.onKill?.(d.name, reason);
  }

  // ---- lockstep (the conductor's member: lockstep.ts) --------------------

  /** Lockstep: the domains the run waits for on this kernel (once they have all ended, on every kernel, the clock stops). */
  expectEnd(awaited: string[]): void {
    this.awaited = new Set(awaited);
  }

  get awaitedLeft(): number | undefined {
    return this.awaited?.size;
  }

  /**
   * Lockstep: the host is about to kill every domain left (the conductor
   * calls this on every kernel). Their calls are no longer served, and their
   * detaches are carried out together, in attach order, whatever order the
   * kills end in.
   */
  hold(): void {
    this.held = true;
    for (const d of this.domains.values()) d.dying = true;
  }

  /**
   * Lockstep's detach: the host saw the domain end. Carried out (and `done`
   * told) in attach order at the next point where no domain is running, so
   * which of two domains that ended together the host heard of first does
   * not change the log. `restartAfterMs`: its supervisor starts it again
   * after that much virtual time, and the clock waits there for the attach.
   */
  detachInStep(name: string, reason: string, done: (stats: DomainStats | undefined) => void, restartAfterMs?: number): void {
    if (!this.domains.has(name)) return done(this.detach(name, reason));
    this.exits.set(name, { reason, done, restartAfterMs });
    this.lockstepAdvance();
  }

  /**
   * Lockstep: runs `action` (the attach of domain `name`) once every kernel
   * is at rest: no domain running, none queued, every one waiting on a
   * kernel. A startAfter gate opens in real time while the other domains
   * run; at rest the state is the same however late the host's message came,
   * so the new domain joins the log at the same place every run.
   */
  whenAtRest(name: string, action: () => void): void {
    if (!this.conductor) return action();
    this.conductor.whenAtRest(name, action);
  }

  /** Lockstep: lets the conductor go on after an event (a no-op otherwise). */
  lockstepAdvance(): void {
    this.conductor?.advance();
  }

  pollIfDue(): boolean {
    if (!this.pollFirst) return false;
    this.pollFirst = false;
    this.pumpStack();
    return true;
  }

  running(): boolean {
    for (const d of this.domains.values()) {
      if (this.exits.has(d.name)) continue;
      // A dying domain counts as running until its detach comes: the kill lands in real time.
      if (d.dying) return true;
      if (d.hung) continue;
      if (d.account.pendingCalls === 0) return true;
      // Calls in the kernel: it waits, if its channel says so; a process domain's does not, and is taken to.
      if (d.rest && !d.rest.waiting) return true;
    }
    return false;
  }

  carryOutExits(): string[] | undefined {
    if (this.exits.size === 0) return undefined;
    const awaitedGone: string[] = [];
    for (const d of [...this.domains.values()]) {
      const exit = this.exits.get(d.name);
      if (!exit) continue;
      this.exits.delete(d.name);
      this.recorder?.lifecycle(d.name, 'exit', { reason: exit.reason, ...(exit.restartAfterMs !== undefined ? { restartAfterMs: exit.restartAfterMs } : {}) });
      const restarts = exit.restartAfterMs !== undefined && !this.held;
      if (restarts) this.conductor!.expectAttach(d.name, { ms: exit.restartAfterMs });
      exit.done(this.detach(d.name, exit.reason));
      // A domain that starts again is still one the run waits for.
      if (!restarts && this.awaited?.delete(d.name)) awaitedGone.push(d.name);
    }
    return awaitedGone;
  }

  serveRound(): boolean {
    let queued = false;
    for (const d of this.domains.values()) if (d.queue.length > 0) queued = true;
    if (!queued) return false;
    if (this.recorder) this.tick = this.now();
    // Each domain's queue (up to its batch) in attach order, then the stack and the parked calls.
    for (const d of this.domains.values()) {
      for (let i = 0; i < this.batch && d.queue.length > 0 && d.alive; i++) {
        d.account.pendingCalls--;
        this.serveGuarded(d, d.queue.shift());
      }
    }
    this.pumpStack();
    return true;
  }

  afterRound(): void {
    this.options.afterRound?.();
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
      this.stackDeadline = earlier(this.stackDeadline, due);
    }
    // Held bytes change with segments in or out, and with connections ending; reads and writes charge on their own.
    // An idle stack skips the walk over every stream (10,000 idle connections made every call pay for it).
    const c = this.stack.counters;
    const activity = c.get('in.tcp') + c.get('out.tcp') + c.get('in.tcpSyn') + this.stack.tcp.connections;
    if (activity === this.tcpActivity) return;
    this.tcpActivity = activity;
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
    while (progress && (this.parked.length > 0 || this.stuckRings.size > 0)) {
      progress = false;
      if (this.retryStuckRings()) progress = true;
      const waiting = this.parked;
      this.parked = [];
      for (const p of waiting) {
        const done = this.retryGuarded(p.blocked, p.syscall, p.domain, p.callId);
        if (!done) {
          this.parked.push(p);
          continue;
        }
        progress = true;
        p.domain.account.pendingCalls--;
        this.finish(p.domain, p.callId, p.syscall, done, p.start, p.handle);
      }
      if (progress) this.pollStack();
    }
  }

  // ---- send rings ---------------------------------------------------------

  /**
   * Carries out the records of the domain's send ring in order, each a
   * blocking stream send (sendRecord), while its turn's deficit lasts. A
   * record that must wait for room in its socket's send buffer stays at the
   * head, and the ring waits behind it (retryStuckRings). Returns true when
   * records are left that could go now (the domain needs another turn).
   */
  private drainRing(d: Domain): boolean {
    const ring = d.port.ring;
    if (!ring || d.ringIdle || d.ringStuck || !d.alive) return false;
    for (;;) {
      const record = ring.peek();
      if (!record) {
        if (ring.broken !== undefined) {
          this.ringBroke(d, ring.broken);
          return false;
        }
        // Empty: the domain rings the doorbell with its next record, unless one came meanwhile.
        if (ring.askDoorbell()) {
          d.ringIdle = true;
          return false;
        }
        continue;
      }
      if (record.data.length > d.deficit) return true;
      d.deficit -= record.data.length;
      const start = this.recorder ? this.now() : 0;
      const { handle, data } = record;
      // A record for a handle whose earlier record failed goes no further: that error is still to be reported.
      const outcome = d.ringErrors.has(handle) ? fail(d.ringErrors.get(handle)!) : this.guardedRecord(d, handle, data);
      if ('blocked' in outcome) {
        d.ringStuck = { blocked: outcome.blocked, handle, length: data.length, start };
        this.stuckRings.add(d);
        return false;
      }
      this.recordDone(d, handle, data.length, outcome, start);
    }
  }

  private guardedRecord(d: Domain, handle: number, data: Uint8Array) {
    try {
      return sendRecord(this, d, handle, data);
    } catch (err) {
      return this.kernelBug('sendto (ring)', err);
    }
  }

  /** A record finished: counted and traced as the sendto it is; an error becomes the handle's pending error. HEAD moves past it. */
  private recordDone(d: Domain, handle: number, length: number, done: Done, start: number): void {
    const sent = done.errno === 0 ? (done.result as number) : 0;
    d.count('sendto', done.errno === 0 ? 'OK' : errnoName(done.errno));
    d.bytes.sent += sent;
    d.batched.ringSends++;
    this.recorder?.syscall(d.name, 'sendto', start, this.now(), done.errno, handle);
    if (done.errno !== 0 && !d.ringErrors.has(handle)) d.ringErrors.set(handle, done.errno);
    // A short write (an error after some bytes went, or a socket made non-blocking behind libc's back): the rest is
    // lost, and libc goes back to calls, whose next send meets the socket's state itself.
    if (done.errno !== 0 || sent < length) d.port.ring!.stop();
    if (d.port.ring!.consume()) d.port.wake?.();
  }

  /** Retries each stuck ring's first record; a domain whose record finished takes a turn for the rest. True if any finished. */
  private retryStuckRings(): boolean {
    let progress = false;
    for (const d of this.stuckRings) {
      const stuck = d.ringStuck!;
      const done = this.retryGuarded(stuck.blocked, 'sendto (ring)');
      if (!done) continue;
      progress = true;
      d.ringStuck = undefined;
      this.stuckRings.delete(d);
      this.recordDone(d, stuck.handle, stuck.length, done, stuck.start);
      this.makeRunnable(d);
      this.schedule(false);
    }
    return progress;
  }

  /** The domain's ring held a header that cannot be: counted as a malformed frame, and the domain is woken to go on by calls. */
  private ringBroke(d: Domain, why: string): void {
    if (d.ringBrokenSeen) return;
    d.ringBrokenSeen = true;
    d.malformed++;
    this.lastMalformed = `${d.name}: send ring: ${why}`;
    d.port.wake?.();
  }

  /**
   * One timer for the earliest of: a parked call's timeout, the stack's
   * deadline, a wire's next delivery, a planned fault's time, a watchdog.
   */
  private armTimer(): void {
    if (this.options.lockstep) return; // lockstepAdvance moves the clock to nextDeadline() itself
    const next = this.nextDeadline();
    if (next === this.timerAt) return;
    clearTimeout(this.timer);
    this.timerAt = next;
    if (next === Infinity) return;
    this.timer = setTimeout(() => this.expire(), Math.max(0, next - this.now()));
  }

  /** The earliest of the deadlines armTimer names (Infinity: none). */
  nextDeadline(): number {
    let next = this.stackDeadline ?? Infinity;
    for (const { blocked } of this.parked) if (blocked.deadline !== undefined && blocked.deadline < next) next = blocked.deadline;
    for (const d of this.timed) {
      for (const f of d.faults) if (f.at !== undefined && f.at < next) next = f.at;
      if (d.watchdogMs !== undefined && d.runningSince !== undefined && d.runningSince + d.watchdogMs < next) next = d.runningSince + d.watchdogMs;
    }
    return next;
  }

  expire(): void {
    this.timerAt = Infinity;
    const now = this.now();
    this.parked = this.parked.filter((p) => {
      if (p.blocked.deadline === undefined || p.blocked.deadline > now) return true;
      p.domain.account.pendingCalls--;
      this.finish(p.domain, p.callId, p.syscall, p.blocked.onTimeout, p.start, p.handle);
      return false;
    });
    for (const d of this.timed) this.expireTimed(d, now);
    this.pumpStack();
  }

  /** A watchdog that ran out, and faults whose time came: a kill goes at once, others with a parked call or the next. */
  private expireTimed(d: Domain, now: number): void {
    if (d.watchdogMs !== undefined && d.runningSince !== undefined && now >= d.runningSince + d.watchdogMs) {
      d.runningSince = undefined;
      const reason = `watchdog: ran ${d.watchdogMs} ms without a syscall`;
      this.recorder?.lifecycle(d.name, 'watchdog', { reason });
      this.askKill(d, reason);
    }
    for (let i = d.faults.length - 1; i >= 0; i--) {
      const f = d.faults[i]!;
      if (f.at === undefined || f.at > now) continue;
      const parked = f.kind === 'kill' ? -1 : this.parked.findIndex((p) => p.domain === d);
      if (f.kind !== 'kill' && parked < 0) continue; // running: its next call gets it (dueFault)
      d.faults.splice(i, 1);
      let callId = UNKNOWN_CALL_ID;
      if (parked >= 0) {
        callId = this.parked[parked]!.callId;
        this.parked.splice(parked, 1);
        d.account.pendingCalls--;
      }
      this.deliverFault(d, callId, f);
    }
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
      bytes: { ...d.bytes },
      batched: { ...d.batched },
    };
  }
}
