/**
 * The pure parts of TCP: sequence arithmetic, the RTO estimator, initial
 * sequence numbers and the acceptability checks. Expected values are worked
 * out by hand in the comments from the RFC text; property tests use fixed seeds.
 */
import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { createHmac } from 'node:crypto';
import { seqAdd, seqGeq, seqGt, seqInWindow, seqLeq, seqLt, seqMax, seqMin, seqSub } from '../src/tcp/seq.js';
import { DEFAULT_RTO_OPTIONS, RtoEstimator } from '../src/tcp/rto.js';
import { IsnGenerator, isnClock, type FourTuple } from '../src/tcp/isn.js';
import {
  ackAcceptable,
  ChallengeAckLimiter,
  classifyAck,
  DEFAULT_CHALLENGE_ACK_LIMITS,
  RFC5961_CHALLENGE_ACK_LIMITS,
  rstAction,
  segmentAcceptable,
  synInSynchronized,
  trimToWindow,
} from '../src/tcp/acceptability.js';

const TWO_32 = 2 ** 32;
const u32 = fc.integer({ min: 0, max: TWO_32 - 1 });
/** A distance the comparisons are defined for: |d| < 2^31. */
const dist = fc.integer({ min: -(2 ** 31) + 1, max: 2 ** 31 - 1 });

describe('sequence arithmetic (RFC 9293 3.4)', () => {
  it('wraps at 2^32', () => {
    expect(seqAdd(0xffffffff, 1)).toBe(0);
    expect(seqAdd(0, -1)).toBe(0xffffffff);
    expect(seqAdd(0xfffffff0, 0x20)).toBe(0x10);
    expect(seqSub(0, 0xffffffff)).toBe(1);
    expect(seqSub(0xffffffff, 0)).toBe(-1);
    expect(seqSub(0x10, 0xfffffff0)).toBe(0x20);
    expect(seqLt(0xffffffff, 0)).toBe(true);
    expect(seqGt(0, 0xffffffff)).toBe(true);
    expect(seqLeq(5, 5) && seqGeq(5, 5) && !seqLt(5, 5) && !seqGt(5, 5)).toBe(true);
    expect(seqMax(0xfffffff0, 0x10)).toBe(0x10);
    expect(seqMin(0xfffffff0, 0x10)).toBe(0xfffffff0);
  });

  it('is undefined, and symmetric, at exactly 2^31 apart (RFC 1982 3.2)', () => {
    expect(seqLt(0, 2 ** 31)).toBe(true);
    expect(seqLt(2 ** 31, 0)).toBe(true);
  });

  it('adds and subtracts consistently', () => {
    fc.assert(
      fc.property(u32, dist, (a, d) => {
        const b = seqAdd(a, d);
        expect(b).toBeGreaterThanOrEqual(0);
        expect(b).toBeLessThan(TWO_32);
        expect(Number.isInteger(b)).toBe(true);
        expect(seqSub(b, a)).toBe(d);
        expect(seqSub(a, b)).toBe(-d | 0); // -0 for d = 0
        expect(seqAdd(b, -d)).toBe(a);
      }),
      { seed: 1, numRuns: 1000 },
    );
  });

  it('orders by signed distance, across the wrap', () => {
    fc.assert(
      fc.property(u32, dist, (a, d) => {
        const b = seqAdd(a, d);
        expect(seqLt(a, b)).toBe(d > 0);
        expect(seqGt(a, b)).toBe(d < 0);
        expect(seqLeq(a, b)).toBe(d >= 0);
        expect(seqGeq(a, b)).toBe(d <= 0);
        expect(seqLt(a, b)).toBe(seqGt(b, a));
        expect(seqMax(a, b)).toBe(d > 0 ? b : a);
        expect(seqMin(a, b)).toBe(d > 0 ? a : b);
      }),
      { seed: 2, numRuns: 1000 },
    );
  });

  it('is a total order on any span shorter than 2^31, wherever it sits', () => {
    fc.assert(
      fc.property(
        u32,
        fc.array(fc.integer({ min: 0, max: 2 ** 31 - 1 }), { minLength: 2, maxLength: 20 }),
        (base, offsets) => {
          const seqs = offsets.map((o) => seqAdd(base, o));
          const byOffset = [...offsets].sort((x, y) => x - y).map((o) => seqAdd(base, o));
          const bySeq = [...seqs].sort((x, y) => seqSub(x, y));
          expect(bySeq).toEqual(byOffset);
        },
      ),
      { seed: 3, numRuns: 500 },
    );
  });

  it('tests windows by unsigned distance from their start', () => {
    expect(seqInWindow(0x10, 0xfffffff0, 0x21)).toBe(true);
    expect(seqInWindow(0x10, 0xfffffff0, 0x20)).toBe(false);
    expect(seqInWindow(0xfffffff0, 0xfffffff0, 1)).toBe(true);
    expect(seqInWindow(0xfffffff0, 0xfffffff0, 0)).toBe(false);
    expect(seqInWindow(0xffffffef, 0xfffffff0, 0x100)).toBe(false);
    expect(seqInWindow(12345, 0, TWO_32)).toBe(true);
    fc.assert(
      fc.property(u32, u32, fc.integer({ min: 0, max: TWO_32 }), (start, d, size) => {
        expect(seqInWindow(seqAdd(start, d), start, size)).toBe(d < size);
      }),
      { seed: 4, numRuns: 1000 },
    );
  });
});

