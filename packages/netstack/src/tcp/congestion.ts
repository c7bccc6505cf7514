/**
 * NewReno congestion control: slow start, congestion avoidance, fast
 * retransmit and fast recovery of RFC 5681, with the partial-ACK handling of
 * RFC 6582. Windows are in bytes. The caller owns the sequence space and
 * says what happened (a new cumulative ACK, a duplicate ACK, a timeout); this
 * class answers with cwnd, ssthresh and whether to retransmit the first
 * unacknowledged segment.
 *
 * Choices where the RFCs leave room:
 * - Slow start counts bytes (RFC 3465 2.2): cwnd += min(N, L) per ACK with
 *   L = 2*SMSS by default, so a receiver's delayed ACKs (one per two
 *   segments) still double cwnd per RTT. `slowStartLimit: 1` gives RFC 5681
 *   3.1's standard cwnd += min(N, SMSS).
 * - Congestion avoidance counts bytes too (RFC 5681 3.1's recommended way,
 *   RFC 3465 2.1): once the bytes acknowledged reach cwnd, cwnd grows by one
 *   SMSS. Integer arithmetic, no SMSS*SMSS/cwnd rounding.
 * - On a full ACK, recovery ends with cwnd = min(ssthresh, max(FlightSize,
 *   SMSS) + SMSS), RFC 6582 3.2 step 3's option (1), which avoids a burst.
 * - With `sackRecovery`, recovery is RFC 6675's instead: cwnd = ssthresh on
 *   entry, no inflation by duplicate ACKs and no deflation by partial ones,
 *   since the sender's pipe estimate (sack-scoreboard.ts) says how much may
 *   go out. Entry and exit are the same as NewReno's. The sender owns the
 *   scoreboard and limited transmit (RFC 3042) is the sender's too.
 * - Congestion window validation (RFC 7661) is not here.
 */
import { seqAdd, seqGeq, seqGt, seqLt } from './seq.js';

/** RFC 5681 3.2: the third duplicate ACK triggers fast retransmit. */
export const DUP_ACK_THRESHOLD = 3;

/** The largest window a receiver can advertise, 65535 << 14 (RFC 7323 2.3): RFC 5681 3.1's "arbitrarily high" ssthresh. */
export const MAX_WINDOW = 65535 * 2 ** 14;

/**
 * RFC 5681 3.1's upper bound on the initial window: 2, 3 or 4 segments by
 * SMSS. RFC 3390's single formula min(4*SMSS, max(2*SMSS, 4380)) agrees
 * except for 1095 < SMSS < 1460, where it gives 4380 bytes, more than the
 * three segments RFC 5681 allows ("MUST NOT be more than 3 segments").
 */
export function initialWindow(smss: number): number {
  if (smss > 2190) return 2 * smss;
  if (smss > 1095) return 3 * smss;
  return 4 * smss;
}

export interface NewRenoOptions {
  /** SMSS: the largest segment the sender sends, in bytes. */
  smss: number;
  /** L of RFC 3465, in segments: the most one ACK may grow cwnd in slow start. 2 by default, 1 for strict RFC 5681. */
  slowStartLimit?: number;
  /** IW in bytes; defaults to RFC 5681 3.1's bound (e.g. RFC 6928's 10 segments may be set here). */
  initialWindow?: number;
  /** Defaults to MAX_WINDOW. */
  initialSsthresh?: number;
  /** Loss recovery driven by the SACK scoreboard's pipe (RFC 6675) rather than by window inflation. */
  sackRecovery?: boolean;
}

/** A new cumulative ACK: SND.UNA moved. */
export interface NewAck {
  /** SEG.ACK. */
  ack: number;
  /** How far it moved SND.UNA, in bytes of data. */
  bytesAcked: number;
  /** Bytes still outstanding once SND.UNA has moved (SND.NXT - SND.UNA). */
  flightSize: number;
}

