/**
 * One TCP connection's data path (the TCB of RFC 9293 3.3.1), sans-IO: fed
 * segments, user calls and the time; it answers with the segments to send
 * and its next deadline. Sequence space, buffers and timers are plain
 * TypeScript; the control state lives in `tcpConnectionMachine`, which this
 * code drives with an event only when a control transition happens (never
 * per data segment), and whose transition `meta` says what to emit.
 */
import { MachineCell } from '../machine-cell.js';
import type { TcpHeader, TcpOptions } from '../wire/tcp.js';
import { noOptions, tcpHeaderLength, TCP_ACK, TCP_FIN, TCP_HEADER_LEN, TCP_PSH, TCP_RST, TCP_SYN } from '../wire/tcp.js';
import { ChallengeAckLimiter, classifyAck, RFC5961_CHALLENGE_ACK_LIMITS, rstAction, segmentAcceptable, trimToWindow } from './acceptability.js';
import { NewReno } from './congestion.js';
import { tcpConnectionMachine, tcpTransitionTable, type TcpError, type TcpEventType, type TcpState, type TcpTransitionMeta } from './connection-machine.js';
import { OooQueue } from './ooo-queue.js';
import { RtoEstimator } from './rto.js';
import { DUP_THRESH, SackScoreboard } from './sack-scoreboard.js';
import { seqAdd, seqGeq, seqGt, seqLeq, seqLt, seqMax, seqMin, seqSub } from './seq.js';
import { StreamBuffer } from './stream-buffer.js';
import { NO_BYTES } from './no-bytes.js';
import { earlier } from '../deadline.js';

export interface TcpConfig {
  /** Our MSS: the interface MTU less 40 bytes of IPv4 and TCP headers. */
  mss: number;
  sndBuf: number;
  rcvBuf: number;
  /** TCP_NODELAY: send small segments at once instead of waiting for outstanding data to be acknowledged (Nagle). */
  noDelay: boolean;
  /** SO_KEEPALIVE, and its idle time, probe interval and probe count (Linux: 7200 s, 75 s, 9). */
  keepAlive: boolean;
  keepAliveIdleMs: number;
  keepAliveIntervalMs: number;
  keepAliveProbes: number;
  /** 2*MSL, the TIME-WAIT period (RFC 9293 says MSL is 2 minutes; Linux waits 60 s in all). */
  timeWaitMs: number;
  /** ACKs may be delayed this long (RFC 9293 3.8.6.3: < 0.5 s; Linux about 40 ms). */
  delayedAckMs: number;
  minRtoMs: number;
  initialRtoMs: number;
  /** SYN retransmissions before giving up (Linux tcp_syn_retries: 6) and data ones (tcp_retries2: 15). */
  synRetries: number;
  dataRetries: number;
  /** Offer window scaling, SACK and timestamps in our SYN. */
  windowScaling: boolean;
  sack: boolean;
  timestamps: boolean;
}

export const DEFAULT_TCP_CONFIG: Readonly<TcpConfig> = Object.freeze({
  mss: 1460,
  // Linux starts a connection's buffers smaller and grows them to several MiB as a transfer goes on; 512 KiB
  // each lets a bulk transfer keep 512 KiB in flight and a recv with read-ahead take that much at once
  // (storage grows on demand, so an idle connection does not pay for it).
  sndBuf: 512 * 1024,
  rcvBuf: 512 * 1024,
  noDelay: false,
  keepAlive: false,
  keepAliveIdleMs: 7_200_000,
  keepAliveIntervalMs: 75_000,
  keepAliveProbes: 9,
  timeWaitMs: 60_000,
  delayedAckMs: 40,
  minRtoMs: 200,
  initialRtoMs: 1000,
  synRetries: 6,
  dataRetries: 15,
  windowScaling: true,
  sack: true,
  timestamps: true,
});

export interface Endpoints {
  localAddr: number;
  localPort: number;
  remoteAddr: number;
  remotePort: number;
}

export interface OutSegment {
  header: TcpHeader;
  /**
   * Often a view of the send buffer, not a copy (the packet buffer is where
   * its bytes are copied): valid until the connection is next written to or
   * acknowledged, unless `payloadStable`. Emit it, or copy it to keep it.
   */
  payload: Uint8Array;
  /**
   * The payload's bytes stay as they are until the segment is acknowledged
   * (a view of the send buffer's storage, or bytes of its own), so a packet
   * may hold the view instead of a copy (loopback's gather); false for a
   * view put together in the send buffer's scratch memory, which the next
   * view may overwrite.
   */
  payloadStable: boolean;
}

/** Counters a connection keeps, for reports and tests. */
export interface TcpConnectionStats {
  segmentsIn: number;
  segmentsOut: number;
  bytesIn: number;
  bytesOut: number;
  retransmits: number;
  fastRetransmits: number;
  timeouts: number;
  dupAcksIn: number;
  challengeAcks: number;
  outOfOrder: number;
  dropped: number;
  zeroWindowProbes: number;
  keepAliveProbes: number;
  /** Retransmissions found lost from SACKs of later data, and sent again before the RTO. */
  lostRetransmits: number;
  /** Resets for new data that came after the user closed the socket (see `orphan`). */
  abortsOnData: number;
}

const MEta = new Map<string, TcpTransitionMeta>();
for (const [from, event, to, meta] of tcpTransitionTable()) MEta.set(`${from}|${event}|${to}`, meta);

/** One control transition a connection took. */
export interface TcpTransitionRecord {
  from: TcpState;
  event: TcpEventType;
  to: TcpState;
}

export type TcpTransitionObserver = (conn: TcpConnection, transition: TcpTransitionRecord) => void;

/** The largest window a scaled window field can say (RFC 7323 2.3: shift at most 14). */
const MAX_WINDOW_SHIFT = 14;

/**
 * How many data segments at the start of a stream are ACKed at once, as
 * Linux's quick-ACK mode does at the first data (tcp_incr_quickack: half the
 * receive window in segments, at least 2, at most 16). A sender's first
 * flight is small (RFC 5681's IW of 2 segments when the MSS is large, or
 * the 64 KiB a SYN's unscaled window allows), so a delayed ACK of its first
 * segment would hold the whole stream for delayedAckMs.
 */
