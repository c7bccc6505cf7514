/**
 * The receiver's out-of-order queue: segments that arrived beyond RCV.NXT,
 * held until the hole before them is filled (RFC 9293 3.10.7.4: "segments
 * with higher beginning sequence numbers SHOULD be held for later
 * processing"). It also answers with the SACK blocks to report (RFC 2018).
 *
 * Bytes are kept as contiguous ranges in sequence order, never adjacent and
 * never overlapping: a new segment is trimmed to the holes it fills (the
 * bytes already held win, so a retransmission cannot rewrite data) and joins
 * its neighbours into one range. Memory spent on a peer's behalf is bounded
 * twice: in bytes, and in stored pieces (one per segment that brought new
 * bytes), since a peer sending one-byte segments costs bookkeeping, not
 * bytes. A segment that does not fit is refused whole and counted.
 *
 * Precondition: all sequence numbers handed in lie within one span of less
 * than 2^31 (comparisons are modulo 2^32, see seq.ts). The acceptability test
 * keeps segments within the receive window, at most 2^30, so this holds.
 *
 * The segment at RCV.NXT should go to the receive buffer directly, not
 * through here: if the queue were full of later data, refusing the one
 * segment that fills the hole would stall the connection.
 */
import type { SackBlock } from '../wire/tcp.js';
import { seqAdd, seqSub } from './seq.js';

export interface OooQueueLimits {
  /** Bytes held at most. */
  maxBytes: number;
  /** Stored pieces at most; by default one per 512 bytes of `maxBytes`, and at least 64. */
  maxSegments?: number;
}

/** RFC 2018 3: a SACK option holds at most 4 blocks in 40 bytes of options, 3 beside timestamps. */
export const MAX_SACK_BLOCKS = 4;

/** 'stored': some new bytes kept; 'duplicate': nothing new (already held, or empty); 'refused': over a limit, nothing kept. */
export type OooInsertResult = 'stored' | 'duplicate' | 'refused';

interface Range {
  /** Sequence number of the first byte. */
  start: number;
  length: number;
  /** The bytes, in order; their lengths sum to `length`. */
  chunks: Uint8Array[];
  /** When a segment last landed in this range, for the order of SACK blocks. */
  stamp: number;
}

export class OooQueue {
  readonly maxBytes: number;
  readonly maxSegments: number;
  private ranges: Range[] = [];
  private heldBytes = 0;
  private heldSegments = 0;
  private clock = 0;
  private refusedSegmentCount = 0;
  private refusedByteCount = 0;

  constructor(limits: OooQueueLimits) {
    const { maxBytes } = limits;
    if (!Number.isInteger(maxBytes) || maxBytes < 0) throw new RangeError(`maxBytes must be an integer >= 0, got ${maxBytes}`);
    const maxSegments = limits.maxSegments ?? Math.max(64, Math.ceil(maxBytes / 512));
    if (!Number.isInteger(maxSegments) || maxSegments < 0) throw new RangeError(`maxSegments must be an integer >= 0, got ${maxSegments}`);
    this.maxBytes = maxBytes;
    this.maxSegments = maxSegments;
  }

  /** Bytes held. */
  get bytes(): number {
    return this.heldBytes;
  }

  /** Pieces held (each a copy of part of one segment). */
  get segments(): number {
    return this.heldSegments;
  }

  get isEmpty(): boolean {
    return this.ranges.length === 0;
  }

  /** Segments refused for a limit since creation. */
  get refusedSegments(): number {
    return this.refusedSegmentCount;
  }

  /** New bytes those segments would have added. */
  get refusedBytes(): number {
    return this.refusedByteCount;
  }

