/**
 * The domain's end of its syscall channel. Requests go out as msgpack
 * frames; replies come back as msgpack frames. A synchronous call blocks the
 * thread until its reply arrives (as a thread blocks in a real recv); an
 * asynchronous call resolves a promise when its reply arrives. Both send the
 * same frames and get the same validation.
 *
 * How frames travel is the transport's business: a MessagePort and a shared
 * wake-up word for a domain worker (`PortTransport`), two pipes for a domain
 * child process (`PipeTransport`). The call ids, matching and errors are here,
 * once, for both.
 */
import { receiveMessageOnPort, MessagePort } from 'node:worker_threads';
import {
  decodeFrame,
  encodeRequest,
  FAULT_ERRNO,
  ownCopy,
  postFrame,
  postRequest,
  REPLY_SLOT_BYTES,
  REPLY_SLOT_OFFSET,
  SIGNAL_BLOCKING,
  SIGNAL_REPLY_LENGTH,
  SIGNAL_REPLY_START,
  SIGNAL_SLEEPING,
  SIGNAL_WAITING,
  SIGNAL_WAKE,
  RING_RECORD_MAX,
  SendRingWriter,
  SyscallError,
  UNKNOWN_CALL_ID,
  SYSCALL_BY_NUMBER,
  type FaultDelivery,
  type LogNotice,
  type Reply,
  type RestNotice,
  type RingDoorbell,
} from '@moat/abi/core';
import { deliverFault } from './fault.js';
import { PendingCalls } from './pending-calls.js';

/** Iterations to spin on the wake-up word before sleeping: a free core often answers within them. */
const SPIN = 2000;

/** Carries a domain's frames to its kernel and the kernel's replies back. */
export interface FrameTransport {
  /**
   * Sends a request frame the channel encoded (it owns its buffer, which may
   * be transferred); `promised` says whether a promise awaits the reply, and
   * `callId` is its call (a blocking call's reply may come by another way).
   */
  send(frame: Uint8Array<ArrayBuffer>, promised: boolean, callId?: number): void;
  /**
   * Encodes and sends a request itself, as `send` sends encodeRequest's
   * frame (optional: for a transport that can send one without making that
   * frame first; see postRequest in @moat/abi).
   */
  sendRequest?(callId: number, sysno: number, args: readonly unknown[], promised: boolean): void;
  /** Sends whatever it is given, as it is (raw frames of fuzzers and attackers); `blocking`: the thread waits for its reply next. */
  sendRaw(message: unknown, blocking?: boolean): void;
  /**
   * Blocks the thread until the next reply on the blocking path arrives, and
   * returns its bytes. `inPlace`: the caller decodes them at once and copies
   * what it keeps before its next call, so a reply in shared memory may come
   * as a view of it (the others come in memory of their own).
   */
  receiveSync(inPlace?: boolean): Uint8Array;
  /** The blocking call's reply has been taken (optional: for transports with a reply slot). */
  settled?(): void;
  /** From now on, hands every reply that arrives while the thread is free to `onReply` (called once). */
  listen(onReply: (frame: Uint8Array) => void): void;
  /** Lockstep: tells the kernel of a line the program logged (a transport that does not report rest ignores it). */
  logged?(line: string): void;
  /**
   * Queues a blocking stream send of `data` on `handle` in the send ring
   * (see @moat/abi's send-ring), waiting for room as a blocking send waits
   * for its buffer; returns how many bytes it queued: all of them, or fewer
   * (none, without a ring) when the kernel stopped the ring, and the rest must
   * go by a call.
   */
  queueSend?(handle: number, data: Uint8Array): number;
  /** Waits until the kernel has taken every record queued on these handles (a call naming one must come after them). */
  awaitQueued?(handles: readonly number[]): void;
  /** Some handle may have records the kernel has not taken (none for certain when false). */
  queuedAny?(): boolean;
  /** The kernel stopped the ring since the last look (a record failed): 1; it broke for good: 2; else 0. */
  ringStopped?(): number;
  /** Lets the thread or process end while promise calls are idle. */
  unref(): void;
  close(): void;
}