export function quickAckBudget(rcvBuf: number, mss: number): number {
  return Math.min(16, Math.max(2, Math.floor(rcvBuf / (2 * mss))));
}

export class TcpConnection {
  readonly stats: TcpConnectionStats = {
    segmentsIn: 0,
    segmentsOut: 0,
    bytesIn: 0,
    bytesOut: 0,
    retransmits: 0,
    fastRetransmits: 0,
    timeouts: 0,
    dupAcksIn: 0,
    challengeAcks: 0,
    outOfOrder: 0,
    dropped: 0,
    zeroWindowProbes: 0,
    keepAliveProbes: 0,
    lostRetransmits: 0,
    abortsOnData: 0,
  };
  /** Why the connection failed, once it has (ECONNREFUSED, ECONNRESET, ETIMEDOUT, EPIPE). */
  error: TcpError | undefined;
  /** Every control transition taken, for traces and transition coverage. */
  readonly transitions: TcpTransitionRecord[] = [];
  /** Told of each control transition as it is taken, so a tracer need not scan `transitions`. */
  onTransition: TcpTransitionObserver | undefined;
  /** Told when the user gives the connection work for its next output (the TCP layer polls only such connections and due timers). */
  onActivity: (() => void) | undefined;

  private readonly machine: MachineCell<typeof tcpConnectionMachine>;
  private readonly config: TcpConfig;
  // Send sequence space (RFC 9293 3.3.1).
  private readonly iss: number;
  private sndUna: number;
  private sndNxt: number;
  private sndMax: number;
  private sndWnd = 0;
  private maxSndWnd = 0;
  private sndWl1 = 0;
  private sndWl2 = 0;
  // Receive sequence space.
  private rcvNxt = 0;
  /** The right edge we last advertised: the window never shrinks below it (RFC 9293 3.8.6.2.2). */
  private rcvAdvertised = 0;
  // Negotiated options.
  private sndMss: number;
  private sndShift = 0;
  private rcvShift = 0;
  private sackOk = false;
  private tsOk = false;
  private tsRecent = 0;
  // Buffers: the send buffer starts at SND.UNA's first data byte; the receive buffer holds what the user has yet to read.
  private readonly sendBuf: StreamBuffer;
  private readonly recvBuf: StreamBuffer;
  private readonly ooo: OooQueue;
  /** Where our FIN goes, once the user has closed: just after the last byte written. */
  private finSeq: number | undefined;
  private finReceived = false;
  /** The user closed the socket (see orphan). */
  private orphaned = false;
  /** Set while a segment that acknowledged our FIN in FIN-WAIT-1 is being processed. */
  private ourFinAcked = false;
  // Congestion and timing.
  private readonly rto: RtoEstimator;
  private cc: NewReno;
  /** What the peer has SACKed, and (RFC 6675's HighRxt) one past the highest byte retransmitted in this recovery. */
  private readonly scoreboard = new SackScoreboard();
  private highRxt = 0;
  /** The last retransmission of SND.UNA's segment in SACK recovery, and SND.MAX when it left. */
  private unaRetransmission: { seq: number; sndMaxThen: number } | undefined;
  private timedSeq: number | undefined;
  private timedAt = 0;
  private retries = 0;
  private retransmitAt: number | undefined;
  private ackAt: number | undefined;
  private persistAt: number | undefined;
  private persistBackoff = 0;
  private keepAliveAt: number | undefined;
  private keepAliveSent = 0;
  private timeWaitAt: number | undefined;
  private lastHeardAt: number;
  private lastSentAt = 0;
  // What the next output() must send.
  private sendSyn = false;
  private ackNow = false;
  /** An ACK that must not wait for the next poll: a duplicate ACK for out-of-order data, or the ACK of a filled hole. */
  private urgentAck = false;
  private unackedSegments = 0;
  /** Data segments still to be ACKed at once (quick ACKs, see processData); undefined until the first data comes. */
  private quickAcks: number | undefined;
  private retransmitNow = false;
  private probeNow = false;
  private keepAliveNow = false;
  private rstNow: { seq: number; ack?: number } | undefined;
  /**
   * Per connection, never shared: a host-wide budget lets an attacker count
   * challenge ACKs on its own connection to learn whether a spoofed RST hit
   * someone else's (CVE-2016-5696), here one domain spying on another.
   */
  private readonly challengeLimiter = new ChallengeAckLimiter(RFC5961_CHALLENGE_ACK_LIMITS);

  constructor(
    readonly endpoints: Endpoints,
    iss: number,
    now: number,
    config: Partial<TcpConfig> = {},
  ) {
    this.config = { ...DEFAULT_TCP_CONFIG, ...config };
    this.iss = iss >>> 0;
    this.sndUna = this.sndNxt = this.sndMax = this.iss;
    this.sndMss = Math.min(536, this.config.mss); // RFC 9293 3.7.1: 536 until the peer says otherwise
    this.sendBuf = new StreamBuffer(this.config.sndBuf);
    this.recvBuf = new StreamBuffer(this.config.rcvBuf);
    this.ooo = new OooQueue({ maxBytes: this.config.rcvBuf });
    this.rto = new RtoEstimator({ minMs: this.config.minRtoMs, initialMs: this.config.initialRtoMs });
    this.cc = new NewReno({ smss: this.config.mss });
    this.lastHeardAt = now;
    if (this.config.windowScaling) {
      while (this.rcvShift < MAX_WINDOW_SHIFT && this.config.rcvBuf >> this.rcvShift > 65535) this.rcvShift++;
    }
    this.machine = new MachineCell(tcpConnectionMachine);
  }

  get state(): TcpState {
    return this.machine.getSnapshot().value as TcpState;
  }

  // ---- the user's side -------------------------------------------------------

  /** Active open (connect): sends a SYN. */
  open(now: number): void {
    this.event('OPEN_ACTIVE', now);
  }

  /**
   * A fully specified passive OPEN (RFC 9293 3.10.1): wait in LISTEN for a
   * SYN from the remote endpoint. From LISTEN, open() sends a SYN instead
   * (the figure's SEND), and close() or abort() ends it.
   */
  listen(now: number): void {
    this.event('OPEN_PASSIVE', now);
  }