describe('RtoEstimator (RFC 6298)', () => {
  it('starts at 1 s and doubles on each backoff up to 60 s', () => {
    const r = new RtoEstimator();
    expect(r.rto).toBe(1000);
    expect(r.srtt).toBeUndefined();
    const seen = [];
    for (let i = 0; i < 8; i++) {
      r.backoff();
      seen.push(r.rto);
    }
    expect(seen).toEqual([2000, 4000, 8000, 16000, 32000, 60000, 60000, 60000]);
    expect(r.backoffs).toBe(8);
  });

  it('clamps to the 1 s minimum by default (RFC 6298 2.4) and clears the backoff on a sample', () => {
    const r = new RtoEstimator();
    r.backoff();
    r.sample(100); // SRTT 100, RTTVAR 50, RTO 100 + 4*50 = 300 -> 1000
    expect([r.srtt, r.rttvar, r.rto, r.backoffs]).toEqual([100, 50, 1000, 0]);
  });

  it('follows a hand-computed sequence with a 200 ms minimum', () => {
    const r = new RtoEstimator({ minMs: 200 });
    // First sample (2.2): SRTT = R = 100, RTTVAR = R/2 = 50, RTO = 100 + max(1, 200) = 300.
    r.sample(100);
    expect([r.srtt, r.rttvar, r.rto]).toEqual([100, 50, 300]);
    // 2.3, RTTVAR first with the old SRTT: RTTVAR = 3/4*50 + 1/4*|100-200| = 62.5;
    // SRTT = 7/8*100 + 1/8*200 = 112.5; RTO = 112.5 + 4*62.5 = 362.5.
    r.sample(200);
    expect([r.srtt, r.rttvar, r.rto]).toEqual([112.5, 62.5, 362.5]);
    // RTTVAR = 3/4*62.5 + 1/4*|112.5-100| = 50; SRTT = 7/8*112.5 + 1/8*100 = 110.9375; RTO = 310.9375.
    r.sample(100);
    expect([r.srtt, r.rttvar, r.rto]).toEqual([110.9375, 50, 310.9375]);
    r.backoff();
    expect(r.rto).toBe(621.875);
    r.backoff();
    expect(r.rto).toBe(1243.75);
    r.sample(110.9375); // RTTVAR = 37.5, SRTT unchanged: RTO = 110.9375 + 150
    expect([r.rto, r.backoffs]).toEqual([260.9375, 0]);
  });

  it('floors the variance term at the clock granularity G', () => {
    // Constant 100 ms samples: RTTVAR = 50 * (3/4)^(n-1) while SRTT stays 100. K*RTTVAR drops below
    // G = 50 at the sixth sample (4 * 11.865234375 = 47.4609375), so RTO becomes SRTT + G = 150.
    const r = new RtoEstimator({ minMs: 1, granularityMs: 50 });
    const seen = [];
    for (let i = 0; i < 7; i++) {
      r.sample(100);
      seen.push(r.rto);
    }
    expect(seen).toEqual([300, 250, 212.5, 184.375, 163.28125, 150, 150]);
  });

  it('caps at the maximum', () => {
    const r = new RtoEstimator({ maxMs: 60_000 });
    r.sample(100_000);
    expect(r.rto).toBe(60_000);
    const linux = new RtoEstimator({ minMs: 200, maxMs: 120_000 });
    for (let i = 0; i < 20; i++) linux.backoff();
    expect(linux.rto).toBe(120_000);
  });

  it('falls back to 3 s after a SYN timeout when nothing was measured (RFC 6298 5.7)', () => {
    const r = new RtoEstimator();
    r.backoff();
    expect(r.rto).toBe(2000);
    r.afterSynTimeout();
    expect([r.rto, r.backoffs]).toEqual([3000, 0]);
    const measured = new RtoEstimator({ minMs: 200 });
    measured.sample(100); // e.g. from timestamps
    measured.backoff();
    measured.afterSynTimeout();
    expect(measured.rto).toBe(300);
  });

  it('refuses impossible options and samples', () => {
    expect(() => new RtoEstimator({ minMs: 0 })).toThrow(RangeError);
    expect(() => new RtoEstimator({ minMs: 2000, maxMs: 1000 })).toThrow(RangeError);
    expect(() => new RtoEstimator({ maxMs: Infinity })).toThrow(RangeError);
    expect(() => new RtoEstimator({ granularityMs: -1 })).toThrow(RangeError);
    expect(() => new RtoEstimator({ initialMs: 0 })).toThrow(RangeError);
    const r = new RtoEstimator();
    expect(() => r.sample(-1)).toThrow(RangeError);
    expect(() => r.sample(Number.NaN)).toThrow(RangeError);
    expect(DEFAULT_RTO_OPTIONS).toEqual({ initialMs: 1000, minMs: 1000, maxMs: 60_000, granularityMs: 1 });
  });

  it('always stays within [min, max] and above SRTT', () => {
    fc.assert(
      fc.property(
        fc.array(fc.oneof(fc.integer({ min: 0, max: 100_000 }), fc.constant(-1)), { maxLength: 60, size: 'max' }),
        (ops) => {
          const r = new RtoEstimator({ minMs: 200, maxMs: 60_000 });
          for (const op of ops) {
            if (op < 0) r.backoff();
            else r.sample(op);
            expect(r.rto).toBeGreaterThanOrEqual(200);
            expect(r.rto).toBeLessThanOrEqual(60_000);
            if (r.backoffs === 0 && r.srtt !== undefined) expect(r.rto).toBeGreaterThanOrEqual(Math.min(r.srtt + 1, 60_000));
          }
        },
      ),
      { seed: 5, numRuns: 300 },
    );
  });
});

