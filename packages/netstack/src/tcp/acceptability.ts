/**
 * Which arriving segments a synchronized connection believes: RFC 9293
 * 3.10.7.4's sequence-number test, and RFC 5961's stricter rules for RST, SYN
 * and ACK that make blind in-window injection need an exact guess. The RFC
 * 5961 checks apply in the synchronized states (ESTABLISHED onwards); the
 * handshake states have their own tests in RFC 9293 3.10.7.2 and 3.10.7.3.
 */
import { seqAdd, seqGeq, seqGt, seqInWindow, seqLeq, seqLt, seqSub } from './seq.js';

/**
 * RFC 9293 3.10.7.4, first check: is any of the segment inside the receive
 * window? `len` is SEG.LEN, counting SYN and FIN. The four cases:
 *
 *   SEG.LEN  RCV.WND  acceptable when
 *   0        0        SEG.SEQ = RCV.NXT
 *   0        >0       RCV.NXT =< SEG.SEQ < RCV.NXT+RCV.WND
 *   >0       0        never
 *   >0       >0       the first or the last byte is in the window
 *
 * As written, the last case refuses a segment that begins before the window
 * and ends after it (only possible if the window shrank or the peer ignores
 * it); Linux's tcp_sequence() would take it. A zero window still lets the
 * caller process the ACK, URG and RST of a refused segment (RFC 9293 says so).
 */
export function segmentAcceptable(seq: number, len: number, rcvNxt: number, rcvWnd: number): boolean {
  if (len === 0) return rcvWnd === 0 ? seq === rcvNxt : seqInWindow(seq, rcvNxt, rcvWnd);
  if (rcvWnd === 0) return false;
  return seqInWindow(seq, rcvNxt, rcvWnd) || seqInWindow(seqAdd(seq, len - 1), rcvNxt, rcvWnd);
}

/** The part of a segment's data to keep: skip `skip` bytes already received, then keep `length`. */
export interface WindowTrim {
  skip: number;
  length: number;
}

/**
 * Trims `dataLen` bytes of data starting at `seq` to the receive window
 * [RCV.NXT, RCV.NXT+RCV.WND): "only the new parts are processed" (RFC 9293
 * 3.10.7.4) and nothing beyond the window is kept. Data only: where the
 * segment's SYN or FIN falls is the caller's to judge. `length` is 0 when
 * nothing is new and in the window.
 */
export function trimToWindow(seq: number, dataLen: number, rcvNxt: number, rcvWnd: number): WindowTrim {
  const skip = Math.min(Math.max(seqSub(rcvNxt, seq), 0), dataLen);
  const start = seqAdd(seq, skip);
  if (!seqInWindow(start, rcvNxt, rcvWnd)) return { skip, length: 0 };
  const room = rcvWnd - seqSub(start, rcvNxt);
  return { skip, length: Math.min(dataLen - skip, room) };
}

/** 'accept': reset the connection; 'challenge': send a challenge ACK and drop; 'drop': drop silently. */
export type RstAction = 'accept' | 'challenge' | 'drop';

/**
 * RFC 5961 3.2: a RST resets the connection only if its sequence number is
 * exactly RCV.NXT. Elsewhere in the window it draws a challenge ACK, so a
 * peer that really lost the connection answers with a RST at exactly the
 * right number; outside the window it is dropped silently.
 */
export function rstAction(seq: number, rcvNxt: number, rcvWnd: number): RstAction {
  if (seq === rcvNxt) return 'accept';
  return seqInWindow(seq, rcvNxt, rcvWnd) ? 'challenge' : 'drop';
}

/**
 * RFC 5961 4.2: a SYN in a synchronized state, whatever its sequence number,
 * draws a challenge ACK and is dropped, instead of RFC 793's reset of an
 * in-window SYN. A peer that restarted answers the ACK with a RST that
 * passes `rstAction`. (TIME-WAIT may instead accept a new SYN, RFC 9293
 * 3.10.7.4 and RFC 6191; that is the caller's.)
 */
export function synInSynchronized(): 'challenge' {
  return 'challenge';
}