  /**
   * Passive open for a SYN a listener received: the connection starts in
   * LISTEN, takes the SYN, and answers SYN-ACK.
   */
  accept(syn: TcpHeader, now: number): void {
    this.listen(now);
    this.input(syn, NO_BYTES, now);
  }

  /** Copies as much of `data` as the send buffer has room for; returns how much. */
  write(data: Uint8Array): number {
    const state = this.state;
    if (this.finSeq !== undefined || (!this.machine.getSnapshot().hasTag('canSend') && state !== 'SYN_SENT' && state !== 'SYN_RECEIVED')) return 0;
    const n = this.sendBuf.write(data);
    if (n > 0) this.onActivity?.();
    return n;
  }

  /** Bytes the user may read now, up to `max`. */
  read(max: number): Uint8Array {
    const data = this.recvBuf.peek(Math.min(max, this.recvBuf.length));
    this.consumeRead(data.length);
    return data;
  }

  /** As read, into `target` (as much as it holds) instead of a buffer of its own; returns the bytes read. */
  readInto(target: Uint8Array): number {
    const n = this.recvBuf.copyTo(0, target.length, target);
    this.consumeRead(n);
    return n;
  }

  private consumeRead(n: number): void {
    if (n === 0) return;
    const before = this.receiveWindow();
    this.recvBuf.consume(n);
    // Opening the window by at least an MSS (or half the buffer) is worth an ACK of its own (RFC 9293 3.8.6.2.2).
    if (this.receiveWindow() - before >= Math.min(this.sndMss, this.config.rcvBuf / 2) && before < this.sndMss) this.ackNow = true;
    this.onActivity?.();
  }

  /** The bytes read() would return, left in place (MSG_PEEK). */
  peek(max: number): Uint8Array {
    return this.recvBuf.peek(Math.min(max, this.recvBuf.length));
  }

  /** TCP_NODELAY and SO_KEEPALIVE may change at any time. */
  setOption(name: 'noDelay' | 'keepAlive', value: boolean): void {
    this.config[name] = value;
    if (name === 'keepAlive' && !value) this.keepAliveAt = undefined;
    this.onActivity?.();
  }

  option(name: 'noDelay' | 'keepAlive'): boolean {
    return this.config[name];
  }

  /**
   * The user closed the socket, not just its sending side: nothing will read
   * what arrives from now on, so new data is answered with a reset, which
   * tells the peer its data was lost (RFC 1122 4.2.2.13; Linux's abort on
   * data in FIN-WAIT). Without it a peer that keeps sending fills the
   * window and probes it forever.
   */
  orphan(): void {
    this.orphaned = true;
  }

  /** No more data from us: a FIN follows what is queued (shutdown(SHUT_WR), or close()). */
  close(now: number): void {
    this.event('CLOSE', now);
  }

  /** Drop everything and reset the peer (close with unread data, SO_LINGER 0, the owner's death). */
  abort(now: number): void {
    this.event('ABORT', now);
  }

  get readable(): number {
    return this.recvBuf.length;
  }

  get writable(): number {
    return this.finSeq !== undefined ? 0 : this.sendBuf.free;
  }

  /** Bytes the connection holds for its user: unacknowledged and unsent data, unread data, out-of-order data. */
  get heldBytes(): number {
    return this.sendBuf.length + this.recvBuf.length + this.ooo.bytes;
  }

  /** Whether every byte written has been acknowledged. */
  get drained(): boolean {
    return this.sendBuf.length === 0;
  }

  /** The peer's FIN has arrived (there may still be bytes to read before it). */
  get peerClosed(): boolean {
    return this.finReceived;
  }

  /** The peer sent its FIN and everything before it has been read. */
  get atEof(): boolean {
    return this.finReceived && this.recvBuf.length === 0;
  }

  /** Whether an ACK is owed that should not wait (see `urgentAck`). */
  get ackUrgent(): boolean {
    return this.urgentAck;
  }

  /** The sequence variables, for traces, reports and tests. */
  get sequence(): { iss: number; sndUna: number; sndNxt: number; sndWnd: number; rcvNxt: number; cwnd: number; rto: number } {
    return { iss: this.iss, sndUna: this.sndUna, sndNxt: this.sndNxt, sndWnd: this.sndWnd, rcvNxt: this.rcvNxt, cwnd: this.cc.cwnd, rto: this.rto.rto };
  }

  get closed(): boolean {
    return this.state === 'CLOSED';
  }

  /** Past the handshake (RFC 9293 3.5.2's synchronized states). */
  get established(): boolean {
    return this.machine.getSnapshot().hasTag('synchronized');
  }

  // ---- the network's side -------------------------------------------------------