/** A duplicate ACK as RFC 5681 2 defines it (no data, no SYN/FIN, same ACK and window, data outstanding). */
export interface DupAck {
  /** SEG.ACK, which equals SND.UNA. */
  ack: number;
  /** One past the highest sequence number ever sent (SND.NXT, or BSD's snd_max if SND.NXT was pulled back). */
  sndMax: number;
  /** Bytes outstanding (SND.NXT - SND.UNA). */
  flightSize: number;
}

export interface RetransmitTimeout {
  /** As in DupAck. */
  sndMax: number;
  /** Bytes outstanding when the timer fired. */
  flightSize: number;
}

export class NewReno {
  readonly smss: number;
  /** IW, also the restart window's bound after idle (RFC 5681 4.1). */
  readonly initialWindow: number;
  readonly sackRecovery: boolean;
  private readonly slowStartIncrement: number;
  private cwndBytes: number;
  private ssthreshBytes: number;
  /** RFC 3465's bytes_acked, counted in congestion avoidance only. */
  private ackedInAvoidance = 0;
  private dupAckCount = 0;
  private recovering = false;
  /**
   * RFC 6582's `recover`: the highest sequence number sent when recovery or
   * the last timeout began. Undefined until then, and again once an ACK has
   * passed it, since from then on every ACK covers more than it (this also
   * keeps a stale value from being compared across a 2^31 wrap).
   */
  private recover: number | undefined;
  /** A timeout happened and no new data has been acknowledged since: ssthresh stays put on the next one. */
  private timedOut = false;

  constructor(options: NewRenoOptions) {
    const { smss } = options;
    if (!Number.isInteger(smss) || smss <= 0) throw new RangeError(`SMSS must be a positive integer, got ${smss}`);
    const limit = options.slowStartLimit ?? 2;
    if (!(limit > 0)) throw new RangeError(`the slow start limit must be positive, got ${limit}`);
    const iw = options.initialWindow ?? initialWindow(smss);
    if (!(iw >= smss)) throw new RangeError(`the initial window must be at least one SMSS, got ${iw}`);
    const ssthresh = options.initialSsthresh ?? MAX_WINDOW;
    if (!(ssthresh >= 2 * smss)) throw new RangeError(`ssthresh must be at least 2*SMSS, got ${ssthresh}`);
    this.smss = smss;
    this.slowStartIncrement = Math.floor(limit * smss);
    this.initialWindow = iw;
    this.sackRecovery = options.sackRecovery ?? false;
    this.cwndBytes = iw;
    this.ssthreshBytes = ssthresh;
  }

  get cwnd(): number {
    return this.cwndBytes;
  }

  get ssthresh(): number {
    return this.ssthreshBytes;
  }

  /** In fast recovery: between the fast retransmit and the ACK that covers `recover`. */
  get inRecovery(): boolean {
    return this.recovering;
  }

  /** Duplicate ACKs since the last new ACK or timeout. */
  get dupAcks(): number {
    return this.dupAckCount;
  }

  /**
   * A new cumulative ACK. Returns true when it is a partial ACK in fast
   * recovery (RFC 6582 3.2 step 3): retransmit the first unacknowledged
   * segment now. On the first partial ACK, RFC 6582 also has the caller
   * restart the retransmission timer.
   */
  onAck({ ack, bytesAcked, flightSize }: NewAck): boolean {
    const smss = this.smss;
    this.dupAckCount = 0;
    this.timedOut = false;
    if (this.recovering) {
      if (seqGeq(seqAdd(ack, -1), this.recover!)) {
        // Full ACK: everything up to and including `recover` is acknowledged.
        this.cwndBytes = Math.min(this.ssthreshBytes, Math.max(flightSize, smss) + smss);
        this.recovering = false;
        this.ackedInAvoidance = 0;
      } else if (this.sackRecovery) {
        return false; // RFC 6675: the scoreboard, not cwnd, says what the partial ACK lets out
      } else {
        // Partial ACK: deflate by what left the network, add back one SMSS if a segment's worth did.
        // The floor of one SMSS is ours: several large partial ACKs could otherwise drive cwnd negative.
        this.cwndBytes = Math.max(this.cwndBytes - bytesAcked + (bytesAcked >= smss ? smss : 0), smss);
        return true;
      }
    } else if (this.cwndBytes < this.ssthreshBytes) {
      this.cwndBytes += Math.min(bytesAcked, this.slowStartIncrement);
    } else {
      this.ackedInAvoidance += bytesAcked;
      if (this.ackedInAvoidance >= this.cwndBytes) {
        this.ackedInAvoidance -= this.cwndBytes;
        this.cwndBytes += smss;
      }
    }
    if (this.recover !== undefined && seqGt(seqAdd(ack, -1), this.recover)) this.recover = undefined;
    return false;
  }

