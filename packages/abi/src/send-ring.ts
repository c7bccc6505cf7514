/**
 * The send ring: a single-producer, single-consumer ring of stream writes in
 * a worker domain's channel signal, after its virtual clock. The domain
 * writes a record (handle, bytes) and its blocking send returns; the kernel
 * copies the bytes out into the socket's send buffer when it drains the
 * ring, so a domain streaming data does not hand its thread over to the
 * kernel for every write. A record is a send: the kernel checks its handle
 * and the socket as a sendto frame's, and an error it meets is the socket's
 * pending error, reported to the next send or recv on the handle (see
 * docs/sockets.md, "Streams", for what that changes).
 *
 * Layout, from RING_OFFSET: eight Int32 words, then RING_BYTES of records.
 * Positions count bytes since the ring began, modulo 2^32; a record starts
 * on an 8-byte boundary with two Int32s (handle, length) and its bytes, and
 * never runs past the ring's end: a record whose length is PAD_RECORD says
 * the rest up to the end is unused. The domain only writes records and
 * TAIL; the kernel reads each header once, checks it, and only writes the
 * other words.
 */
import { VIRTUAL_CLOCK_OFFSET } from './codec.js';
import { copyBytes } from './copy.js';

/** Bytes the kernel has consumed: every record before this position is done with. */
export const RING_HEAD = 0;
/** Bytes the domain has published: records before this position are complete. */
export const RING_TAIL = 1;
/** 1: the kernel found the ring empty and asks for a doorbell message (RingDoorbell) with the next record. */
export const RING_DOORBELL = 2;
/** 1: the domain sleeps on the channel's WAKE word until HEAD reaches RING_WAKE_AT. */
export const RING_WAITING = 3;
export const RING_WAKE_AT = 4;
/**
 * Set by the kernel when a record failed (its handle now has a pending error)
 * or the ring broke (RING_BROKEN: a header that cannot be, after which the
 * kernel reads no more of it). The domain stops writing records until it
 * has sent on a handle by a call again.
 */
export const RING_STOPPED = 5;
export const RING_BROKEN = 2;

const HEADER_BYTES = 32;
const RECORD_HEADER = 8;
/** A record's length field that marks the rest of the ring, to its end, as unused. */
const PAD_RECORD = -1;

/** Where the ring's words begin in the signal (8-byte aligned, after the virtual clock). */
export const RING_OFFSET = (VIRTUAL_CLOCK_OFFSET + 8 + 7) & ~7;
/** Bytes of records the ring holds: eight writes of 64 KiB. */
export const RING_BYTES = 512 * 1024;
/** The most bytes one record carries; a larger send is several records. */
export const RING_RECORD_MAX = 64 * 1024;
/** Bytes of a channel's signal with its send ring. */
export const RING_SIGNAL_BYTES = RING_OFFSET + HEADER_BYTES + RING_BYTES;

/** What a domain posts on its channel (a message, not a frame) when the kernel asked for a doorbell. */
export interface RingDoorbell {
  ring: true;
}

export function isRingDoorbell(message: unknown): message is RingDoorbell {
  return typeof message === 'object' && message !== null && !ArrayBuffer.isView(message) && (message as RingDoorbell).ring === true;
}

const align8 = (n: number) => (n + 7) & ~7;
/** `a - b` of two positions, as the distance it is (positions wrap at 2^32). */
const distance = (a: number, b: number) => (a - b) | 0;

/** The views both ends work through: the ring's words, and its records as bytes and as Int32 headers. */
abstract class RingEnd {
  protected readonly words: Int32Array;
  protected readonly bytes: Uint8Array;
  protected readonly records: Int32Array;

  /** Throws on a signal too small to hold a ring: the ends' `of` look first. */
  protected constructor(signal: SharedArrayBuffer) {
    this.words = new Int32Array(signal, RING_OFFSET, HEADER_BYTES / 4);
    this.bytes = new Uint8Array(signal, RING_OFFSET + HEADER_BYTES, RING_BYTES);
    this.records = new Int32Array(signal, RING_OFFSET + HEADER_BYTES, RING_BYTES / 4);
  }
}

/** A signal that holds a ring (an older or a bare signal does not). */
const hasRing = (signal: SharedArrayBuffer) => signal.byteLength >= RING_SIGNAL_BYTES;

/** The domain's end: writes records and publishes them. */
export class SendRingWriter extends RingEnd {
  private tail: number;

  /** The writer of `signal`'s ring, or undefined when it has none. */
  static of(signal: SharedArrayBuffer): SendRingWriter | undefined {
    return hasRing(signal) ? new SendRingWriter(signal) : undefined;
  }

  private constructor(signal: SharedArrayBuffer) {
    super(signal);
    this.tail = Atomics.load(this.words, RING_TAIL);
  }

  /** Where the next record will begin: the kernel is done with a record once HEAD has reached its end. */
  get position(): number {
    return this.tail;
  }

  /** HEAD has reached `position` (the kernel consumed everything before it). */
  consumed(position: number): boolean {
    return distance(Atomics.load(this.words, RING_HEAD), position) >= 0;
  }