  /** A segment for this connection (already checksummed and demultiplexed). RFC 9293 3.10.7. */
  input(seg: TcpHeader, payload: Uint8Array, now: number): void {
    this.stats.segmentsIn++;
    const state = this.state;
    if (state === 'CLOSED') return this.drop();
    if (state === 'LISTEN') return this.inputListen(seg, now);
    if (state === 'SYN_SENT') return this.inputSynSent(seg, now);
    const flags = seg.flags;
    const segLen = payload.length + (flags & TCP_SYN ? 1 : 0) + (flags & TCP_FIN ? 1 : 0);
    const rcvWnd = this.receiveWindow();
    // First: is it in the window?
    if (!segmentAcceptable(seg.seq, segLen, this.rcvNxt, rcvWnd)) {
      if (!(flags & TCP_RST)) {
        if (state === 'TIME_WAIT' && flags & TCP_FIN) this.timeWaitAt = now + this.config.timeWaitMs;
        this.ackNow = true;
      }
      return this.drop();
    }
    this.lastHeardAt = now;
    this.keepAliveSent = 0;
    // Second: RST, by RFC 5961's exact-match rule.
    if (flags & TCP_RST) {
      const action = rstAction(seg.seq, this.rcvNxt, rcvWnd);
      if (action === 'accept') return this.event('RCV_RST', now);
      if (action === 'challenge') this.challengeAck(now);
      return this.drop();
    }
    // Fourth: an in-window SYN sends a passive open back to LISTEN (RFC 9293 3.10.7.4); in a synchronized
    // state it gets a challenge ACK (RFC 5961 4), as it does in SYN-RECEIVED after an active open.
    if (flags & TCP_SYN) {
      if (state === 'SYN_RECEIVED') this.event('RCV_SYN', now);
      if (this.state !== 'LISTEN') this.challengeAck(now);
      return this.drop();
    }
    // Fifth: the ACK.
    if (!(flags & TCP_ACK)) return this.drop();
    if (this.tsOk && seg.options.timestamps && seqLeq(seg.seq, this.rcvNxt)) this.tsRecent = seg.options.timestamps.value;
    if (state === 'SYN_RECEIVED') {
      if (!(seqGt(seg.ack, this.sndUna) && seqLeq(seg.ack, this.sndNxt))) {
        this.rstNow = { seq: seg.ack };
        return this.drop();
      }
      this.event('RCV_ACK_OF_SYN', now);
    }
    if (!this.processAck(seg, payload.length, now)) return;
    // Sixth and seventh: the data; new data for a closed socket is lost (see orphan).
    if (payload.length > 0 && this.orphaned && seqGt(seqAdd(seg.seq, payload.length), this.rcvNxt)) {
      this.stats.abortsOnData++;
      return this.event('ABORT', now);
    }
    if (payload.length > 0) this.processData(seg.seq, payload, now);
    // Eighth: FIN, once everything before it has arrived.
    const ourFinAcked = this.ourFinAcked;
    this.ourFinAcked = false;
    const finAt = seqAdd(seg.seq, payload.length);
    if (flags & TCP_FIN && finAt === this.rcvNxt && !this.finReceived) {
      this.finReceived = true;
      this.rcvNxt = seqAdd(this.rcvNxt, 1);
      this.ackNow = true;
      this.event(this.state === 'FIN_WAIT_1' && ourFinAcked ? 'RCV_FIN_ACK_OF_FIN' : 'RCV_FIN', now);
    } else if (flags & TCP_FIN && this.state === 'TIME_WAIT') {
      this.timeWaitAt = now + this.config.timeWaitMs; // a retransmitted FIN: ACK it again (RFC 9293 3.10.7.4)
      this.ackNow = true;
    } else if (ourFinAcked && this.state === 'FIN_WAIT_1') {
      this.event('RCV_ACK_OF_FIN', now); // its FIN could not be taken yet
    }
  }

  /** LISTEN (RFC 9293 3.10.7.2): a SYN opens, an ACK is answered with a RST, anything else is dropped. */
  private inputListen(seg: TcpHeader, now: number): void {
    const flags = seg.flags;
    if (flags & TCP_RST) return this.drop();
    if (flags & TCP_ACK) {
      this.rstNow = { seq: seg.ack };
      return this.drop();
    }
    if (!(flags & TCP_SYN)) return this.drop();
    this.takeSyn(seg);
    this.lastHeardAt = now;
    this.event('RCV_SYN', now);
  }

  /** SYN-SENT (RFC 9293 3.10.7.3). */
  private inputSynSent(seg: TcpHeader, now: number): void {
    const flags = seg.flags;
    const ackOk = seqGt(seg.ack, this.iss) && seqLeq(seg.ack, this.sndNxt);
    if (flags & TCP_ACK && !ackOk) {
      if (!(flags & TCP_RST)) this.rstNow = { seq: seg.ack };
      return this.drop();
    }
    if (flags & TCP_RST) {
      if (flags & TCP_ACK) this.event('RCV_RST', now);
      return this.drop();
    }
    if (!(flags & TCP_SYN)) return this.drop();
    this.takeSyn(seg);
    this.lastHeardAt = now;
    if (flags & TCP_ACK) {
      this.ackAdvanced(seg.ack, now);
      this.updateWindow(seg);
      this.event('RCV_SYN_ACK', now);
    } else {
      this.event('RCV_SYN', now); // simultaneous open
    }
  }

  /** Records the peer's SYN: its sequence number and the options both sides offered. */
  private takeSyn(syn: TcpHeader): void {
    this.rcvNxt = seqAdd(syn.seq, 1);
    this.rcvAdvertised = this.rcvNxt;
    const o = syn.options;
    this.sndMss = Math.min(this.config.mss, o.mss ?? 536);
    if (this.config.windowScaling && o.windowScale !== undefined) this.sndShift = Math.min(o.windowScale, MAX_WINDOW_SHIFT);
    else this.rcvShift = 0;
    this.sackOk = this.config.sack && !!o.sackPermitted;
    this.cc = new NewReno({ smss: this.sndMss, sackRecovery: this.sackOk });
    this.tsOk = this.config.timestamps && !!o.timestamps;
    if (o.timestamps) this.tsRecent = o.timestamps.value;
    // A SYN's window is never scaled (RFC 7323 2.2).
    this.sndWnd = syn.window;
    this.maxSndWnd = Math.max(this.maxSndWnd, this.sndWnd);
    this.sndWl1 = syn.seq;
    this.sndWl2 = syn.ack;
  }