/**
 * A domain worker's transport: frames on a MessagePort, and a wake-up word
 * the kernel bumps after each reply. With a signal of CHANNEL_SIGNAL_BYTES, a
 * blocking call's reply may come in the signal's reply slot instead of the
 * port (see CHANNEL_SIGNAL_BYTES in @moat/abi).
 */
export class PortTransport implements FrameTransport {
  private readonly wake: Int32Array;
  private readonly slot: Uint8Array | undefined;
  /** The send ring (not in lockstep, where the kernel takes requests only as their events come). */
  private readonly ring: SendRingWriter | undefined;
  /** Where each handle's last queued record ends in the ring. */
  private readonly queuedUntil = new Map<number, number>();
  /** What the kernel said of the ring (RING_STOPPED) and ringStopped has not reported yet; a broken ring stays so. */
  private stopped = 0;
  /** Lockstep: messages posted and replies taken, as the kernel counts them too (RestNotice). */
  private posted = 0;
  private taken = 0;
  private restQueued = false;

  /**
   * `lockstep`: tell the kernel when this thread waits (SIGNAL_BLOCKING before
   * a frame it blocks on, a RestNotice once its event loop only waits for
   * promised replies), so that the kernel's conductor moves on only then.
   */
  constructor(
    private readonly port: MessagePort,
    signal: SharedArrayBuffer,
    private readonly lockstep = false,
  ) {
    this.wake = new Int32Array(signal);
    this.slot = signal.byteLength >= REPLY_SLOT_OFFSET + REPLY_SLOT_BYTES ? new Uint8Array(signal, REPLY_SLOT_OFFSET, REPLY_SLOT_BYTES) : undefined;
    this.ring = lockstep ? undefined : SendRingWriter.of(signal);
  }

  queueSend(handle: number, data: Uint8Array): number {
    const ring = this.ring;
    let queued = 0;
    while (ring && queued < data.length && !this.stopSeen()) {
      const record = data.subarray(queued, queued + RING_RECORD_MAX);
      if (!ring.tryWrite(handle, record)) {
        // Full: sleep until the kernel has taken half the ring, not just room for this record (fewer wake-ups).
        const at = ring.halfFreeAt();
        this.sleepUntil(() => !ring.wakeAt(at) || this.stopSeen());
        continue;
      }
      queued += record.length;
      this.queuedUntil.set(handle, ring.position);
      // The kernel found the ring empty and waits for word of the next record.
      if (ring.takeDoorbell()) this.sendRaw({ ring: true } satisfies RingDoorbell);
    }
    return queued;
  }

  queuedAny(): boolean {
    if (this.queuedUntil.size === 0) return false;
    if (!this.ring!.consumed(this.ring!.position)) return true;
    this.queuedUntil.clear(); // the kernel has taken everything queued
    return false;
  }

  awaitQueued(handles: readonly number[]): void {
    const ring = this.ring;
    if (!ring || this.queuedUntil.size === 0) return;
    for (const h of handles) {
      const until = this.queuedUntil.get(h);
      if (until === undefined) continue;
      // A ring the kernel gave up on (junk in it) will not be consumed further: nothing to wait for then.
      if (!ring.consumed(until)) this.sleepUntil(() => !ring.wakeAt(until) || (this.stopSeen() && this.stopped === 2));
      this.queuedUntil.delete(h);
    }
  }

  private stopSeen(): boolean {
    if (this.ring && this.stopped !== 2) this.stopped = Math.max(this.stopped, this.ring.takeStopped());
    return this.stopped !== 0;
  }

  ringStopped(): number {
    this.stopSeen();
    const now = this.stopped;
    if (now === 1) this.stopped = 0;
    return now;
  }

