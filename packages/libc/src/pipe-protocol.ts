/**
 * The wire format of a process domain's channel (isolation 'process'). A
 * child process cannot share a MessagePort or memory with the kernel, so its
 * frames travel over two stream pipes that the host bridges to the kernel's
 * port, copying each frame and changing none:
 *
 * - fd 3, the channel: the child writes every request and every lifecycle
 *   event here, in order, with blocking writes; the host writes back the
 *   init record (first) and the replies to blocking calls. The child reads it
 *   with blocking reads, which is what blocks a synchronous call.
 * - fd 4: the host writes the replies to promise calls here; the child reads
 *   it from its event loop. A separate pipe because one descriptor cannot be
 *   both blocking for `readSync` and watched by the event loop.
 *
 * Every message is a 4-byte big-endian word followed by that many bytes. From
 * the child, the word's top two bits say what follows (`PipeKind`) and the
 * other 30 bits its length; from the host, the word is the length alone.
 */
import type { DomainEvent } from './program.js';

/** What the child tells its host besides syscalls: its lifecycle events, what it threw, and that its channel closed. */
export type PipeEvent = DomainEvent | { event: 'error'; message: string } | { event: 'close' };

/** The child's end of the channel pipe (requests, events, init, blocking replies). */
export const PIPE_CHANNEL_FD = 3;
/** The child's end of the pipe that carries replies to promise calls. */
export const PIPE_ASYNC_FD = 4;

export const PIPE_HEADER_BYTES = 4;

/** What a message from the child carries. */
export const PipeKind = {
  /** A request whose reply goes back on the channel pipe (a blocking call, or a raw frame). */
  request: 0,
  /** A request whose reply goes to the async pipe (a promise call). */
  asyncRequest: 1,
  /** A lifecycle event for the host (v8-serialized `PipeEvent`); never reaches the kernel. */
  event: 2,
  /** A raw value that is not bytes (v8-serialized), posted to the kernel as the value itself. */
  rawValue: 3,
} as const;
export type PipeKind = (typeof PipeKind)[keyof typeof PipeKind];

/** The largest message either side may write (the length field's 30 bits). */
export const PIPE_MAX_MESSAGE = 2 ** 30 - 1;

/** A 4-byte header followed by the payload, in one buffer so it goes out in one write. */
export function packMessage(payload: Uint8Array, kind: PipeKind = PipeKind.request): Uint8Array<ArrayBuffer> {
  if (payload.byteLength > PIPE_MAX_MESSAGE) throw new RangeError(`a channel message is at most ${PIPE_MAX_MESSAGE} bytes, not ${payload.byteLength}`);
  const out = new Uint8Array(PIPE_HEADER_BYTES + payload.byteLength);
  new DataView(out.buffer).setUint32(0, ((kind << 30) | payload.byteLength) >>> 0);
  out.set(payload, PIPE_HEADER_BYTES);
  return out;
}

/** Splits a header word from the child into its kind and length. */
export function splitHeader(word: number): [kind: PipeKind, length: number] {
  return [(word >>> 30) as PipeKind, word & PIPE_MAX_MESSAGE];
}

/**
 * Cuts a byte stream into messages as chunks arrive, however the stream split
 * them. Each message's payload is copied into a buffer of its own (so it can
 * be transferred), but at most `keep(kind, length)` bytes of it: the rest is
 * read and dropped, so a peer that announces a huge message cannot make the
 * reader hold more than it chose to. `onMessage` gets the kept bytes and the
 * announced length.
 */
export class PipeReader {
  private readonly header = new Uint8Array(PIPE_HEADER_BYTES);
  private headerFill = 0;
  private kind: PipeKind = PipeKind.request;
  private length = 0;
  private body: Uint8Array<ArrayBuffer> | undefined;
  private bodyFill = 0;
  /** Bytes of the current message still to arrive (kept or dropped). */
  private remaining = 0;

  constructor(
    private readonly onMessage: (payload: Uint8Array<ArrayBuffer>, kind: PipeKind, length: number) => void,
    private readonly keep: (kind: PipeKind, length: number) => number = (_kind, length) => length,
    /** Whether the header carries a kind (messages from the child) or is a plain length (from the host). */
    private readonly kinded = true,
  ) {}

  push(chunk: Uint8Array): void {
    let i = 0;
    while (i < chunk.length) {
      if (this.body === undefined) {
        const take = Math.min(PIPE_HEADER_BYTES - this.headerFill, chunk.length - i);
        this.header.set(chunk.subarray(i, i + take), this.headerFill);
        this.headerFill += take;
        i += take;
        if (this.headerFill < PIPE_HEADER_BYTES) return;
        this.headerFill = 0;
        const word = new DataView(this.header.buffer).getUint32(0);
        [this.kind, this.length] = this.kinded ? splitHeader(word) : [PipeKind.request, word];
        this.body = new Uint8Array(Math.min(this.length, Math.max(0, this.keep(this.kind, this.length))));
        this.bodyFill = 0;
        this.remaining = this.length;
      } else {
        const take = Math.min(this.remaining, chunk.length - i);
        const kept = Math.min(take, this.body.length - this.bodyFill);
        if (kept > 0) this.body.set(chunk.subarray(i, i + kept), this.bodyFill);
        this.bodyFill += kept;
        this.remaining -= take;
        i += take;
      }
      if (this.body !== undefined && this.remaining === 0) {
        const body = this.body;
        this.body = undefined;
        this.onMessage(body, this.kind, this.length);
      }
    }
  }

  /** Whether a message is partly read (the stream ended inside one). */
  get partial(): boolean {
    return this.headerFill > 0 || this.body !== undefined;
  }
}