  /**
   * Copies `data` (at most RING_RECORD_MAX bytes) into a record for
   * `handle` and publishes it; false, writing nothing, when the ring has no
   * room for it now.
   */
  tryWrite(handle: number, data: Uint8Array): boolean {
    if (data.length > RING_RECORD_MAX) throw new RangeError(`a ring record carries at most ${RING_RECORD_MAX} bytes, not ${data.length}`);
    const size = RECORD_HEADER + align8(data.length);
    const at = this.tail & (RING_BYTES - 1);
    const toEnd = RING_BYTES - at;
    const needed = size <= toEnd ? size : toEnd + size;
    if (RING_BYTES - distance(this.tail, Atomics.load(this.words, RING_HEAD)) < needed) return false;
    let tail = this.tail;
    if (size > toEnd) {
      this.records[at / 4 + 1] = PAD_RECORD;
      tail = (tail + toEnd) | 0;
    }
    const start = tail & (RING_BYTES - 1);
    this.records[start / 4] = handle | 0;
    this.records[start / 4 + 1] = data.length;
    copyBytes(this.bytes, start + RECORD_HEADER, data);
    this.tail = (tail + size) | 0;
    Atomics.store(this.words, RING_TAIL, this.tail); // publishes the record (a sequentially consistent store)
    return true;
  }

  /** The kernel asked for a doorbell: true once, for the caller to post it. */
  takeDoorbell(): boolean {
    return Atomics.load(this.words, RING_DOORBELL) !== 0 && Atomics.exchange(this.words, RING_DOORBELL, 0) !== 0;
  }

  /** Tells the kernel to bump WAKE once HEAD reaches `position`; false when it already has (then do not sleep). */
  wakeAt(position: number): boolean {
    Atomics.store(this.words, RING_WAKE_AT, position);
    Atomics.store(this.words, RING_WAITING, 1);
    if (!this.consumed(position)) return true;
    Atomics.store(this.words, RING_WAITING, 0);
    return false;
  }

  /**
   * Where HEAD must be for half the ring to be free: then any record fits,
   * wherever it falls (it takes at most twice its size, with the pad before
   * it). A writer that waits for this much, not just its own record's room,
   * is woken once per few records instead of once per record.
   */
  halfFreeAt(): number {
    return (this.tail - RING_BYTES / 2) | 0;
  }

  /** The kernel refused a record or gave up on the ring (RING_STOPPED): clears the flag and says so. */
  takeStopped(): number {
    return Atomics.load(this.words, RING_STOPPED) === 0 ? 0 : Atomics.exchange(this.words, RING_STOPPED, 0);
  }
}

/** A record as the kernel reads it: `data` is a view of the ring, valid until `consume`. */
export interface RingRecord {
  handle: number;
  data: Uint8Array;
}

/** The kernel's end: reads records, checks each header, and consumes them. */
export class SendRingReader extends RingEnd {
  private head: number;
  /** Where the current record ends (undefined: none read yet). */
  private currentEnd: number | undefined;
  /** A header that cannot be: the ring is read no more. */
  broken: string | undefined;

  /** The reader of `signal`'s ring, or undefined when it has none. */
  static of(signal: SharedArrayBuffer): SendRingReader | undefined {
    return hasRing(signal) ? new SendRingReader(signal) : undefined;
  }

  private constructor(signal: SharedArrayBuffer) {
    super(signal);
    this.head = Atomics.load(this.words, RING_HEAD);
  }

  /**
   * The record at HEAD, read again until it is consumed; undefined when the
   * ring is empty or broken. Each field is read once, into the kernel's own
   * variables, and checked before use: a domain's junk breaks its ring, never
   * the kernel.
   */
  peek(): RingRecord | undefined {
    if (this.broken !== undefined) return undefined;
    for (;;) {
      const published = distance(Atomics.load(this.words, RING_TAIL), this.head);
      if (published === 0) return undefined;
      if (published < 0 || published > RING_BYTES || (published & 7) !== 0) return this.break(`tail ${published} bytes past head`);
      const at = this.head & (RING_BYTES - 1);
      const handle = this.records[at / 4]!;
      const length = this.records[at / 4 + 1]!;
      const toEnd = RING_BYTES - at;
      if (length === PAD_RECORD) {
        if (published < toEnd) return this.break('a pad record past the tail');
        this.head = (this.head + toEnd) | 0;
        Atomics.store(this.words, RING_HEAD, this.head);
        continue;
      }
      const size = RECORD_HEADER + align8(length);
      if (length < 1 || length > RING_RECORD_MAX || size > toEnd || size > published) return this.break(`a record of ${length} bytes at ${at}`);
      this.currentEnd = (this.head + size) | 0;
      return { handle, data: this.bytes.subarray(at + RECORD_HEADER, at + RECORD_HEADER + length) };
    }
  }

  /** Done with the record peek returned: HEAD moves past it. True when the domain waits for HEAD to get here (bump its WAKE). */
  consume(): boolean {
    if (this.currentEnd === undefined) throw new Error('consume without a record');
    this.head = this.currentEnd;
    this.currentEnd = undefined;
    Atomics.store(this.words, RING_HEAD, this.head);
    return this.wakeDue();
  }

  /** The domain sleeps until HEAD reaches a position it has: clears its wait and says so. */
  wakeDue(): boolean {
    if (Atomics.load(this.words, RING_WAITING) === 0 || distance(this.head, Atomics.load(this.words, RING_WAKE_AT)) < 0) return false;
    return Atomics.exchange(this.words, RING_WAITING, 0) !== 0;
  }

  /**
   * Asks for a doorbell with the next record, after finding the ring empty.
   * False when a record came meanwhile (it takes the request back then, and
   * the caller reads on).
   */
  askDoorbell(): boolean {
    Atomics.store(this.words, RING_DOORBELL, 1);
    if (distance(Atomics.load(this.words, RING_TAIL), this.head) === 0) return true;
    Atomics.store(this.words, RING_DOORBELL, 0);
    return false;
  }

  /** A record failed: the domain stops writing records until it sends by a call again. */
  stop(): void {
    Atomics.store(this.words, RING_STOPPED, 1);
  }

  private break(why: string): undefined {
    this.broken = why;
    Atomics.store(this.words, RING_STOPPED, RING_BROKEN);
    return undefined;
  }
}
