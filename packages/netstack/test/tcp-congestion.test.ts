/**
 * NewReno stepped through the phases of RFC 5681 and RFC 6582. SMSS is 1000
 * bytes so the windows read as segment counts; every expected value is worked
 * out in the comment beside it.
 */
import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { DUP_ACK_THRESHOLD, initialWindow, MAX_WINDOW, NewReno } from '../src/tcp/congestion.js';
import { seqAdd } from '../src/tcp/seq.js';

const S = 1000;

/** A sender's sequence space around the controller: enough to produce the ACKs the RFCs talk about. */
class Sender {
  una: number;
  nxt: number;
  constructor(
    readonly cc: NewReno,
    iss = 0,
  ) {
    this.una = iss;
    this.nxt = iss;
  }
  get flight(): number {
    return (this.nxt - this.una) >>> 0;
  }
  send(bytes: number): void {
    this.nxt = seqAdd(this.nxt, bytes);
  }
  /** Sends whole segments until cwnd is full. */
  fill(): void {
    while (this.flight + S <= this.cc.cwnd) this.send(S);
  }
  ack(bytes: number): boolean {
    this.una = seqAdd(this.una, bytes);
    return this.cc.onAck({ ack: this.una, bytesAcked: bytes, flightSize: this.flight });
  }
  dup(): boolean {
    return this.cc.onDupAck({ ack: this.una, sndMax: this.nxt, flightSize: this.flight });
  }
  timeout(): void {
    this.cc.onRetransmitTimeout({ sndMax: this.nxt, flightSize: this.flight });
  }
}

describe('initial window (RFC 5681 3.1)', () => {
  it('is 4, 3 or 2 segments by SMSS', () => {
    expect(initialWindow(536)).toBe(2144);
    expect(initialWindow(1095)).toBe(4380);
    expect(initialWindow(1096)).toBe(3288);
    expect(initialWindow(1460)).toBe(4380);
    expect(initialWindow(2190)).toBe(6570);
    expect(initialWindow(2191)).toBe(4382);
    expect(initialWindow(8960)).toBe(17920);
  });

  it('agrees with RFC 3390 min(4*SMSS, max(2*SMSS, 4380)) except where that exceeds three segments', () => {
    const rfc3390 = (s: number) => Math.min(4 * s, Math.max(2 * s, 4380));
    for (let s = 88; s <= 9000; s++) {
      if (s > 1095 && s < 1460) expect(rfc3390(s)).toBeGreaterThan(initialWindow(s));
      else expect(rfc3390(s)).toBeLessThanOrEqual(initialWindow(s));
    }
    expect(rfc3390(1200)).toBe(4380);
    expect(initialWindow(1200)).toBe(3600);
  });

  it('starts cwnd at IW and ssthresh arbitrarily high', () => {
    const cc = new NewReno({ smss: 1460 });
    expect([cc.cwnd, cc.ssthresh, cc.inRecovery, cc.dupAcks]).toEqual([4380, MAX_WINDOW, false, 0]);
    expect(MAX_WINDOW).toBe(1073725440);
    expect(new NewReno({ smss: 1460, initialWindow: 14600 }).cwnd).toBe(14600); // RFC 6928's IW10
  });

  it('refuses impossible options', () => {
    expect(() => new NewReno({ smss: 0 })).toThrow(RangeError);
    expect(() => new NewReno({ smss: 1.5 })).toThrow(RangeError);
    expect(() => new NewReno({ smss: S, slowStartLimit: 0 })).toThrow(RangeError);
    expect(() => new NewReno({ smss: S, initialWindow: 999 })).toThrow(RangeError);
    expect(() => new NewReno({ smss: S, initialSsthresh: 1999 })).toThrow(RangeError);
  });
});

