/**
 * The domain's end of its syscall channel. Requests go out as msgpack
 * frames on a MessagePort; replies come back on it. A synchronous call
 * blocks the thread on a shared wake-up word (as a thread blocks in a real
 * recv) and then takes its reply straight off the port; an asynchronous call
 * resolves a promise from the port's message event. Both send the same
 * frames and get the same validation.
 */
import { receiveMessageOnPort, type MessagePort } from 'node:worker_threads';
import { decodeFrame, encodeRequest, SyscallError, UNKNOWN_CALL_ID, SYSCALL_BY_NUMBER, type Reply } from '@moat/abi';

/** Iterations to spin on the wake-up word before sleeping: a free core often answers within them. */
const SPIN = 2000;

interface Pending {
  resolve(value: unknown): void;
  reject(err: Error): void;
  sysno: number;
}

export class Channel {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly wake: Int32Array;
  private listening = false;

  constructor(
    private readonly port: MessagePort,
    signal: SharedArrayBuffer,
  ) {
    this.wake = new Int32Array(signal);
  }

  /** Performs a syscall, blocking this thread until the kernel answers. Throws SyscallError on failure. */
  callSync(sysno: number, args: readonly unknown[]): unknown {
    const id = this.allocateId();
    return this.unwrap(sysno, this.exchangeSync(encodeRequest(id, sysno, args), id)[1]);
  }

  /** Performs a syscall without blocking; the promise rejects with SyscallError on failure. */
  callAsync(sysno: number, args: readonly unknown[]): Promise<unknown> {
    this.listen();
    const id = this.allocateId();
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, sysno });
      this.post(encodeRequest(id, sysno, args));
    });
  }

  /**
   * Sends arbitrary bytes (a test or fuzzing facility: a hostile domain can
   * always do this to its own port) and blocks for the kernel's answer to it:
   * the next reply that answers no pending asynchronous call, whatever id
   * the kernel could read from the frame.
   */
  rawSync(frame: unknown): Reply {
    return this.exchangeSync(frame, UNKNOWN_CALL_ID, true)[1];
  }

  /** As rawSync, but returns the reply exactly as it arrived, undecoded (to inspect what a domain is handed). */
  rawSyncBytes(frame: unknown): Uint8Array {
    return this.exchangeSync(frame, UNKNOWN_CALL_ID, true)[0];
  }

  /** Posts arbitrary bytes or values as they are (shared memory included) and does not wait. */
  rawPost(message: unknown): void {
    this.port.postMessage(message);
  }

  /** Closes the channel: the kernel releases everything this domain holds. */
  close(): void {
    for (const p of this.pending.values()) p.reject(new Error('channel closed'));
    this.pending.clear();
    this.port.close();
  }

  private allocateId(): number {
    const id = this.nextId;
    this.nextId = id === 0xffffffff ? 1 : id + 1;
    return id;
  }

  /** Posts an owned frame from encodeRequest, transferring (not copying) its memory. */
  private post(frame: Uint8Array<ArrayBuffer>): void {
    this.port.postMessage(frame, [frame.buffer]);
  }

  /** Posts a frame and blocks until the reply to `id` (or, raw, the next reply no async call awaits) arrives. */
  private exchangeSync(frame: unknown, id: number, raw = false): [bytes: Uint8Array, reply: Reply] {
    let seen = Atomics.load(this.wake, 0);
    if (raw) this.port.postMessage(frame);
    else this.post(frame as Uint8Array<ArrayBuffer>);
    for (;;) {
      const message = receiveMessageOnPort(this.port);
      if (message) {
        const bytes = message.message as Uint8Array;
        const reply = decodeFrame(bytes) as Reply;
        if (reply[0] === id || (raw && !this.pending.has(reply[0]))) return [bytes, reply];
        this.dispatch(reply); // an async call's answer that arrived meanwhile
        continue;
      }
      let spins = SPIN;
      while (spins-- > 0 && Atomics.load(this.wake, 0) === seen);
      if (spins < 0) Atomics.wait(this.wake, 0, seen);
      seen = Atomics.load(this.wake, 0);
    }
  }

  private listen(): void {
    if (this.listening) return;
    this.listening = true;
    this.port.on('message', (bytes: Uint8Array) => this.dispatch(decodeFrame(bytes) as Reply));
  }

  private dispatch(reply: Reply): void {
    const p = this.pending.get(reply[0]);
    if (!p) return;
    this.pending.delete(reply[0]);
    try {
      p.resolve(this.unwrap(p.sysno, reply));
    } catch (err) {
      p.reject(err as Error);
    }
  }

  private unwrap(sysno: number, [, errno, result]: Reply): unknown {
    if (errno !== 0) throw new SyscallError(SYSCALL_BY_NUMBER[sysno] ?? `syscall ${sysno}`, errno);
    return result;
  }

  /** Lets the thread exit while async calls are idle (the port otherwise keeps it alive). */
  unref(): void {
    this.port.unref();
  }
}