describe('initial sequence numbers (RFC 6528)', () => {
  const key = new Uint8Array(32).map((_, i) => i + 1);
  const tuple: FourTuple = { localAddr: 0x0a000001, localPort: 49152, remoteAddr: 0x0a000002, remotePort: 80 };

  it('ticks every 4 microseconds', () => {
    expect(isnClock(0)).toBe(0);
    expect(isnClock(1)).toBe(250);
    expect(isnClock(0.5)).toBe(125);
    expect(isnClock(1000)).toBe(250_000);
    expect(isnClock(4 * TWO_32)).toBe(0); // 2^32 * 1000 ticks: a whole number of wraps
    expect(isnClock(4 * TWO_32 + 1)).toBe(250);
    expect(() => isnClock(Number.NaN)).toThrow(RangeError);
  });

  it('is M + HMAC-SHA-256(key, localip | localport | remoteip | remoteport), first 32 bits big-endian', () => {
    const message = Buffer.from([10, 0, 0, 1, 0xc0, 0x00, 10, 0, 0, 2, 0x00, 0x50]);
    const f = createHmac('sha256', key).update(message).digest().readUInt32BE(0);
    const gen = new IsnGenerator(key);
    expect(gen.hash(tuple)).toBe(f);
    expect(gen.isn(tuple, 0)).toBe(f);
    expect(gen.isn(tuple, 1000)).toBe((f + 250_000) >>> 0);
  });

  it('is deterministic for the same key, four-tuple and time, and copies the key', () => {
    const mine = key.slice();
    const a = new IsnGenerator(mine);
    const before = a.isn(tuple, 12345.678);
    mine.fill(0);
    expect(a.isn(tuple, 12345.678)).toBe(before);
    expect(new IsnGenerator(key).isn(tuple, 12345.678)).toBe(before);
  });

  it('differs per four-tuple field and per key', () => {
    const gen = new IsnGenerator(key);
    const base = gen.isn(tuple, 5000);
    const variants: FourTuple[] = [
      { ...tuple, localAddr: 0x0a000003 },
      { ...tuple, localPort: 49153 },
      { ...tuple, remoteAddr: 0x0a000004 },
      { ...tuple, remotePort: 81 },
      // Swapping the ends is another four-tuple too.
      { localAddr: tuple.remoteAddr, localPort: tuple.remotePort, remoteAddr: tuple.localAddr, remotePort: tuple.localPort },
    ];
    for (const v of variants) expect(gen.isn(v, 5000)).not.toBe(base);
    const other = key.slice();
    other[0] ^= 1;
    expect(new IsnGenerator(other).isn(tuple, 5000)).not.toBe(base);
    // 2000 source ports give 2000 distinct ISNs at one instant (no structure an attacker could step through).
    const seen = new Set<number>();
    for (let p = 30000; p < 32000; p++) seen.add(gen.isn({ ...tuple, localPort: p }, 5000));
    expect(seen.size).toBe(2000);
  });

  it('advances with time, by 250 per millisecond modulo 2^32', () => {
    const gen = new IsnGenerator(key);
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 40 }), fc.integer({ min: 0, max: 10_000_000 }), (now, later) => {
        expect(seqSub(gen.isn(tuple, now + later), gen.isn(tuple, now))).toBe((later * 250) | 0);
      }),
      { seed: 6, numRuns: 200 },
    );
  });

  it('wants a 128-bit key at least', () => {
    expect(() => new IsnGenerator(new Uint8Array(15))).toThrow(RangeError);
    expect(() => new IsnGenerator(new Uint8Array(16))).not.toThrow();
  });
});