describe('slow start and congestion avoidance (RFC 5681 3.1, RFC 3465)', () => {
  it('grows by min(N, 2*SMSS) per ACK in slow start (RFC 3465 L = 2)', () => {
    const s = new Sender(new NewReno({ smss: S }));
    s.fill(); // IW 4000: four segments out
    expect(s.ack(2 * S)).toBe(false); // a delayed ACK for two segments: +2000
    expect(s.cc.cwnd).toBe(6000);
    s.ack(S); // +1000
    expect(s.cc.cwnd).toBe(7000);
    s.send(5 * S);
    s.ack(5 * S); // a stretch ACK: capped at L = 2000
    expect(s.cc.cwnd).toBe(9000);
  });

  it('grows by min(N, SMSS) with the RFC 5681 limit', () => {
    const s = new Sender(new NewReno({ smss: S, slowStartLimit: 1 }));
    s.fill();
    s.ack(2 * S);
    expect(s.cc.cwnd).toBe(5000);
  });

  it('doubles per round trip in slow start, with an ACK per segment or per two', () => {
    for (const per of [1, 2]) {
      const s = new Sender(new NewReno({ smss: S }));
      for (let round = 0; round < 4; round++) {
        const before = s.cc.cwnd;
        s.fill();
        while (s.flight > 0) s.ack(per * S);
        expect(s.cc.cwnd).toBe(2 * before);
      }
    }
  });

  it('grows by one SMSS per window of acknowledged bytes in congestion avoidance', () => {
    const s = new Sender(new NewReno({ smss: S, initialWindow: 8000, initialSsthresh: 8000 }));
    s.fill();
    for (let i = 0; i < 7; i++) s.ack(S);
    expect(s.cc.cwnd).toBe(8000); // 7000 bytes acknowledged < cwnd
    s.ack(S);
    expect(s.cc.cwnd).toBe(9000); // 8000 reached: +SMSS, counter back to 0
    s.fill();
    for (let i = 0; i < 8; i++) s.ack(S);
    expect(s.cc.cwnd).toBe(9000);
    s.ack(S);
    expect(s.cc.cwnd).toBe(10000);
  });

  it('switches from slow start to congestion avoidance at ssthresh', () => {
    const s = new Sender(new NewReno({ smss: S, initialSsthresh: 6000 }));
    s.fill();
    s.ack(S); // 5000 < 6000: slow start
    s.ack(S); // 6000
    s.ack(S); // cwnd >= ssthresh: congestion avoidance, 1000 of 6000 counted
    expect(s.cc.cwnd).toBe(6000);
  });
});

describe('fast retransmit and fast recovery (RFC 5681 3.2, RFC 6582)', () => {
  /** A sender in congestion avoidance with cwnd 10 segments, all of them out. */
  function steady(iss = 0): Sender {
    const s = new Sender(new NewReno({ smss: S, initialWindow: 10_000, initialSsthresh: 10_000 }), iss);
    s.fill();
    expect(s.flight).toBe(10_000);
    return s;
  }

  it('retransmits on the third duplicate ACK and enters recovery', () => {
    const s = steady();
    expect(s.dup()).toBe(false);
    expect(s.dup()).toBe(false);
    expect(s.cc.cwnd).toBe(10_000); // limited transmit (RFC 3042) is the caller's, cwnd unchanged
    expect(s.dup()).toBe(true);
    // ssthresh = max(FlightSize/2, 2*SMSS) = 5000; cwnd = ssthresh + 3*SMSS = 8000.
    expect([s.cc.ssthresh, s.cc.cwnd, s.cc.inRecovery, s.cc.dupAcks]).toEqual([5000, 8000, true, DUP_ACK_THRESHOLD]);
    expect(s.dup()).toBe(false); // each further duplicate inflates by SMSS
    expect(s.dup()).toBe(false);
    expect(s.cc.cwnd).toBe(10_000);
  });

  it('deflates on partial ACKs and retransmits (NewReno), then exits on the full ACK', () => {
    const s = steady();
    for (let i = 0; i < 5; i++) s.dup(); // cwnd 8000 + 2*1000 = 10000; recover = 9999
    // Partial ACK of 2 segments: cwnd = 10000 - 2000 + 1000 = 9000, retransmit the next hole.
    expect(s.ack(2 * S)).toBe(true);
    expect([s.cc.cwnd, s.cc.inRecovery, s.cc.dupAcks]).toEqual([9000, true, 0]);
    // Partial ACK of less than one SMSS: deflate without adding back.
    expect(s.ack(500)).toBe(true);
    expect(s.cc.cwnd).toBe(8500);
    s.send(3 * S); // new data sent during recovery lies beyond recover
    // Full ACK: everything to 10000 (recover = 9999 included); 3000 still outstanding.
    // cwnd = min(ssthresh, max(FlightSize, SMSS) + SMSS) = min(5000, 4000) = 4000.
    expect(s.ack(10_000 - 2500)).toBe(false);
    expect([s.cc.cwnd, s.cc.ssthresh, s.cc.inRecovery]).toEqual([4000, 5000, false]);
  });

  it('exits to ssthresh when much is still outstanding', () => {
    const s = steady();
    for (let i = 0; i < 3; i++) s.dup();
    s.send(6 * S);
    s.ack(10_000); // full; FlightSize 6000: min(5000, 7000) = 5000
    expect(s.cc.cwnd).toBe(5000);
  });

  it('keeps cwnd at least one SMSS after large partial ACKs', () => {
    const s = new Sender(new NewReno({ smss: S, initialWindow: 100_000, initialSsthresh: 100_000 }));
    s.fill();
    for (let i = 0; i < 3; i++) s.dup(); // ssthresh 50000, cwnd 53000
    expect(s.ack(97 * S)).toBe(true); // 53000 - 97000 + 1000 < 0
    expect(s.cc.cwnd).toBe(S);
  });

  it('sets ssthresh no lower than 2*SMSS', () => {
    const s = new Sender(new NewReno({ smss: S }));
    s.send(3 * S);
    for (let i = 0; i < 3; i++) s.dup();
    expect([s.cc.ssthresh, s.cc.cwnd]).toEqual([2000, 5000]);
  });

  it('counts duplicates afresh after a new ACK', () => {
    const s = steady();
    s.dup();
    s.dup();
    s.ack(S);
    expect(s.cc.dupAcks).toBe(0);
    expect(s.dup()).toBe(false);
    expect(s.dup()).toBe(false);
    expect(s.dup()).toBe(true);
  });

  it('works across the sequence-space wrap', () => {
    const s = steady(0xffffe000); // recover lands past 2^32
    for (let i = 0; i < 3; i++) s.dup();
    expect(s.ack(4 * S)).toBe(true); // partial, across the wrap
    expect(s.ack(6 * S)).toBe(false); // full
    expect(s.cc.inRecovery).toBe(false);
  });

  it('does not start a second reduction for duplicates that do not cover recover (RFC 6582 3.2 step 2)', () => {
    const s = steady();
    s.timeout(); // recover = 9999, ssthresh 5000, cwnd 1000
    // Go-back-N: the receiver already had it all, so the first retransmission is acknowledged up
    // to SND.NXT and later ones produce duplicates of ack 10000, which covers only recover itself.
    s.una = s.nxt;
    s.send(0);
    s.cc.onAck({ ack: s.una, bytesAcked: S, flightSize: 0 });
    s.send(2 * S);
    const ssthresh = s.cc.ssthresh;
    for (let i = 0; i < 4; i++) expect(s.dup()).toBe(false);
    expect([s.cc.ssthresh, s.cc.inRecovery]).toEqual([ssthresh, false]);
    // Once an ACK covers more than recover, three duplicates start fast retransmit again.
    s.ack(S);
    s.send(4 * S);
    expect([s.dup(), s.dup(), s.dup()]).toEqual([false, false, true]);
  });

  it('also applies the recover check after a fast recovery ends exactly at recover', () => {
    const s = steady();
    for (let i = 0; i < 3; i++) s.dup();
    s.ack(10_000); // full ACK up to recover + 1; nothing beyond was sent
    s.send(5 * S);
    for (let i = 0; i < 3; i++) expect(s.dup()).toBe(false); // ack 10000 - 1 = recover: not more
    s.ack(S); // ack 11000 covers more than recover
    expect([s.dup(), s.dup(), s.dup()]).toEqual([false, false, true]);
  });
});