  /** Blocks the thread until `done()` (checked after each bump of WAKE, which the kernel makes when asked). */
  private sleepUntil(done: () => boolean): void {
    let seen = Atomics.load(this.wake, SIGNAL_WAKE);
    while (!done()) {
      this.waitForWake(seen);
      seen = Atomics.load(this.wake, SIGNAL_WAKE);
    }
  }

  /** Spins briefly, then sleeps, until WAKE is no longer `seen`. */
  private waitForWake(seen: number): void {
    let spins = SPIN;
    while (spins-- > 0 && Atomics.load(this.wake, SIGNAL_WAKE) === seen);
    if (spins >= 0) return;
    // Said before sleeping: the kernel notifies only a sleeper (SIGNAL_SLEEPING); a bump it made meanwhile ends the wait at once.
    if (this.slot) Atomics.store(this.wake, SIGNAL_SLEEPING, 1);
    Atomics.wait(this.wake, SIGNAL_WAKE, seen);
    if (this.slot) Atomics.store(this.wake, SIGNAL_SLEEPING, 0);
  }

  send(frame: Uint8Array<ArrayBuffer>, promised: boolean, callId?: number): void {
    this.beforeRequest(promised, callId);
    postFrame(this.port, frame); // the frame is the channel's own: a large one is transferred
  }

  sendRequest(callId: number, sysno: number, args: readonly unknown[], promised: boolean): void {
    this.beforeRequest(promised, callId);
    postRequest(this.port, callId, sysno, args);
  }

  private beforeRequest(promised: boolean, callId: number | undefined): void {
    this.willPost(!promised);
    // Said before the request leaves, so the kernel's answer cannot come before it.
    if (this.slot && !promised && callId !== undefined) Atomics.store(this.wake, SIGNAL_WAITING, callId | 0);
  }

  sendRaw(message: unknown, blocking = false): void {
    this.willPost(blocking);
    this.port.postMessage(message);
  }

  /** Lockstep's count of what is posted, and what the kernel is told of it (see SIGNAL_BLOCKING). */
  private willPost(blocking: boolean): void {
    if (!this.lockstep) return;
    this.posted = (this.posted + 1) | 0;
    if (blocking) Atomics.store(this.wake, SIGNAL_BLOCKING, this.posted);
    else this.restSoon();
  }

  logged(line: string): void {
    if (!this.lockstep) return;
    try {
      this.port.postMessage({ log: String(line) } satisfies LogNotice);
    } catch {
      // closed: nothing to tell
    }
  }

  /**
   * Lockstep: once the program has gone back to the event loop (its code has
   * run to an await), tells the kernel what it has posted and taken. A
   * program waiting on a timer of its own is not at rest, but looks it: real
   * timers are outside lockstep.
   */
  private restSoon(): void {
    if (this.restQueued) return;
    this.restQueued = true;
    setImmediate(() => {
      this.restQueued = false;
      try {
        this.port.postMessage({ rest: { posted: this.posted, taken: this.taken } } satisfies RestNotice);
      } catch {
        // closed: nothing to tell
      }
    }).unref();
  }

  receiveSync(inPlace = false): Uint8Array {
    // Read the word before looking at the port: a reply posted after the look bumps it, so the wait cannot miss it.
    let seen = Atomics.load(this.wake, SIGNAL_WAKE);
    for (;;) {
      // The slot's length first, then the port: what the kernel posted before filling the slot is on the port by then, and goes first.
      const inSlot = this.slot ? Atomics.load(this.wake, SIGNAL_REPLY_LENGTH) : 0;
      const message = receiveMessageOnPort(this.port);
      if (message) {
        this.taken = (this.taken + 1) | 0;
        return message.message as Uint8Array;
      }
      if (inSlot > 0) {
        // Copied out before decoding, unless the caller copies what it keeps: the frame (and the views of it that decoding
        // hands out) must outlive the slot's next use.
        const start = Atomics.load(this.wake, SIGNAL_REPLY_START);
        const frame = inPlace ? this.slot!.subarray(start, inSlot) : ownCopy(this.slot!.subarray(start, inSlot));
        Atomics.store(this.wake, SIGNAL_REPLY_LENGTH, 0);
        this.taken = (this.taken + 1) | 0;
        return frame;
      }
      this.waitForWake(seen);
      seen = Atomics.load(this.wake, SIGNAL_WAKE);
    }
  }