  /** The fifth check's ESTABLISHED-and-later part. Returns false when the segment is to be dropped. */
  private processAck(seg: TcpHeader, dataLen: number, now: number): boolean {
    const kind = classifyAck(seg.ack, this.sndUna, this.sndMax, this.maxSndWnd);
    if (kind === 'challenge') {
      // An ACK for data never sent, or too old to be true (RFC 5961 5.2).
      this.challengeAck(now);
      this.drop();
      return false;
    }
    // SACK blocks are read against the outstanding data before SND.UNA moves past some of them.
    if (this.sackOk) this.scoreboard.update(seg.options.sackBlocks, this.sndUna, this.sndMax);
    if (kind === 'new') {
      this.ackAdvanced(seg.ack, now, seg);
    } else if (kind === 'same' && dataLen === 0 && !(seg.flags & TCP_FIN) && seqGt(this.sndMax, this.sndUna) && (seg.window << this.sndShift === this.sndWnd || !!seg.options.sackBlocks?.length)) {
      // A duplicate ACK (RFC 5681 2): same ACK and window, no data. One that reports newly SACKed data counts
      // too, window or not (RFC 6675's DupAck), since the window moves as the reader reads.
      this.stats.dupAcksIn++;
      // The first two also let a new segment out each (limited transmit, see nextDataSegment).
      if (this.cc.onDupAck({ ack: seg.ack, sndMax: this.sndMax, flightSize: this.flightSize() })) this.recoveryStarted();
    }
    // A retransmission of SND.UNA's segment is lost when data sent after it is SACKed beyond DupThresh
    // segments (as IsLost reasons about first transmissions); without this only the RTO would find out.
    const probe = this.unaRetransmission;
    if (probe && this.cc.inRecovery && probe.seq === this.sndUna && this.scoreboard.sackedBytes(probe.sndMaxThen, this.sndMax) > (DUP_THRESH - 1) * this.sndMss) {
      this.unaRetransmission = undefined;
      this.stats.lostRetransmits++;
      this.retransmitNow = true;
    }
    // RFC 6675 5: the scoreboard alone may say the first unacknowledged segment is lost, before a third duplicate.
    if (this.sackOk && !this.cc.inRecovery && seqLt(this.sndUna, this.sndMax) && this.scoreboard.sackedEnd(this.sndUna) === undefined) {
      const boundary = this.scoreboard.lossBoundary(this.sndMss);
      if (boundary !== undefined && seqLt(this.sndUna, boundary) && this.cc.onLossDetected({ ack: this.sndUna, sndMax: this.sndMax, flightSize: this.flightSize() })) {
        this.recoveryStarted();
      }
    }
    this.updateWindow(seg);
    if (this.finSeq !== undefined && seqGt(this.sndUna, this.finSeq)) {
      const state = this.state;
      // In FIN-WAIT-1 a FIN on the same segment makes it one transition (figure 5, note 2): decided after the data.
      if (state === 'FIN_WAIT_1') this.ourFinAcked = true;
      if ((state === 'FIN_WAIT_1' && !(seg.flags & TCP_FIN)) || state === 'CLOSING' || state === 'LAST_ACK') this.event('RCV_ACK_OF_FIN', now);
    }
    return !this.closed;
  }

  /** SND.UNA moves to `ack`: free what was acknowledged, sample the RTT, open cwnd, restart the timer. */
  private ackAdvanced(ack: number, now: number, seg?: TcpHeader): void {
    const before = this.sndUna;
    // Bytes of data acknowledged: the SYN and FIN occupy a sequence number but no buffer.
    let dataAcked = seqSub(ack, before);
    if (before === this.iss) dataAcked--; // our SYN
    if (this.finSeq !== undefined && seqGt(ack, this.finSeq)) dataAcked--;
    dataAcked = Math.max(0, Math.min(dataAcked, this.sendBuf.length));
    this.sendBuf.consume(dataAcked);
    this.sndUna = ack;
    this.scoreboard.advance(ack);
    if (seqLt(this.sndNxt, ack)) this.sndNxt = ack;
    this.stats.bytesOut += dataAcked;
    // RTT: from the echoed timestamp when both use them (RFC 7323 4), else Karn's single timed segment.
    if (this.tsOk && seg?.options.timestamps?.echo) this.rto.sample(Math.max(0, (now >>> 0) - seg.options.timestamps.echo));
    else if (this.timedSeq !== undefined && seqGeq(ack, this.timedSeq)) this.rto.sample(now - this.timedAt);
    if (this.timedSeq !== undefined && seqGeq(ack, this.timedSeq)) this.timedSeq = undefined;
    this.retries = 0;
    if (dataAcked > 0 && this.cc.onAck({ ack, bytesAcked: dataAcked, flightSize: this.flightSize() })) this.retransmitNow = true;
    this.retransmitAt = seqLt(this.sndUna, this.sndMax) ? now + this.rto.rto : undefined;
  }

  private updateWindow(seg: TcpHeader): void {
    if (seqLt(this.sndWl1, seg.seq) || (this.sndWl1 === seg.seq && seqLeq(this.sndWl2, seg.ack))) {
      this.sndWnd = seg.flags & TCP_SYN ? seg.window : seg.window << this.sndShift;
      this.maxSndWnd = Math.max(this.maxSndWnd, this.sndWnd);
      this.sndWl1 = seg.seq;
      this.sndWl2 = seg.ack;
      if (this.sndWnd > 0) {
        this.persistAt = undefined;
        this.persistBackoff = 0;
      }
    }
  }

  private processData(seq: number, payload: Uint8Array, now: number): void {
    if (!this.machine.getSnapshot().hasTag('canReceive')) return this.drop();
    const { skip, length } = trimToWindow(seq, payload.length, this.rcvNxt, this.receiveWindow());
    if (length === 0) {
      this.ackNow = true;
      return;
    }
    const start = seqAdd(seq, skip);
    const data = payload.subarray(skip, skip + length);
    if (start !== this.rcvNxt) {
      // Out of order: keep it, and say at once what we are missing (a duplicate ACK, with SACK blocks).
      this.stats.outOfOrder++;
      this.ooo.insert(start, data);
      this.ackNow = this.urgentAck = true;
      return;
    }
    const taken = this.recvBuf.write(data);
    this.rcvNxt = seqAdd(this.rcvNxt, taken);
    this.stats.bytesIn += taken;
    const filled = this.ooo.isEmpty ? NO_BYTES : this.ooo.take(this.rcvNxt, this.recvBuf.free);
    if (filled.length > 0) {
      this.recvBuf.write(filled);
      this.rcvNxt = seqAdd(this.rcvNxt, filled.length);
      this.stats.bytesIn += filled.length;
      this.ackNow = this.urgentAck = true; // a hole was filled: tell the sender now (RFC 5681 4.2)
    }
    // Delayed ACK (RFC 9293 3.8.6.3, RFC 5681 4.2): at least every second full-sized segment, else within delayedAckMs.
    // The every-second-segment ACK leaves at once, not at the next poll: it clocks the sender's next window out.
    // The first segments of the stream are ACKed at once (quick ACKs): see quickAckBudget.
    this.quickAcks ??= quickAckBudget(this.config.rcvBuf, this.config.mss);
    if (this.quickAcks > 0) {
      this.quickAcks--;
      this.ackNow = this.urgentAck = true;
    } else if (++this.unackedSegments >= 2) this.ackNow = this.urgentAck = true;
    else this.ackAt ??= now + this.config.delayedAckMs;
  }

  // ---- timers and output --------------------------------------------------------