describe('retransmission timeout (RFC 5681 3.1, RFC 6582 3.2 step 4)', () => {
  it('halves into ssthresh, drops cwnd to one SMSS and slow-starts back', () => {
    const s = new Sender(new NewReno({ smss: S, initialWindow: 10_000, initialSsthresh: 10_000 }));
    s.fill();
    s.timeout();
    expect([s.cc.ssthresh, s.cc.cwnd]).toEqual([5000, 1000]);
    s.nxt = s.una; // go-back-N
    const seen = [];
    for (let i = 0; i < 5; i++) {
      s.send(S);
      s.ack(S);
      seen.push(s.cc.cwnd);
    }
    expect(seen).toEqual([2000, 3000, 4000, 5000, 5000]); // slow start to ssthresh, then avoidance
  });

  it('keeps ssthresh on a repeated timeout of the same data', () => {
    const s = new Sender(new NewReno({ smss: S, initialWindow: 10_000, initialSsthresh: 10_000 }));
    s.fill();
    s.timeout();
    s.timeout();
    expect([s.cc.ssthresh, s.cc.cwnd]).toEqual([5000, 1000]);
    s.ack(S); // new data acknowledged: the next timeout is a new loss
    s.timeout(); // FlightSize 9000: ssthresh 4500
    expect(s.cc.ssthresh).toBe(4500);
  });

  it('ends fast recovery', () => {
    const s = new Sender(new NewReno({ smss: S, initialWindow: 10_000, initialSsthresh: 10_000 }));
    s.fill();
    for (let i = 0; i < 3; i++) s.dup();
    s.timeout(); // FlightSize 10000 still: ssthresh 5000
    expect([s.cc.inRecovery, s.cc.cwnd, s.cc.ssthresh, s.cc.dupAcks]).toEqual([false, 1000, 5000, 0]);
  });

  it('rounds an odd FlightSize down', () => {
    const s = new Sender(new NewReno({ smss: S, initialWindow: 10_000 }));
    s.send(9999);
    s.timeout();
    expect(s.cc.ssthresh).toBe(4999);
  });
});