  /** The blocking call is answered: no reply of the kernel's may go to the slot unasked. */
  settled(): void {
    if (this.slot) Atomics.store(this.wake, SIGNAL_WAITING, 0);
  }

  listen(onReply: (frame: Uint8Array) => void): void {
    this.port.on('message', (frame: Uint8Array) => {
      this.taken = (this.taken + 1) | 0;
      onReply(frame);
      if (this.lockstep) this.restSoon();
    });
  }

  unref(): void {
    this.port.unref();
  }

  close(): void {
    this.port.close();
  }
}

interface Pending {
  resolve(value: unknown): void;
  reject(err: Error): void;
  sysno: number;
  /** What the call resolves with, made from the syscall's result (see callAsync). */
  map: ((result: unknown) => unknown) | undefined;
}

export class Channel {
  private nextId = 1;
  private readonly pending = new PendingCalls<Pending>();
  private listening = false;
  private readonly transport: FrameTransport;

  /** A domain worker's channel: its MessagePort and the wake-up word it shares with the kernel. */
  constructor(port: MessagePort, signal: SharedArrayBuffer);
  /** A channel over any transport (a child process's pipes, a test's fake). */
  constructor(transport: FrameTransport);
  constructor(portOrTransport: MessagePort | FrameTransport, signal?: SharedArrayBuffer) {
    if (portOrTransport instanceof MessagePort) {
      if (!(signal instanceof SharedArrayBuffer)) throw new TypeError('a MessagePort channel needs its wake-up word (a SharedArrayBuffer)');
      this.transport = new PortTransport(portOrTransport, signal);
    } else this.transport = portOrTransport;
  }

  /**
   * Performs a syscall, blocking this thread until the kernel answers. Throws
   * SyscallError on failure. `adopt`, if given, is handed the result decoded
   * where the reply arrived (its byte arrays may be views of the reply slot,
   * good until the next call) and returns what the call returns, in memory
   * of its own: a large recv's data is then copied once, as its caller wants
   * it, not first as a whole.
   */
  callSync(sysno: number, args: readonly unknown[], adopt?: (result: unknown) => unknown): unknown {
    const id = this.allocateId();
    this.sendRequest(id, sysno, args, false);
    const result = this.unwrap(sysno, this.awaitSync(id, false, adopt !== undefined)[1]);
    return adopt ? adopt(result) : result;
  }

  /**
   * Performs a syscall without blocking; the promise rejects with SyscallError
   * on failure. `map`, if given, makes what the promise resolves with from the
   * syscall's result (a throw rejects it): one promise per call, where an
   * async function around this one would add its own and a turn of the
   * microtask queue.
   */
  callAsync(sysno: number, args: readonly unknown[], map?: (result: unknown) => unknown): Promise<unknown> {
    this.listen();
    const id = this.allocateId();
    return new Promise((resolve, reject) => {
      // Sent first: a transport that throws (a closed channel) leaves no call pending. Its reply cannot come before this returns.
      this.sendRequest(id, sysno, args, true);
      this.pending.add(id, { resolve, reject, sysno, map });
    });
  }

  /**
   * Sends arbitrary bytes (a test or fuzzing facility: a hostile domain can
   * always do this to its own port) and blocks for the kernel's answer to it:
   * the next reply that answers no pending asynchronous call, whatever id
   * the kernel could read from the frame.
   */
  rawSync(frame: unknown): Reply {
    this.transport.sendRaw(frame, true);
    return this.awaitSync(UNKNOWN_CALL_ID, true)[1];
  }