  /** When output() next has something to do on its own (a timer), if ever. */
  deadline(): number | undefined {
    return earlier(earlier(earlier(earlier(this.retransmitAt, this.ackAt), this.persistAt), this.keepAliveAt), this.timeWaitAt);
  }

  /** Runs due timers and returns the segments to send now. */
  output(now: number): OutSegment[] {
    this.runTimers(now);
    const out: OutSegment[] = [];
    if (this.rstNow) {
      out.push(this.segment(this.rstNow.seq, TCP_RST | (this.rstNow.ack !== undefined ? TCP_ACK : 0), NO_BYTES, now, this.rstNow.ack));
      this.rstNow = undefined;
    }
    const state = this.state;
    if (state === 'CLOSED' || state === 'LISTEN') return this.sent(out, now);
    if (this.sendSyn) {
      this.sendSyn = false;
      const synAck = state === 'SYN_RECEIVED';
      out.push(this.segment(this.iss, TCP_SYN | (synAck ? TCP_ACK : 0), NO_BYTES, now));
      if (seqLt(this.sndNxt, seqAdd(this.iss, 1))) this.sndNxt = this.sndMax = seqAdd(this.iss, 1);
      this.retransmitAt ??= now + this.rto.rto;
      return this.sent(out, now);
    }
    if (!this.established) {
      // Before ESTABLISHED only an ACK may go besides the SYN: e.g. in a simultaneous open, the answer to the peer's SYN-ACK.
      if (this.ackNow && state === 'SYN_RECEIVED') out.push(this.segment(this.sndNxt, TCP_ACK, NO_BYTES, now));
      return this.sent(out, now);
    }
    if (this.sackOk && this.cc.inRecovery) {
      this.sackRecoveryOutput(now, out);
    } else {
      if (this.retransmitNow) {
        this.retransmitNow = false;
        const seg = this.dataSegment(this.sndUna, this.segmentRoom(now), now, true);
        if (seg) out.push(seg);
      }
      // New data (and our FIN), as far as the peer's window and cwnd allow.
      for (;;) {
        const seg = this.nextDataSegment(now);
        if (!seg) break;
        out.push(seg);
      }
    }
    if (this.probeNow) {
      this.probeNow = false;
      const probe = this.dataSegment(this.sndNxt, 1, now, false, true);
      if (probe) out.push(probe);
    }
    if (this.keepAliveNow) {
      this.keepAliveNow = false;
      out.push(this.segment(seqAdd(this.sndUna, -1), TCP_ACK, NO_BYTES, now));
    }
    if (this.ackNow && out.length === 0) out.push(this.segment(this.sndNxt, TCP_ACK, NO_BYTES, now));
    return this.sent(out, now);
  }

  private sent(out: OutSegment[], now: number): OutSegment[] {
    if (out.length > 0) {
      this.stats.segmentsOut += out.length;
      this.lastSentAt = now;
      if (out.some((s) => s.header.flags & TCP_ACK)) {
        this.ackNow = this.urgentAck = false;
        this.ackAt = undefined;
        this.unackedSegments = 0;
      }
    }
    this.armKeepAlive();
    return out;
  }

  private runTimers(now: number): void {
    if (this.timeWaitAt !== undefined && now >= this.timeWaitAt) {
      this.timeWaitAt = undefined;
      this.event('TIMEOUT_2MSL', now);
    }
    if (this.ackAt !== undefined && now >= this.ackAt) this.ackNow = true;
    if (this.retransmitAt !== undefined && now >= this.retransmitAt) this.retransmitTimeout(now);
    if (this.persistAt !== undefined && now >= this.persistAt) {
      this.stats.zeroWindowProbes++;
      this.probeNow = true;
      this.persistBackoff = Math.min(this.persistBackoff + 1, 6);
      this.persistAt = now + Math.min(this.rto.rto * 2 ** this.persistBackoff, 60_000);
    }
    if (this.keepAliveAt !== undefined && now >= this.keepAliveAt) {
      if (this.keepAliveSent >= this.config.keepAliveProbes) {
        this.keepAliveAt = undefined;
        this.event('GIVE_UP', now);
        return;
      }
      this.keepAliveSent++;
      this.stats.keepAliveProbes++;
      this.keepAliveNow = true;
      this.keepAliveAt = now + this.config.keepAliveIntervalMs;
    }
  }

  private retransmitTimeout(now: number): void {
    const state = this.state;
    const limit = state === 'SYN_SENT' || state === 'SYN_RECEIVED' ? this.config.synRetries : this.config.dataRetries;
    if (this.retries >= limit) {
      this.retransmitAt = undefined;
      this.event('GIVE_UP', now);
      return;
    }
    this.retries++;
    this.stats.timeouts++;
    this.rto.backoff();
    this.timedSeq = undefined; // Karn: never time a retransmitted segment
    if (state === 'SYN_SENT' || state === 'SYN_RECEIVED') {
      this.sendSyn = true;
      this.stats.retransmits++;
    } else {
      this.cc.onRetransmitTimeout({ sndMax: this.sndMax, flightSize: this.flightSize() });
      // Go back to the first unacknowledged byte; slow start resends from there, stepping over SACKed ranges.
      this.sndNxt = this.highRxt = this.sndUna;
      // A second timeout of the same data may mean the receiver reneged on what it SACKed (RFC 2018 8): forget it.
      if (this.retries >= 2) this.scoreboard.clear();
    }
    this.retransmitAt = now + this.rto.rto;
  }