  /**
   * Queues the segment starting at `seq`. Its bytes are copied (the caller's
   * buffer may be a packet buffer about to be released), only where they fill
   * a hole.
   */
  insert(seq: number, bytes: Uint8Array): OooInsertResult {
    const n = bytes.length;
    if (n === 0) return 'duplicate';
    // Offsets below are relative to `seq`: the segment is [0, n).
    const ranges = this.ranges;
    let first = 0;
    while (first < ranges.length && this.endOffset(ranges[first]!, seq) < 0) first++;
    let last = first;
    while (last < ranges.length && seqSub(ranges[last]!.start, seq) <= n) last++;
    // ranges[first, last) overlap or touch the segment: with it they become one range.
    const pieces: Array<[number, number]> = [];
    let cursor = 0;
    for (let i = first; i < last; i++) {
      const r = ranges[i]!;
      const rs = seqSub(r.start, seq);
      if (rs > cursor) pieces.push([cursor, Math.min(rs, n)]);
      cursor = Math.max(cursor, rs + r.length);
    }
    if (cursor < n) pieces.push([cursor, n]);
    const stamp = ++this.clock;
    if (pieces.length === 0) {
      // Already held: it lies inside one range (ranges never touch), which becomes the most recent.
      ranges[first]!.stamp = stamp;
      return 'duplicate';
    }
    let added = 0;
    for (const [a, b] of pieces) added += b - a;
    if (this.heldBytes + added > this.maxBytes || this.heldSegments + pieces.length > this.maxSegments) {
      this.refusedSegmentCount++;
      this.refusedByteCount += added;
      return 'refused';
    }
    // Interleave the new pieces with the held chunks, in sequence order.
    const chunks: Uint8Array[] = [];
    let p = 0;
    for (let i = first; i < last; i++) {
      const r = ranges[i]!;
      const rs = seqSub(r.start, seq);
      while (p < pieces.length && pieces[p]![0] < rs) chunks.push(copy(bytes, pieces[p++]!));
      chunks.push(...r.chunks);
    }
    while (p < pieces.length) chunks.push(copy(bytes, pieces[p++]!));
    const startOffset = first < last ? Math.min(0, seqSub(ranges[first]!.start, seq)) : 0;
    const endOffset = first < last ? Math.max(n, this.endOffset(ranges[last - 1]!, seq)) : n;
    ranges.splice(first, last - first, {
      start: seqAdd(seq, startOffset),
      length: endOffset - startOffset,
      chunks,
      stamp,
    });
    this.heldBytes += added;
    this.heldSegments += pieces.length;
    return 'stored';
  }

  /**
   * Removes and returns the bytes that are now contiguous from `rcvNxt`, at
   * most `limit` of them (e.g. the receive buffer's free space; the rest stays
   * queued). Bytes before `rcvNxt`, already delivered by another path, are
   * discarded. Returns an empty array when the byte at `rcvNxt` is missing.
   */
  take(rcvNxt: number, limit = Infinity): Uint8Array {
    if (!(limit >= 0)) throw new RangeError(`limit must be >= 0, got ${limit}`);
    const out: Uint8Array[] = [];
    let taken = 0;
    while (this.ranges.length > 0) {
      const r = this.ranges[0]!;
      const rs = seqSub(r.start, rcvNxt);
      if (rs > 0) break; // a hole at rcvNxt
      if (rs + r.length <= 0) {
        this.dropFront(r, r.length, undefined); // wholly before rcvNxt: stale
        this.ranges.shift();
        continue;
      }
      this.dropFront(r, -rs, undefined);
      const k = Math.min(r.length, Math.floor(limit));
      if (k > 0) taken = this.dropFront(r, k, out);
      if (r.length === 0) this.ranges.shift();
      break; // delivered up to a hole (ranges never touch), or up to the limit
    }
    return concat(out, taken);
  }

  /**
   * Up to `max` SACK blocks (at most 4), the most recently changed range
   * first, as RFC 2018 4 asks: the first block holds the segment that
   * triggered the ACK, then the others by recency.
   */
  sackBlocks(max = MAX_SACK_BLOCKS): SackBlock[] {
    const n = Math.max(0, Math.min(max, MAX_SACK_BLOCKS, this.ranges.length));
    return [...this.ranges]
      .sort((a, b) => b.stamp - a.stamp)
      .slice(0, n)
      .map((r) => ({ left: r.start, right: seqAdd(r.start, r.length) }));
  }

  /** Drops everything (connection reset or closed). */
  clear(): void {
    this.ranges = [];
    this.heldBytes = 0;
    this.heldSegments = 0;
  }

  private endOffset(r: Range, seq: number): number {
    return seqSub(r.start, seq) + r.length;
  }

  /** Removes `k` bytes from the front of `r`, appending them to `out` if given. Returns `k`. */
  private dropFront(r: Range, k: number, out: Uint8Array[] | undefined): number {
    let left = k;
    while (left > 0) {
      const c = r.chunks[0]!;
      if (c.length <= left) {
        out?.push(c);
        r.chunks.shift();
        this.heldSegments--;
        left -= c.length;
      } else {
        out?.push(c.subarray(0, left));
        r.chunks[0] = c.subarray(left);
        left = 0;
      }
    }
    r.start = seqAdd(r.start, k);
    r.length -= k;
    this.heldBytes -= k;
    return k;
  }
}

function copy(bytes: Uint8Array, [a, b]: [number, number]): Uint8Array {
  return bytes.slice(a, b);
}

function concat(parts: Uint8Array[], length: number): Uint8Array {
  const out = new Uint8Array(length);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