  /** As rawSync, but returns the reply exactly as it arrived, undecoded (to inspect what a domain is handed). */
  rawSyncBytes(frame: unknown): Uint8Array {
    this.transport.sendRaw(frame, true);
    return this.awaitSync(UNKNOWN_CALL_ID, true)[0];
  }

  /** Posts arbitrary bytes or values as they are (shared memory included) and does not wait. */
  rawPost(message: unknown): void {
    this.transport.sendRaw(message);
  }

  /** Closes the channel: the kernel releases everything this domain holds. */
  close(): void {
    for (const p of this.pending.takeAll()) p.reject(new Error('channel closed'));
    this.transport.close();
  }

  private sendRequest(id: number, sysno: number, args: readonly unknown[], promised: boolean): void {
    const t = this.transport;
    if (t.sendRequest) t.sendRequest(id, sysno, args, promised);
    else t.send(encodeRequest(id, sysno, args), promised, id);
  }

  private allocateId(): number {
    const id = this.nextId;
    this.nextId = id === 0xffffffff ? 1 : id + 1;
    return id;
  }

  /** Blocks until the reply to `id` (or, raw, the next reply no async call awaits) arrives. */
  private awaitSync(id: number, raw: boolean, inPlace = false): [bytes: Uint8Array, reply: Reply] {
    for (;;) {
      const bytes = this.transport.receiveSync(inPlace);
      const reply = decodeFrame(bytes) as Reply;
      if (reply[0] === id || (raw && !this.pending.has(reply[0]))) {
        this.transport.settled?.();
        return [bytes, reply];
      }
      // An async call's answer that arrived meanwhile; one decoded in shared memory is decoded again from a copy.
      this.dispatch(bytes.buffer instanceof SharedArrayBuffer ? (decodeFrame(ownCopy(bytes)) as Reply) : reply);
    }
  }

  private listen(): void {
    if (this.listening) return;
    this.listening = true;
    this.transport.listen((bytes) => this.dispatch(decodeFrame(bytes) as Reply));
  }

  private dispatch(reply: Reply): void {
    const p = this.pending.take(reply[0]);
    if (!p) return;
    try {
      const result = this.unwrap(p.sysno, reply);
      p.resolve(p.map ? p.map(result) : result);
    } catch (err) {
      p.reject(err as Error);
    }
  }

  private unwrap(sysno: number, [, errno, result]: Reply): unknown {
    if (errno === FAULT_ERRNO) deliverFault(result as FaultDelivery);
    if (errno !== 0) throw new SyscallError(SYSCALL_BY_NUMBER[sysno] ?? `syscall ${sysno}`, errno);
    return result;
  }

  /** Lets the thread (or process) exit while async calls are idle (the transport otherwise keeps it alive). */
  unref(): void {
    this.transport.unref();
  }

  /** Lockstep: tells the kernel of a line the program logged, in order with its calls (see LogNotice in @moat/abi). */
  logged(line: string): void {
    this.transport.logged?.(line);
  }

  /** Queues a blocking stream send in the send ring, as far as the transport can (see FrameTransport.queueSend); returns the bytes queued. */
  queueSend(handle: number, data: Uint8Array): number {
    return this.transport.queueSend?.(handle, data) ?? 0;
  }

  /** Waits for the kernel to take what is queued on these handles, before a call that names one of them. */
  awaitQueued(handles: readonly number[]): void {
    this.transport.awaitQueued?.(handles);
  }

  /** Some handle may still have sends queued in the ring (cheap to ask; awaitQueued tells for sure). */
  queuedAny(): boolean {
    return this.transport.queuedAny?.() ?? false;
  }

  /** 1 when the kernel stopped the send ring since the last look, 2 when it broke for good, else 0. */
  ringStopped(): number {
    return this.transport.ringStopped?.() ?? 0;
  }
}