  /**
   * The next segment of new data (or the FIN) that the windows allow, if any.
   * `budget` replaces cwnd's room in SACK recovery, where pipe decides.
   */
  private nextDataSegment(now: number, budget?: number): OutSegment | undefined {
    // After a timeout SND.NXT walks back over data the peer may already hold: skip what it SACKed.
    const sackedEnd = seqLt(this.sndNxt, this.sndMax) ? this.scoreboard.sackedEnd(this.sndNxt) : undefined;
    if (sackedEnd !== undefined) this.sndNxt = sackedEnd;
    const unsent = this.sendBuf.length - this.bufferOffset(this.sndNxt);
    const inFlight = seqSub(this.sndNxt, this.sndUna);
    // Limited transmit (RFC 3042): each of the first two duplicate ACKs lets one new segment past cwnd, so a
    // small window still produces the third duplicate that fast retransmit needs.
    const allowance = this.cc.inRecovery ? 0 : Math.min(this.cc.dupAcks, 2) * this.segmentRoom(now);
    const room = Math.min(this.sndWnd - inFlight, budget ?? this.cc.cwnd + allowance - inFlight);
    if (unsent <= 0) {
      // Everything written is out: the FIN, on its own, if it is due (it needs no window).
      return this.finSeq !== undefined && this.sndNxt === this.finSeq ? this.finSegment(now, false) : undefined;
    }
    if (room <= 0) {
      // A zero window with nothing in flight: probe it, or the window update we wait for may never come.
      if (this.sndWnd === 0 && inFlight === 0) this.persistAt ??= now + this.rto.rto;
      return undefined;
    }
    const full = this.segmentRoom(now);
    const nextSacked = seqLt(this.sndNxt, this.sndMax) ? this.scoreboard.nextSacked(this.sndNxt) : undefined;
    const size = Math.min(full, unsent, room, nextSacked === undefined ? Infinity : seqSub(nextSacked, this.sndNxt));
    // Nagle (RFC 9293 3.7.4): hold a small segment while data is unacknowledged, unless told not to or closing.
    if (size < full && inFlight > 0 && !this.config.noDelay && !(this.finSeq !== undefined && size === unsent)) return undefined;
    return this.dataSegment(this.sndNxt, size, now, false);
  }

  /** Loss recovery began (a third duplicate ACK, or the scoreboard): retransmission starts at SND.UNA. */
  private recoveryStarted(): void {
    this.stats.fastRetransmits++;
    this.highRxt = this.sndUna;
    this.retransmitNow = true;
  }

  /** RFC 6675 5's sending loop: while cwnd - pipe is at least a segment, send what NextSeg() picks. */
  private sackRecoveryOutput(now: number, out: OutSegment[]): void {
    const room = this.segmentRoom(now);
    const boundary = this.scoreboard.lossBoundary(this.sndMss);
    let pipe = this.scoreboard.pipe(this.sndUna, this.sndMax, this.highRxt, boundary);
    if (this.retransmitNow && seqGt(this.highRxt, this.sndUna)) {
      // SND.UNA's retransmission was lost: once more, whatever pipe says, as the first one went.
      const hole = this.hole(this.sndUna, seqAdd(this.sndUna, room));
      const seg = hole && this.retransmitHole(hole, room, now);
      if (seg) out.push(seg);
    }
    this.retransmitNow = false;
    // The first retransmission goes whatever pipe says (RFC 6675 5 step 4.3).
    let first = this.unaNotRetransmitted();
    while (first || this.cc.cwnd - pipe >= room) {
      first = false;
      const seg = this.nextRecoverySegment(now, room, boundary, this.cc.cwnd - pipe);
      if (!seg) break;
      out.push(seg);
      pipe += seg.payload.length + (seg.header.flags & TCP_FIN ? 1 : 0);
    }
  }

  /** Whether recovery has yet to retransmit SND.UNA's segment. */
  private unaNotRetransmitted(): boolean {
    return !seqGt(this.highRxt, this.sndUna);
  }

  /** RFC 6675's NextSeg(): a lost hole, else new data, else a hole below the highest SACKed byte. */
  private nextRecoverySegment(now: number, room: number, boundary: number | undefined, budget: number): OutSegment | undefined {
    const from = seqMax(this.highRxt, this.sndUna);
    // Rule 1: the first unSACKed bytes above HighRxt that IsLost says are lost (SND.UNA's own, at the start).
    const lostEnd = this.unaNotRetransmitted() ? seqMax(boundary ?? this.sndUna, seqAdd(this.sndUna, room)) : boundary;
    const lost = lostEnd === undefined ? undefined : this.hole(from, lostEnd);
    if (lost) return this.retransmitHole(lost, room, now);
    // Rule 2: new data the peer's window allows.
    if (this.sndNxt === this.sndMax) {
      const seg = this.nextDataSegment(now, budget);
      if (seg) return seg;
    }
    // Rule 3: a hole not yet deemed lost, when nothing new can go.
    const high = this.scoreboard.highestSacked;
    const hole = high === undefined ? undefined : this.hole(from, high);
    return hole ? this.retransmitHole(hole, room, now) : undefined;
  }

  /** The first run of unSACKed sequence space in [from, to), if any. */
  private hole(from: number, to: number): { start: number; end: number } | undefined {
    let start = from;
    for (let end = this.scoreboard.sackedEnd(start); end !== undefined; end = this.scoreboard.sackedEnd(start)) start = end;
    if (!seqLt(start, to)) return undefined;
    return { start, end: seqMin(this.scoreboard.nextSacked(start) ?? to, to) };
  }

  private retransmitHole(hole: { start: number; end: number }, room: number, now: number): OutSegment | undefined {
    const seg = this.dataSegment(hole.start, Math.min(room, seqSub(hole.end, hole.start)), now, true);
    if (!seg) return undefined;
    this.highRxt = seqMax(this.highRxt, seqAdd(hole.start, seg.payload.length + (seg.header.flags & TCP_FIN ? 1 : 0)));
    if (hole.start === this.sndUna) this.unaRetransmission = { seq: hole.start, sndMaxThen: this.sndMax };
    return seg;
  }

  /**
   * A segment of buffered data starting at `seq`. New data advances SND.NXT;
   * `retransmit` resends without moving it; a `probe` may exceed the window.
   */
  private dataSegment(seq: number, max: number, now: number, retransmit: boolean, probe = false): OutSegment | undefined {
    const offset = this.bufferOffset(seq);
    const length = Math.min(max, this.sendBuf.length - offset);
    if (length <= 0) return this.finSeq !== undefined && seq === this.finSeq ? this.finSegment(now, retransmit) : undefined;
    const payload = this.sendBuf.view(offset, length);
    const end = seqAdd(seq, length);
    // The FIN rides on the last data segment.
    const withFin = !probe && this.finSeq === end;
    const flags = TCP_ACK | (offset + length === this.sendBuf.length ? TCP_PSH : 0) | (withFin ? TCP_FIN : 0);
    if (retransmit || seqLt(seq, this.sndMax)) this.stats.retransmits++;
    else if (this.timedSeq === undefined) {
      this.timedSeq = end;
      this.timedAt = now;
    }
    if (!retransmit) this.advance(withFin ? seqAdd(end, 1) : end);
    this.retransmitAt ??= now + this.rto.rto;
    return this.segment(seq, flags, payload, now, undefined, !this.sendBuf.inScratch(payload));
  }