/**
 * RFC 5961 5.2: an ACK is acceptable only if SND.UNA - MAX.SND.WND =<
 * SEG.ACK =< SND.NXT, where MAX.SND.WND is the largest window the peer has
 * ever advertised. Anything else is dropped and answered with an ACK
 * (subject to `ChallengeAckLimiter`).
 */
export function ackAcceptable(ack: number, sndUna: number, sndNxt: number, maxSndWnd: number): boolean {
  return seqGeq(ack, seqAdd(sndUna, -maxSndWnd)) && seqLeq(ack, sndNxt);
}

/**
 * RFC 5961 5.2 combined with RFC 9293 3.10.7.4's ACK processing:
 * 'challenge' (unacceptable: drop the segment, send an ACK), 'old' (below
 * SND.UNA but acceptable: ignore the ACK field, process the rest), 'same'
 * (equal to SND.UNA: a duplicate ACK if RFC 5681 2's other conditions hold)
 * or 'new' (advances SND.UNA).
 */
export type AckClass = 'challenge' | 'old' | 'same' | 'new';

export function classifyAck(ack: number, sndUna: number, sndNxt: number, maxSndWnd: number): AckClass {
  if (!ackAcceptable(ack, sndUna, sndNxt, maxSndWnd)) return 'challenge';
  if (seqLt(ack, sndUna)) return 'old';
  return seqGt(ack, sndUna) ? 'new' : 'same';
}

export interface ChallengeAckLimits {
  /** Challenge ACKs allowed per interval. */
  limit: number;
  intervalMs: number;
}

/**
 * RFC 5961 7's example: "in any 5 second window, no more than 10 challenge
 * ACKs should be sent", both values tunable by the administrator.
 */
export const RFC5961_CHALLENGE_ACK_LIMITS: Readonly<ChallengeAckLimits> = Object.freeze({ limit: 10, intervalMs: 5000 });

/** 1000 per second: the host-wide tcp_challenge_ack_limit Linux used from 4.7 (after CVE-2016-5696) until 6.0. */
export const DEFAULT_CHALLENGE_ACK_LIMITS: Readonly<ChallengeAckLimits> = Object.freeze({ limit: 1000, intervalMs: 1000 });

/**
 * RFC 5961 7's throttle on challenge ACKs, with "a timestamp and a counter"
 * as the RFC suggests: at most `limit` in each interval, the interval
 * starting at the first challenge after the previous one ended.
 *
 * Give each connection its own limiter, never one shared by the host: a
 * shared budget is a side channel. CVE-2016-5696 (Cao et al., "Off-Path TCP
 * Exploits", USENIX Security 2016) used Linux's single global counter to
 * learn, by counting the challenge ACKs on its own connection, whether a
 * spoofed RST had hit another connection's window. In Moat that would leak
 * one domain's connections to another; Linux itself now disables the global
 * limit by default (6.0) and keeps a per-socket one.
 */
export class ChallengeAckLimiter {
  readonly limit: number;
  readonly intervalMs: number;
  private windowStart = -Infinity;
  private sent = 0;
  private suppressedCount = 0;

  constructor(limits: Partial<ChallengeAckLimits> = {}) {
    const { limit, intervalMs } = { ...DEFAULT_CHALLENGE_ACK_LIMITS, ...limits };
    if (!Number.isInteger(limit) || limit < 0) throw new RangeError(`limit must be an integer >= 0, got ${limit}`);
    if (!(intervalMs > 0) || !Number.isFinite(intervalMs)) throw new RangeError(`intervalMs must be positive, got ${intervalMs}`);
    this.limit = limit;
    this.intervalMs = intervalMs;
  }

  /** True if a challenge ACK may be sent at `now` (ms), counting it; false if it must be suppressed. */
  allow(now: number): boolean {
    if (now - this.windowStart >= this.intervalMs || now < this.windowStart) {
      this.windowStart = now;
      this.sent = 0;
    }
    if (this.sent < this.limit) {
      this.sent++;
      return true;
    }
    this.suppressedCount++;
    return false;
  }

  /** Challenge ACKs refused so far (for a counter such as Linux's TCPChallengeACK drops). */
  get suppressed(): number {
    return this.suppressedCount;
  }
}
