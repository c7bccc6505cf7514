/**
 * A byte ring buffer with a fixed capacity, for a connection's send and
 * receive buffers (SO_SNDBUF, SO_RCVBUF). On the send side the front is
 * SND.UNA: bytes stay until acknowledged (`consume`), and `slice`/`copyTo`
 * read them at any offset for (re)transmission. On the receive side the
 * application reads from the front (`read`, or `peek` for MSG_PEEK).
 *
 * Storage grows on demand, doubling up to the capacity, so an idle or
 * short-lived connection (a connection-rate benchmark) does not pay for
 * its whole buffer. Every read is a copy, except `view`, which the stack
 * uses for a segment's payload on its way into a packet buffer. Misuse (consuming more than is held, reading past the end) is a
 * bug in the caller and throws.
 */

import { copyBytes } from '@moat/abi';

/** Storage starts at this size (or the capacity, if smaller) on the first write. */
const MIN_STORAGE = 1024;

export class StreamBuffer {
  private storage = new Uint8Array(0);
  /** Index in `storage` of the first byte held. */
  private head = 0;
  private held = 0;
  private cap: number;
  /** Where a view that wraps is put together, lent to one view at a time (until the next write, consume or resize). */
  private scratch = new Uint8Array(0);
  private scratchLent = false;

  constructor(capacity: number) {
    checkCapacity(capacity);
    this.cap = capacity;
  }

  get capacity(): number {
    return this.cap;
  }

  /** Bytes held. */
  get length(): number {
    return this.held;
  }

  /** Room left: what the next write can accept. */
  get free(): number {
    return this.cap - this.held;
  }

  /** Appends as much of `bytes` as fits and returns how many it took (0 when full). */
  write(bytes: Uint8Array): number {
    const n = Math.min(bytes.length, this.cap - this.held);
    if (n === 0) return 0;
    this.reserve(this.held + n);
    const size = this.storage.length;
    const tail = (this.head + this.held) % size;
    const first = Math.min(n, size - tail);
    copyBytes(this.storage, tail, bytes.subarray(0, first));
    if (first < n) copyBytes(this.storage, 0, bytes.subarray(first, n));
    this.held += n;
    this.scratchLent = false;
    return n;
  }

  /** Copies up to `max` bytes from the front without removing them (MSG_PEEK). */
  peek(max = this.held): Uint8Array {
    return this.slice(0, max);
  }

  /** Removes and returns up to `max` bytes from the front. */
  read(max = this.held): Uint8Array {
    const out = this.peek(max);
    this.consume(out.length);
    return out;
  }

  /** Removes `n` bytes from the front (data the peer acknowledged, or the application read). */
  consume(n: number): void {
    if (!Number.isInteger(n) || n < 0 || n > this.held) throw new RangeError(`cannot consume ${n} of ${this.held} bytes`);
    this.held -= n;
    this.scratchLent = false;
    // Empty: restart at index 0 so the next writes and reads are single copies.
    this.head = this.held === 0 ? 0 : (this.head + n) % this.storage.length;
  }

  /**
   * Copies the bytes at [offset, offset + length) from the front, fewer when
   * the buffer ends sooner. Note the (offset, length) arguments, unlike
   * Array's slice(start, end). `offset` may equal `length` (an empty result).
   */
  slice(offset: number, length: number): Uint8Array {
    const n = this.span(offset, length);
    const out = new Uint8Array(n);
    this.copyTo(offset, n, out, 0);
    return out;
  }

  /**
   * The bytes at [offset, offset + length), as `slice`, but without a copy
   * when they lie in one piece of the ring. Such a view keeps its bytes
   * until they are consumed: writes go to the free part of the ring, and
   * growing, resizing or clearing the buffer moves to new storage and leaves
   * the old as it was (loopback's gather relies on it: OutSegment.payloadStable).
   * It is for bytes on their way elsewhere inside the stack, never for
   * anything that leaves it. One that wraps is put together in scratch
   * memory the buffer keeps (`inScratch`), good only until the next write,
   * consume or resize (a fresh 64 KiB array for the segment that wrapped,
   * once per lap of a 512 KiB ring, cost a bulk transfer's kernel 6%).
   */
  view(offset: number, length: number): Uint8Array {
    const n = this.span(offset, length);
    if (n === 0) return new Uint8Array(0);
    const from = (this.head + offset) % this.storage.length;
    if (from + n <= this.storage.length) return this.storage.subarray(from, from + n);
    if (this.scratchLent) return this.slice(offset, n);
    if (this.scratch.length < n) this.scratch = new Uint8Array(n);
    this.scratchLent = true;
    const out = this.scratch.subarray(0, n);
    this.copyTo(offset, n, out, 0);
    return out;
  }

  /** Whether `view` lies in the scratch memory, which the next view that wraps may overwrite (see view). */
  inScratch(view: Uint8Array): boolean {
    return this.scratch.length > 0 && view.buffer === this.scratch.buffer;
  }

  /**
   * Copies the bytes at [offset, offset + length), fewer when the buffer ends
   * sooner, into `target` at `targetOffset`: a segment's payload straight into
   * its packet buffer. Returns the number copied.
   */
  copyTo(offset: number, length: number, target: Uint8Array, targetOffset = 0): number {
    const n = this.span(offset, length);
    if (targetOffset < 0 || targetOffset + n > target.length) throw new RangeError(`${n} bytes do not fit the target at ${targetOffset}`);
    if (n === 0) return 0;
    const size = this.storage.length;
    const from = (this.head + offset) % size;
    const first = Math.min(n, size - from);
    copyBytes(target, targetOffset, this.storage.subarray(from, from + first));
    if (first < n) copyBytes(target, targetOffset + first, this.storage.subarray(0, n - first));
    return n;
  }

  /** Changes the capacity (setsockopt); refuses to drop below what is held. */
  resize(capacity: number): void {
    checkCapacity(capacity);
    if (capacity < this.held) throw new RangeError(`cannot shrink to ${capacity} bytes below the ${this.held} held`);
    this.cap = capacity;
    this.scratchLent = false;
    if (this.storage.length > capacity) this.relocate(capacity);
  }

  /**
   * Drops everything, storage included, so no later use can see the old
   * bytes. Dropped rather than zeroed: a packet on its way through loopback
   * may still hold a view of it (OutSegment.payloadStable), and must carry
   * the bytes that were sent.
   */
  clear(): void {
    this.storage = new Uint8Array(0);
    this.scratch = new Uint8Array(0);
    this.scratchLent = false;
    this.head = 0;
    this.held = 0;
  }

  private span(offset: number, length: number): number {
    if (!Number.isInteger(offset) || offset < 0 || offset > this.held) throw new RangeError(`offset ${offset} is outside the ${this.held} bytes held`);
    if (!(length >= 0)) throw new RangeError(`length must be >= 0, got ${length}`);
    return Math.min(Math.floor(length), this.held - offset);
  }

  /** Makes room for `needed` bytes in storage (needed <= capacity). */
  private reserve(needed: number): void {
    if (this.storage.length >= needed) return;
    this.relocate(Math.min(this.cap, Math.max(needed, 2 * this.storage.length, MIN_STORAGE)));
  }

  /** Moves the bytes held, in order, to the start of new storage of `size` bytes. */
  private relocate(size: number): void {
    const next = new Uint8Array(size);
    this.copyTo(0, this.held, next, 0);
    this.storage = next;
    this.head = 0;
  }
}

function checkCapacity(capacity: number): void {
  if (!Number.isSafeInteger(capacity) || capacity < 0) throw new RangeError(`capacity must be an integer >= 0, got ${capacity}`);
}