  private finSegment(now: number, retransmit: boolean): OutSegment {
    const seq = this.finSeq!;
    if (retransmit || seqLt(seq, this.sndMax)) this.stats.retransmits++;
    if (!retransmit) this.advance(seqAdd(seq, 1));
    this.retransmitAt ??= now + this.rto.rto;
    return this.segment(seq, TCP_FIN | TCP_ACK, NO_BYTES, now);
  }

  private advance(next: number): void {
    this.sndNxt = seqMax(this.sndNxt, next);
    this.sndMax = seqMax(this.sndMax, this.sndNxt);
  }

  /**
   * The most data one segment may carry: the peer's MSS less the options it
   * will carry (RFC 6691: the MSS counts data only, so options come out of it).
   */
  private segmentRoom(now: number): number {
    return this.sndMss - (tcpHeaderLength(this.options(false, now)) - TCP_HEADER_LEN);
  }

  private options(syn: boolean, now: number): TcpOptions {
    const options = noOptions();
    if (syn) {
      options.mss = this.config.mss;
      if (this.config.windowScaling && (this.state === 'SYN_SENT' || this.sndShift > 0 || this.rcvShift > 0)) options.windowScale = this.rcvShift;
      if (this.config.sack && (this.state === 'SYN_SENT' || this.sackOk)) options.sackPermitted = true;
    }
    if (this.config.timestamps && (syn ? this.state === 'SYN_SENT' || this.tsOk : this.tsOk)) {
      options.timestamps = { value: now >>> 0, echo: this.tsRecent >>> 0 };
    }
    if (this.sackOk && !syn && !this.ooo.isEmpty) options.sackBlocks = this.ooo.sackBlocks(this.tsOk ? 3 : 4);
    return options;
  }

  private segment(seq: number, flags: number, payload: Uint8Array, now: number, ack?: number, payloadStable = true): OutSegment {
    const syn = (flags & TCP_SYN) !== 0;
    const options = this.options(syn, now);
    const withAck = (flags & TCP_ACK) !== 0;
    const window = flags & TCP_RST ? 0 : this.advertiseWindow(syn);
    return {
      header: {
        srcPort: this.endpoints.localPort,
        dstPort: this.endpoints.remotePort,
        seq: seq >>> 0,
        ack: withAck ? (ack ?? this.rcvNxt) >>> 0 : 0,
        flags,
        window,
        urgentPointer: 0,
        options,
      },
      payload,
      payloadStable,
    };
  }

  /** The window field to send: free receive space, never moving the right edge left, scaled except in a SYN. */
  private advertiseWindow(syn: boolean): number {
    const wnd = this.receiveWindow();
    const edge = seqAdd(this.rcvNxt, wnd);
    if (seqGt(edge, this.rcvAdvertised)) this.rcvAdvertised = edge;
    return syn ? Math.min(wnd, 65535) : Math.min(wnd >> this.rcvShift, 65535);
  }

  private receiveWindow(): number {
    const free = this.recvBuf.free;
    // Keep what was promised: the advertised right edge does not move back.
    const promised = seqSub(this.rcvAdvertised, this.rcvNxt);
    // Receiver silly-window avoidance (RFC 9293 3.8.6.2.2): advertise nothing rather than a sliver.
    const sws = free < Math.min(this.config.rcvBuf / 2, this.sndMss) ? 0 : free;
    return Math.max(sws, promised, 0) & ~((1 << this.rcvShift) - 1);
  }

  private flightSize(): number {
    return seqSub(this.sndMax, this.sndUna);
  }

  /** The sequence number of the send buffer's first byte: SND.UNA, or just after our SYN while it is unacknowledged. */
  private bufferStart(): number {
    return this.sndUna === this.iss ? seqAdd(this.iss, 1) : this.sndUna;
  }

  /** Offset in the send buffer of sequence number `seq`. */
  private bufferOffset(seq: number): number {
    return Math.max(0, seqSub(seq, this.bufferStart()));
  }

  private challengeAck(now: number): void {
    if (!this.challengeLimiter.allow(now)) return;
    this.stats.challengeAcks++;
    this.ackNow = true;
  }

  private drop(): void {
    this.stats.dropped++;
  }

  private armKeepAlive(): void {
    if (!this.config.keepAlive || !this.established || this.keepAliveSent > 0) return;
    this.keepAliveAt = Math.max(this.lastHeardAt, this.lastSentAt) + this.config.keepAliveIdleMs;
  }

  /** Sends a control event to the machine and does what its transition says. */
  private event(type: TcpEventType, now: number): void {
    this.onActivity?.();
    const from = this.state;
    this.machine.send({ type } as never);
    const to = this.state;
    const meta = MEta.get(`${from}|${type}|${to}`);
    if (!meta) return; // the state has no rule for it: ignored, as the RFC says
    const taken = { from, event: type, to };
    this.transitions.push(taken);
    this.onTransition?.(this, taken);
    if (meta.error) this.error = meta.error;
    for (const emit of meta.emit) {
      switch (emit) {
        case 'SYN':
        case 'SYN_ACK':
          this.sendSyn = true;
          break;
        case 'ACK':
          this.ackNow = true;
          break;
        case 'FIN':
          this.finSeq = seqAdd(this.bufferStart(), this.sendBuf.length);
          break;
        case 'RST':
          this.rstNow = { seq: this.sndNxt, ack: this.rcvNxt };
          break;
        case 'START_2MSL_TIMER':
          this.timeWaitAt = now + this.config.timeWaitMs;
          break;
      }
    }
    if (to === 'CLOSED') this.release();
  }

  /** The connection is over: its buffers and timers go. */
  private release(): void {
    this.retransmitAt = this.ackAt = this.persistAt = this.keepAliveAt = this.timeWaitAt = undefined;
    this.ooo.clear();
    this.sendBuf.clear();
    this.scoreboard.clear();
  }
}