describe('segment acceptability (RFC 9293 3.10.7.4)', () => {
  const NXT = 1000;

  it('zero length, zero window: only SEG.SEQ = RCV.NXT', () => {
    expect(segmentAcceptable(1000, 0, NXT, 0)).toBe(true);
    expect(segmentAcceptable(999, 0, NXT, 0)).toBe(false);
    expect(segmentAcceptable(1001, 0, NXT, 0)).toBe(false);
  });

  it('zero length, open window: RCV.NXT =< SEG.SEQ < RCV.NXT+RCV.WND', () => {
    expect(segmentAcceptable(1000, 0, NXT, 100)).toBe(true);
    expect(segmentAcceptable(1099, 0, NXT, 100)).toBe(true);
    expect(segmentAcceptable(1100, 0, NXT, 100)).toBe(false);
    expect(segmentAcceptable(999, 0, NXT, 100)).toBe(false);
  });

  it('data, zero window: never', () => {
    expect(segmentAcceptable(1000, 1, NXT, 0)).toBe(false);
    expect(segmentAcceptable(999, 2, NXT, 0)).toBe(false);
  });

  it('data, open window: the first or the last byte in the window', () => {
    expect(segmentAcceptable(1000, 10, NXT, 100)).toBe(true);
    expect(segmentAcceptable(990, 11, NXT, 100)).toBe(true); // last byte 1000
    expect(segmentAcceptable(990, 10, NXT, 100)).toBe(false); // last byte 999: all old
    expect(segmentAcceptable(1099, 50, NXT, 100)).toBe(true); // first byte 1099
    expect(segmentAcceptable(1100, 1, NXT, 100)).toBe(false);
    // Begins before and ends after the window: refused as the RFC's test is written.
    expect(segmentAcceptable(990, 200, NXT, 100)).toBe(false);
  });

  it('works across the wrap', () => {
    expect(segmentAcceptable(0x10, 1, 0xffffffc0, 0x80)).toBe(true);
    expect(segmentAcceptable(0xffffffb0, 0x20, 0xffffffc0, 0x80)).toBe(true);
    expect(segmentAcceptable(0x40, 1, 0xffffffc0, 0x80)).toBe(false);
  });

  it('matches the table on unwrapped integers', () => {
    fc.assert(
      fc.property(
        u32,
        fc.integer({ min: -5000, max: 5000 }),
        fc.integer({ min: 0, max: 3000 }),
        fc.integer({ min: 0, max: 3000 }),
        (rcvNxt, d, len, wnd) => {
          const inWnd = (x: number) => x >= 0 && x < wnd;
          const model = len === 0 ? (wnd === 0 ? d === 0 : inWnd(d)) : wnd > 0 && (inWnd(d) || inWnd(d + len - 1));
          expect(segmentAcceptable(seqAdd(rcvNxt, d), len, rcvNxt, wnd)).toBe(model);
        },
      ),
      { seed: 7, numRuns: 2000 },
    );
  });

  it('trims data to the new bytes inside the window', () => {
    expect(trimToWindow(1000, 10, NXT, 100)).toEqual({ skip: 0, length: 10 });
    expect(trimToWindow(990, 20, NXT, 100)).toEqual({ skip: 10, length: 10 });
    expect(trimToWindow(1090, 20, NXT, 100)).toEqual({ skip: 0, length: 10 });
    expect(trimToWindow(990, 200, NXT, 100)).toEqual({ skip: 10, length: 100 });
    expect(trimToWindow(980, 10, NXT, 100)).toEqual({ skip: 10, length: 0 });
    expect(trimToWindow(1100, 10, NXT, 100)).toEqual({ skip: 0, length: 0 });
    expect(trimToWindow(1000, 10, NXT, 0)).toEqual({ skip: 0, length: 0 });
    expect(trimToWindow(0xfffffff0, 0x20, 0, 8)).toEqual({ skip: 0x10, length: 8 });
    fc.assert(
      fc.property(u32, fc.integer({ min: -300, max: 300 }), fc.integer({ min: 0, max: 200 }), fc.integer({ min: 0, max: 200 }), (rcvNxt, d, len, wnd) => {
        const { skip, length } = trimToWindow(seqAdd(rcvNxt, d), len, rcvNxt, wnd);
        // Byte i of the segment sits at offset d + i from RCV.NXT.
        const kept = [];
        let old = 0;
        for (let i = 0; i < len; i++) {
          if (d + i < 0) old++;
          else if (d + i < wnd) kept.push(i);
        }
        expect(skip).toBe(old);
        expect(length).toBe(kept.length);
        if (length > 0) expect(kept[0]).toBe(skip);
      }),
      { seed: 8, numRuns: 2000 },
    );
  });
});

