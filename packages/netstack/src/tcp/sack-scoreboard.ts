/**
 * The sender's SACK scoreboard (RFC 6675 section 3): which bytes above
 * SND.UNA the receiver has said it holds. Loss recovery reads it to decide
 * which bytes are lost (IsLost), how much is still in the network (pipe) and
 * what to send next (NextSeg).
 *
 * Ranges are kept as byte ranges, sorted, disjoint and never adjacent, so
 * the work per ACK is bounded by the number of holes, not of segments.
 * Blocks that lie outside (SND.UNA, SND.MAX] are ignored (RFC 2018 allows a
 * receiver nothing else, so such a block is forged or stale). SACK
 * information is advisory: a receiver may discard what it SACKed
 * (reneging), so nothing is freed from the send buffer on its account.
 *
 * Precondition, as in ooo-queue.ts: all sequence numbers lie within one
 * span of less than 2^31 (the send window bounds it).
 */
import type { SackBlock } from '../wire/tcp.js';
import { seqGeq, seqGt, seqLeq, seqLt, seqMax, seqMin, seqSub } from './seq.js';

/** RFC 6675's DupThresh: as many SACKed segments above a hole as duplicate ACKs that start fast retransmit. */
export const DUP_THRESH = 3;

interface Range {
  start: number;
  end: number;
}

export class SackScoreboard {
  private ranges: Range[] = [];
  private refused = 0;

  get isEmpty(): boolean {
    return this.ranges.length === 0;
  }

  /** Blocks ignored because they lay outside the outstanding data. */
  get refusedBlocks(): number {
    return this.refused;
  }

  /** One past the highest byte SACKed (RFC 6675's HighSACKed + 1), if any. */
  get highestSacked(): number | undefined {
    return this.ranges.at(-1)?.end;
  }

  /** Merges an ACK's SACK blocks. Returns whether any byte not SACKed before now is. */
  update(blocks: readonly SackBlock[] | undefined, sndUna: number, sndMax: number): boolean {
    let grew = false;
    for (const { left, right } of blocks ?? []) {
      if (!(seqLt(left, right) && seqGeq(left, sndUna) && seqLeq(right, sndMax))) {
        this.refused++;
        continue;
      }
      if (this.add(left, right)) grew = true;
    }
    return grew;
  }

  /** SND.UNA moved: bytes below it are acknowledged, so their SACK marks go. */
  advance(sndUna: number): void {
    let drop = 0;
    for (const r of this.ranges) {
      if (seqLeq(r.end, sndUna)) drop++;
      else {
        if (seqLt(r.start, sndUna)) r.start = sndUna;
        break;
      }
    }
    if (drop > 0) this.ranges.splice(0, drop);
  }

  clear(): void {
    this.ranges = [];
  }

  /** If `seq` is SACKed, the end of the SACKed range it lies in. */
  sackedEnd(seq: number): number | undefined {
    for (const r of this.ranges) {
      if (seqLt(seq, r.start)) return undefined;
      if (seqLt(seq, r.end)) return r.end;
    }
    return undefined;
  }

  /** The first SACKed byte at or after `seq`, if any: where a run of unSACKed bytes starting at `seq` ends. */
  nextSacked(seq: number): number | undefined {
    for (const r of this.ranges) if (seqGt(r.end, seq)) return seqMax(r.start, seq);
    return undefined;
  }

  /** SACKed bytes within [from, to). */
  sackedBytes(from: number, to: number): number {
    let n = 0;
    for (const r of this.ranges) {
      const s = seqMax(r.start, from);
      const e = seqMin(r.end, to);
      if (seqLt(s, e)) n += seqSub(e, s);
    }
    return n;
  }

  /**
   * RFC 6675's IsLost as one boundary: every unSACKed byte below the returned
   * sequence number is lost, since at least DupThresh discontiguous SACKed
   * ranges, or more than (DupThresh - 1) * SMSS SACKed bytes, lie above it.
   * Undefined when no byte is lost yet.
   */
  lossBoundary(smss: number): number | undefined {
    let bytes = 0;
    for (let i = this.ranges.length - 1, count = 1; i >= 0; i--, count++) {
      const r = this.ranges[i]!;
      bytes += seqSub(r.end, r.start);
      if (count >= DUP_THRESH || bytes > (DUP_THRESH - 1) * smss) return r.start;
    }
    return undefined;
  }

  /**
   * RFC 6675's pipe, in bytes: data the sender believes is still in the
   * network. Unsacked bytes at or above the loss boundary count once, and
   * every unSACKed byte retransmitted (below HighRxt) counts once more.
   */
  pipe(sndUna: number, sndMax: number, highRxt: number, lossBoundary: number | undefined): number {
    const notLostFrom = lossBoundary === undefined ? sndUna : seqMax(sndUna, seqMin(lossBoundary, sndMax));
    const notLost = seqSub(sndMax, notLostFrom) - this.sackedBytes(notLostFrom, sndMax);
    const rxtEnd = seqMin(seqMax(highRxt, sndUna), sndMax);
    const retransmitted = seqSub(rxtEnd, sndUna) - this.sackedBytes(sndUna, rxtEnd);
    return notLost + retransmitted;
  }

  private add(left: number, right: number): boolean {
    const ranges = this.ranges;
    // The ranges that touch [left, right) merge into one.
    let i = 0;
    while (i < ranges.length && seqLt(ranges[i]!.end, left)) i++;
    let j = i;
    let start = left;
    let end = right;
    let covered = 0;
    while (j < ranges.length && seqLeq(ranges[j]!.start, right)) {
      const r = ranges[j]!;
      covered += Math.max(0, seqSub(seqMin(r.end, right), seqMax(r.start, left)));
      start = seqMin(start, r.start);
      end = seqMax(end, r.end);
      j++;
    }
    ranges.splice(i, j - i, { start, end });
    return covered < seqSub(right, left);
  }
}
