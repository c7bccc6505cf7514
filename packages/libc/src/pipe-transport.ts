/**
 * A domain child process's transport (see pipe-protocol.ts for the format).
 * Requests and events go out with blocking writes on the channel pipe, so
 * they stay in order and are in the host's hands before the call returns,
 * even if the process dies right after. A blocking call reads its reply from
 * the same pipe with blocking reads: the process sleeps in read(2) as a
 * thread would in a real recv. Replies to promise calls come on the second
 * pipe, which the event loop watches.
 */
import { closeSync, readSync, writeSync, writevSync } from 'node:fs';
import { Socket } from 'node:net';
import { serialize } from 'node:v8';
import type { FrameTransport } from './channel.js';
import { PIPE_ASYNC_FD, PIPE_CHANNEL_FD, PIPE_HEADER_BYTES, PIPE_MAX_MESSAGE, PipeKind, PipeReader } from './pipe-protocol.js';
import type { PipeEvent } from './pipe-protocol.js';

/** Replies are read through this much staging, so a small reply costs one read(2). */
const STAGING_BYTES = 64 * 1024;

export class PipeTransport implements FrameTransport {
  private readonly staging = new Uint8Array(STAGING_BYTES);
  private readonly stagingView = new DataView(this.staging.buffer);
  private start = 0;
  private end = 0;
  private asyncPipe: Socket | undefined;
  private refed = true;
  private closed = false;

  constructor(
    private readonly channelFd = PIPE_CHANNEL_FD,
    private readonly asyncFd = PIPE_ASYNC_FD,
  ) {}

  send(frame: Uint8Array<ArrayBuffer>, promised: boolean): void {
    this.ensureOpen();
    this.write(frame, promised ? PipeKind.asyncRequest : PipeKind.request);
  }

  sendRaw(message: unknown): void {
    this.ensureOpen();
    // A pipe carries bytes. Any other value goes serialized (a structured clone,
    // as a worker's postMessage makes) and the host posts the value itself, so
    // the kernel judges exactly what a worker domain could have sent it.
    if (message instanceof Uint8Array) this.write(message, PipeKind.request);
    else this.write(serialize(message), PipeKind.rawValue);
  }

  /** Writes a lifecycle event for the host; these still go out after the channel closed, until the process ends. */
  sendEvent(event: PipeEvent): void {
    this.write(serialize(event), PipeKind.event);
  }

  receiveSync(): Uint8Array {
    this.ensureOpen();
    this.fill(PIPE_HEADER_BYTES);
    const length = this.stagingView.getUint32(this.start);
    this.start += PIPE_HEADER_BYTES;
    const frame = new Uint8Array(length);
    const buffered = Math.min(length, this.end - this.start);
    frame.set(this.staging.subarray(this.start, this.start + buffered));
    this.start += buffered;
    // The rest of a large reply is read straight into place.
    for (let got = buffered; got < length; ) got += this.read(frame, got, length - got);
    return frame;
  }

  listen(onReply: (frame: Uint8Array) => void): void {
    const reader = new PipeReader((frame) => onReply(frame), undefined, false);
    // A libuv stream makes its descriptor non-blocking; that is why this is a second pipe and not the channel's.
    this.asyncPipe = new Socket({ fd: this.asyncFd, readable: true, writable: false });
    this.asyncPipe.on('data', (chunk: Buffer) => reader.push(chunk));
    if (!this.refed) this.asyncPipe.unref();
  }

  unref(): void {
    this.refed = false;
    this.asyncPipe?.unref();
  }

  /** Tells the host the channel is closed (it closes the kernel's port); events may still follow. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.asyncPipe) this.asyncPipe.destroy();
    else closeSync(this.asyncFd);
    this.sendEvent({ event: 'close' });
  }

  private ensureOpen(): void {
    if (this.closed) throw new Error('channel closed');
  }

  /** Header and payload in one writev, looping over short writes. */
  private write(payload: Uint8Array, kind: PipeKind): void {
    if (payload.byteLength > PIPE_MAX_MESSAGE) throw new RangeError(`a channel message is at most ${PIPE_MAX_MESSAGE} bytes, not ${payload.byteLength}`);
    const header = new Uint8Array(PIPE_HEADER_BYTES);
    new DataView(header.buffer).setUint32(0, ((kind << 30) | payload.byteLength) >>> 0);
    const total = PIPE_HEADER_BYTES + payload.byteLength;
    let done = retryOnEagain(() => writevSync(this.channelFd, [header, payload]));
    while (done < total) {
      const [part, offset] = done < PIPE_HEADER_BYTES ? [header, done] : [payload, done - PIPE_HEADER_BYTES];
      done += retryOnEagain(() => writeSync(this.channelFd, part, offset));
    }
  }

  /** Makes at least `n` bytes available in the staging buffer. */
  private fill(n: number): void {
    if (this.start === this.end) this.start = this.end = 0;
    else if (this.staging.length - this.start < n) {
      this.staging.copyWithin(0, this.start, this.end);
      this.end -= this.start;
      this.start = 0;
    }
    while (this.end - this.start < n) this.end += this.read(this.staging, this.end, this.staging.length - this.end);
  }

  private read(into: Uint8Array, offset: number, length: number): number {
    const n = retryOnEagain(() => readSync(this.channelFd, into, offset, length, null));
    if (n === 0) {
      this.closed = true;
      throw new Error('syscall channel closed by the host');
    }
    return n;
  }
}

const nap = new Int32Array(new SharedArrayBuffer(4));

/**
 * The child's end of a libuv socketpair is blocking, so reads and writes
 * sleep in the kernel. Should the descriptor ever be non-blocking (the
 * program wrapped it in a stream of its own), they would fail with EAGAIN
 * instead: then wait a millisecond and try again rather than fail the call.
 */
function retryOnEagain(io: () => number): number {
  for (;;) {
    try {
      return io();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err;
      Atomics.wait(nap, 0, 0, 1);
    }
  }
}