  /**
   * A duplicate ACK. Returns true on the one that starts fast retransmit
   * (RFC 5681 3.2 step 2): retransmit the first unacknowledged segment now.
   * That needs the third in a row, and (RFC 6582 3.2 step 2) an ACK that
   * covers more than `recover`, so that duplicates caused by retransmitting
   * after a timeout do not start a second reduction. In recovery, each
   * further duplicate inflates cwnd by one SMSS (RFC 5681 3.2 step 4).
   */
  onDupAck({ ack, sndMax, flightSize }: DupAck): boolean {
    this.dupAckCount++;
    if (this.recovering) {
      if (!this.sackRecovery) this.cwndBytes += this.smss;
      return false;
    }
    if (this.dupAckCount !== DUP_ACK_THRESHOLD) return false;
    return this.onLossDetected({ ack, sndMax, flightSize });
  }

  /**
   * The sender's scoreboard says the first unacknowledged segment is lost
   * (RFC 6675 5: IsLost(HighACK + 1)), before or without a third duplicate
   * ACK. Starts recovery as the third duplicate ACK would; returns whether
   * it did (not when already recovering, or for data sent before `recover`).
   */
  onLossDetected({ ack, sndMax, flightSize }: DupAck): boolean {
    if (this.recovering) return false;
    // RFC 6582 wants an ACK beyond `recover`. With SACK, an ACK that covers it exactly is enough: the
    // scoreboard's blocks then report data sent after `recover`, a loss of the next window, not this one.
    const last = seqAdd(ack, -1);
    if (this.recover !== undefined && (this.sackRecovery ? seqLt(last, this.recover) : !seqGt(last, this.recover))) return false;
    this.ssthreshBytes = this.lossThreshold(flightSize);
    this.cwndBytes = this.ssthreshBytes + (this.sackRecovery ? 0 : DUP_ACK_THRESHOLD * this.smss);
    this.recover = seqAdd(sndMax, -1);
    this.recovering = true;
    this.ackedInAvoidance = 0;
    return true;
  }

  /**
   * The retransmission timer fired (RFC 5681 3.1): ssthresh = max(FlightSize/2,
   * 2*SMSS), except on a repeated timeout of the same data, which keeps the
   * ssthresh of the first; cwnd falls to the loss window, one SMSS, and slow
   * start begins again. Fast recovery, if any, ends (RFC 6582 3.2 step 4).
   */
  onRetransmitTimeout({ sndMax, flightSize }: RetransmitTimeout): void {
    if (!this.timedOut) this.ssthreshBytes = this.lossThreshold(flightSize);
    this.timedOut = true;
    this.cwndBytes = this.smss;
    this.recover = seqAdd(sndMax, -1);
    this.recovering = false;
    this.dupAckCount = 0;
    this.ackedInAvoidance = 0;
  }

  /**
   * Restart after idle (RFC 5681 4.1): if nothing was sent for longer than the
   * RTO, cwnd drops to RW = min(IW, cwnd) before sending again, so a stale
   * window is not spent in one burst. Returns whether it did.
   */
  restartAfterIdle(now: number, lastSendMs: number, rtoMs: number): boolean {
    if (!(now - lastSendMs > rtoMs)) return false;
    this.cwndBytes = Math.min(this.initialWindow, this.cwndBytes);
    this.ackedInAvoidance = 0;
    return true;
  }

  /** RFC 5681 equation (4), rounded down to whole bytes. */
  private lossThreshold(flightSize: number): number {
    return Math.max(Math.floor(flightSize / 2), 2 * this.smss);
  }
}