describe('RFC 5961 checks', () => {
  it('RST (3.2): exact match resets, in-window challenges, outside drops', () => {
    expect(rstAction(1000, 1000, 100)).toBe('accept');
    expect(rstAction(1001, 1000, 100)).toBe('challenge');
    expect(rstAction(1099, 1000, 100)).toBe('challenge');
    expect(rstAction(1100, 1000, 100)).toBe('drop');
    expect(rstAction(999, 1000, 100)).toBe('drop');
    expect(rstAction(1000, 1000, 0)).toBe('accept');
    expect(rstAction(1001, 1000, 0)).toBe('drop');
    expect(rstAction(0x20, 0xfffffff0, 0x40)).toBe('challenge');
    expect(rstAction(0x30, 0xfffffff0, 0x40)).toBe('drop');
  });

  it('SYN in a synchronized state (4.2): always a challenge ACK', () => {
    expect(synInSynchronized()).toBe('challenge');
  });

  it('ACK (5.2): acceptable in [SND.UNA - MAX.SND.WND, SND.NXT]', () => {
    const [una, nxt, maxWnd] = [1000, 2000, 500];
    expect(ackAcceptable(500, una, nxt, maxWnd)).toBe(true);
    expect(ackAcceptable(499, una, nxt, maxWnd)).toBe(false);
    expect(ackAcceptable(2000, una, nxt, maxWnd)).toBe(true);
    expect(ackAcceptable(2001, una, nxt, maxWnd)).toBe(false);
    expect(ackAcceptable(999, una, nxt, 0)).toBe(false);
    expect(ackAcceptable(0xfffffff0, 0x10, 0x100, 0x20)).toBe(true);
    expect(ackAcceptable(0xffffffef, 0x10, 0x100, 0x20)).toBe(false);
    expect(classifyAck(499, una, nxt, maxWnd)).toBe('challenge');
    expect(classifyAck(2001, una, nxt, maxWnd)).toBe('challenge');
    expect(classifyAck(500, una, nxt, maxWnd)).toBe('old');
    expect(classifyAck(1000, una, nxt, maxWnd)).toBe('same');
    expect(classifyAck(1001, una, nxt, maxWnd)).toBe('new');
    expect(classifyAck(2000, una, nxt, maxWnd)).toBe('new');
  });

  it('throttles challenge ACKs per interval (RFC 5961 7)', () => {
    expect(DEFAULT_CHALLENGE_ACK_LIMITS).toEqual({ limit: 1000, intervalMs: 1000 });
    const linux = new ChallengeAckLimiter();
    let sent = 0;
    for (let i = 0; i < 1500; i++) if (linux.allow(10 + i * 0.5)) sent++;
    expect(sent).toBe(1000); // all 1500 fell in [10, 1010)
    expect(linux.allow(1009.9)).toBe(false);
    expect(linux.allow(1010)).toBe(true); // a new second
    const rfc = new ChallengeAckLimiter(RFC5961_CHALLENGE_ACK_LIMITS);
    const at = (t: number, n: number) => Array.from({ length: n }, () => rfc.allow(t));
    expect(at(0, 12)).toEqual([...Array(10).fill(true), false, false]);
    expect(rfc.allow(4999)).toBe(false);
    expect(rfc.allow(5000)).toBe(true); // the next 5 s window begins
    expect(rfc.suppressed).toBe(3);
    expect(linux.suppressed).toBe(501);
    expect(() => new ChallengeAckLimiter({ limit: -1 })).toThrow(RangeError);
    expect(() => new ChallengeAckLimiter({ intervalMs: 0 })).toThrow(RangeError);
  });
});
