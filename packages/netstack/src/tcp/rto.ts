/**
 * The retransmission timeout of RFC 6298: a smoothed RTT (SRTT) and its mean
 * deviation (RTTVAR), RTO = SRTT + max(G, K*RTTVAR), with exponential backoff
 * when the timer expires. Times are milliseconds; no clock is read here.
 *
 * Karn's rule (RFC 6298 3) is the caller's: never call `sample` with the RTT
 * of a segment that was retransmitted (its ACK may answer either copy), unless
 * the timestamps option (RFC 7323 4.1) tells the copies apart. Keep the
 * backed-off RTO until a valid sample arrives: `sample` is what clears it.
 */

/** RFC 6298 2.3. Both are powers of two, so the arithmetic on integer samples stays exact. */
const ALPHA = 1 / 8;
const BETA = 1 / 4;
const K = 4;
/** RFC 6298 5.7: the RTO to fall back to when the SYN or SYN-ACK had to be retransmitted. */
const SYN_FALLBACK_MS = 3000;

export interface RtoOptions {
  /** Before any sample (RFC 6298 2.1: 1 s). */
  initialMs: number;
  /** RFC 6298 2.4 says 1 s; Linux uses 200 ms (TCP_RTO_MIN), which simulations want too. */
  minMs: number;
  /** RFC 6298 2.5 allows a cap of at least 60 s; Linux uses 120 s (TCP_RTO_MAX). */
  maxMs: number;
  /** G, the clock granularity: the floor of the variance term, so RTO > SRTT even when RTTVAR decays to 0. */
  granularityMs: number;
}

export const DEFAULT_RTO_OPTIONS: Readonly<RtoOptions> = Object.freeze({
  initialMs: 1000,
  minMs: 1000,
  maxMs: 60_000,
  granularityMs: 1,
});

export class RtoEstimator {
  private readonly options: RtoOptions;
  private srttMs: number | undefined;
  private rttvarMs: number | undefined;
  /** The RTO before backoff and before the clamp to [min, max]. */
  private baseMs: number;
  private backoffCount = 0;

  constructor(options: Partial<RtoOptions> = {}) {
    const o = { ...DEFAULT_RTO_OPTIONS, ...options };
    if (!(o.minMs > 0) || !(o.maxMs >= o.minMs) || !Number.isFinite(o.maxMs)) {
      throw new RangeError(`RTO bounds must satisfy 0 < min <= max < Infinity, got min ${o.minMs}, max ${o.maxMs}`);
    }
    if (!(o.initialMs > 0) || !Number.isFinite(o.initialMs)) throw new RangeError(`initial RTO must be positive, got ${o.initialMs}`);
    if (!(o.granularityMs >= 0) || !Number.isFinite(o.granularityMs)) {
      throw new RangeError(`clock granularity must be finite and >= 0, got ${o.granularityMs}`);
    }
    this.options = o;
    this.baseMs = o.initialMs;
  }

  /**
   * Takes one RTT measurement (RFC 6298 2.2 for the first, 2.3 after it; RTTVAR
   * is updated with the old SRTT, as the RFC orders). Clears the backoff.
   */
  sample(rttMs: number): void {
    if (!(rttMs >= 0) || !Number.isFinite(rttMs)) throw new RangeError(`an RTT sample must be finite and >= 0, got ${rttMs}`);
    if (this.srttMs === undefined || this.rttvarMs === undefined) {
      this.srttMs = rttMs;
      this.rttvarMs = rttMs / 2;
    } else {
      this.rttvarMs = (1 - BETA) * this.rttvarMs + BETA * Math.abs(this.srttMs - rttMs);
      this.srttMs = (1 - ALPHA) * this.srttMs + ALPHA * rttMs;
    }
    this.baseMs = this.srttMs + Math.max(this.options.granularityMs, K * this.rttvarMs);
    this.backoffCount = 0;
  }

  /** The timer expired (RFC 6298 5.5): double the RTO, up to the maximum. */
  backoff(): void {
    this.backoffCount++;
  }

  /**
   * Call when the handshake completes after the SYN (or SYN-ACK) timed out
   * (RFC 6298 5.7): with no RTT sample yet, an RTO under 3 s becomes 3 s for
   * the data that follows (Linux's TCP_TIMEOUT_FALLBACK). Clears the backoff.
   */
  afterSynTimeout(): void {
    if (this.srttMs === undefined) this.baseMs = Math.max(this.baseMs, SYN_FALLBACK_MS);
    this.backoffCount = 0;
  }

  /** The current RTO in ms: the base clamped to [min, max] (RFC 6298 2.4, 2.5), doubled per backoff and capped. */
  get rto(): number {
    const { minMs, maxMs } = this.options;
    const clamped = Math.min(Math.max(this.baseMs, minMs), maxMs);
    // Doubling a capped value step by step equals capping 2^n times the value; the loop stops at the cap.
    let rto = clamped;
    for (let i = 0; i < this.backoffCount && rto < maxMs; i++) rto = Math.min(rto * 2, maxMs);
    return rto;
  }

  /** Timer expiries since the last valid sample, for a caller's give-up limit (Linux's tcp_retries2). */
  get backoffs(): number {
    return this.backoffCount;
  }

  /** SRTT in ms, undefined before the first sample. */
  get srtt(): number | undefined {
    return this.srttMs;
  }

  /** RTTVAR in ms, undefined before the first sample. */
  get rttvar(): number | undefined {
    return this.rttvarMs;
  }
}