describe('restart after idle (RFC 5681 4.1)', () => {
  it('drops cwnd to min(IW, cwnd) after more than an RTO without sending', () => {
    const cc = new NewReno({ smss: S, initialWindow: 4000, initialSsthresh: 2 * S });
    cc.onAck({ ack: 1, bytesAcked: 4000, flightSize: 0 }); // avoidance: 4000 bytes = cwnd -> 5000
    expect(cc.cwnd).toBe(5000);
    expect(cc.restartAfterIdle(2000, 1000, 1000)).toBe(false); // exactly one RTO: not exceeded
    expect(cc.restartAfterIdle(2001, 1000, 1000)).toBe(true);
    expect(cc.cwnd).toBe(4000);
    cc.onRetransmitTimeout({ sndMax: 1, flightSize: 0 });
    cc.restartAfterIdle(10_000, 0, 1000);
    expect(cc.cwnd).toBe(1000); // already below IW
  });
});

describe('invariants under any sequence of events', () => {
  it('keeps cwnd >= SMSS and ssthresh >= 2*SMSS, and fast-retransmits only from outside recovery', () => {
    fc.assert(
      fc.property(
        fc.array(fc.oneof(fc.constant('dup' as const), fc.constant('timeout' as const), fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 8 }).map((n) => -n)), { maxLength: 200, size: 'max' }),
        fc.integer({ min: 0, max: 2 ** 32 - 1 }),
        (events, iss) => {
          const s = new Sender(new NewReno({ smss: S }), iss);
          for (const e of events) {
            if (typeof e === 'number' && e < 0) {
              s.send(-e * S);
              continue;
            }
            if (e === 'dup') {
              if (s.flight > 0) {
                const wasIn = s.cc.inRecovery;
                const fr = s.dup();
                if (fr) expect(wasIn).toBe(false);
              }
            } else if (e === 'timeout') s.timeout();
            else {
              const n = Math.min(e * S, s.flight);
              if (n > 0) s.ack(n);
            }
            expect(s.cc.cwnd).toBeGreaterThanOrEqual(S);
            expect(s.cc.ssthresh).toBeGreaterThanOrEqual(2 * S);
            expect(Number.isInteger(s.cc.cwnd)).toBe(true);
          }
        },
      ),
      { seed: 11, numRuns: 300 },
    );
  });
});

describe('NewReno with SACK-based recovery (RFC 6675 5)', () => {
  it('sets cwnd to ssthresh on entry, and neither inflates on duplicates nor deflates on partial ACKs', () => {
    const cc = new NewReno({ smss: S, sackRecovery: true, initialWindow: 20 * S });
    const dup = { ack: 0, sndMax: 20 * S, flightSize: 20 * S };
    expect(cc.onDupAck(dup)).toBe(false);
    expect(cc.onDupAck(dup)).toBe(false);
    expect(cc.onDupAck(dup)).toBe(true);
    expect(cc.ssthresh).toBe(10 * S); // FlightSize / 2
    expect(cc.cwnd).toBe(10 * S); // no + 3 * SMSS: pipe counts what left the network
    cc.onDupAck(dup);
    expect(cc.cwnd).toBe(10 * S);
    expect(cc.onAck({ ack: 5 * S, bytesAcked: 5 * S, flightSize: 15 * S })).toBe(false); // partial: the scoreboard decides
    expect(cc.cwnd).toBe(10 * S);
    expect(cc.inRecovery).toBe(true);
    cc.onAck({ ack: 20 * S, bytesAcked: 15 * S, flightSize: 0 });
    expect(cc.inRecovery).toBe(false);
  });

  it('enters on the scoreboard’s word alone, once per window, and again for a loss in the next window', () => {
    const cc = new NewReno({ smss: S, sackRecovery: true, initialWindow: 20 * S });
    expect(cc.onLossDetected({ ack: 0, sndMax: 20 * S, flightSize: 20 * S })).toBe(true);
    expect(cc.onLossDetected({ ack: 0, sndMax: 20 * S, flightSize: 20 * S })).toBe(false); // already recovering
    cc.onAck({ ack: 20 * S, bytesAcked: 20 * S, flightSize: 10 * S }); // full ACK: covers recover exactly
    // A loss of the segment right after `recover` is a new loss: SACK says later data arrived.
    expect(cc.onLossDetected({ ack: 20 * S, sndMax: 30 * S, flightSize: 10 * S })).toBe(true);
    // Without SACK, RFC 6582 waits for an ACK beyond `recover`.
    const reno = new NewReno({ smss: S, initialWindow: 20 * S });
    reno.onLossDetected({ ack: 0, sndMax: 20 * S, flightSize: 20 * S });
    reno.onAck({ ack: 20 * S, bytesAcked: 20 * S, flightSize: 10 * S });
    expect(reno.onLossDetected({ ack: 20 * S, sndMax: 30 * S, flightSize: 10 * S })).toBe(false);
  });
});
