import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { seqAdd } from '../src/tcp/seq.js';
import { SackScoreboard } from '../src/tcp/sack-scoreboard.js';
import { pattern, TcpPair, transfer } from './tcp-harness.js';

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

describe('SACK scoreboard (RFC 6675 3)', () => {
  const UNA = 0xffff_f000; // near the wrap, so every comparison is modular
  const at = (n: number) => seqAdd(UNA, n);

  it('merges overlapping and adjacent blocks, and says whether anything new was SACKed', () => {
    const sb = new SackScoreboard();
    expect(sb.update([{ left: at(1000), right: at(2000) }], UNA, at(10_000))).toBe(true);
    expect(sb.update([{ left: at(1500), right: at(2000) }], UNA, at(10_000))).toBe(false);
    expect(sb.update([{ left: at(2000), right: at(3000) }], UNA, at(10_000))).toBe(true);
    expect(sb.sackedEnd(at(1000))).toBe(at(3000));
    expect(sb.sackedBytes(UNA, at(10_000))).toBe(2000);
    expect(sb.update([{ left: at(5000), right: at(6000) }, { left: at(500), right: at(5500) }], UNA, at(10_000))).toBe(true);
    expect(sb.sackedBytes(UNA, at(10_000))).toBe(5500);
    expect(sb.highestSacked).toBe(at(6000));
  });

  it('ignores blocks outside the outstanding data, as forged or stale', () => {
    const sb = new SackScoreboard();
    sb.update(
      [
        { left: at(-100), right: at(100) }, // below SND.UNA
        { left: at(9000), right: at(11_000) }, // past SND.MAX
        { left: at(300), right: at(200) }, // inside out
      ],
      UNA,
      at(10_000),
    );
    expect(sb.isEmpty).toBe(true);
    expect(sb.refusedBlocks).toBe(3);
  });

  it('forgets what SND.UNA passes, trimming a range it cuts', () => {
    const sb = new SackScoreboard();
    sb.update([{ left: at(1000), right: at(2000) }, { left: at(3000), right: at(4000) }], UNA, at(10_000));
    sb.advance(at(1500));
    expect(sb.sackedBytes(UNA, at(10_000))).toBe(1500);
    sb.advance(at(2500));
    expect(sb.sackedBytes(UNA, at(10_000))).toBe(1000);
    expect(sb.nextSacked(at(2500))).toBe(at(3000));
  });

  it('deems bytes lost below three SACKed ranges, or below more than two segments of SACKed bytes (IsLost)', () => {
    const smss = 1000;
    const sb = new SackScoreboard();
    sb.update([{ left: at(1000), right: at(2000) }], UNA, at(20_000));
    expect(sb.lossBoundary(smss)).toBeUndefined();
    sb.update([{ left: at(3000), right: at(4000) }], UNA, at(20_000));
    expect(sb.lossBoundary(smss)).toBeUndefined();
    sb.update([{ left: at(5000), right: at(6000) }], UNA, at(20_000));
    expect(sb.lossBoundary(smss)).toBe(at(1000)); // three discontiguous ranges above [0, 1000)
    const bytes = new SackScoreboard();
    bytes.update([{ left: at(4000), right: at(6001) }], UNA, at(20_000));
    expect(bytes.lossBoundary(smss)).toBe(at(4000)); // 2001 bytes > 2 * SMSS
  });

  it('estimates pipe: unSACKed bytes not lost, plus what was retransmitted', () => {
    const sb = new SackScoreboard();
    // Outstanding [0, 10000); SACKed [1000, 2000), [3000, 4000), [5000, 6000); so [0, 1000) is lost.
    sb.update([{ left: at(1000), right: at(2000) }, { left: at(3000), right: at(4000) }, { left: at(5000), right: at(6000) }], UNA, at(10_000));
    const boundary = sb.lossBoundary(1000);
    // Not lost: [1000, 10000) less 3000 SACKed = 6000. Nothing retransmitted yet.
    expect(sb.pipe(UNA, at(10_000), UNA, boundary)).toBe(6000);
    // The lost segment was retransmitted: it is in the network again.
    expect(sb.pipe(UNA, at(10_000), at(1000), boundary)).toBe(7000);
    expect(sb.pipe(UNA, at(10_000), UNA, undefined)).toBe(7000);
  });
});

describe('SACK-based loss recovery (RFC 6675)', () => {
  /**
   * Loses the first transmission of the data segments that start at these
   * offsets into the stream; returns when (virtual ms) SND.UNA first passed
   * the last of them, i.e. when every hole was repaired.
   */
  function run(sack: boolean, offsets: number[]) {
    const pair = new TcpPair({ faults: { latencyMs: 10 }, a: { sack }, b: { sack } });
    const iss = 1000; // the harness's ISS for A
    const firstSeqs = new Set(offsets.map((o) => (iss + 1 + o) >>> 0));
    const lastHoleEnd = iss + 1 + Math.max(...offsets) + 1448;
    let repairedAt: number | undefined;
    pair.lose = (seg, to) => {
      if (repairedAt === undefined && pair.a.sequence.sndUna >= lastHoleEnd) repairedAt = pair.now;
      return to === 'b' && seg.payload.length > 0 && firstSeqs.delete(seg.header.seq);
    };
    const data = pattern(400 * 1448);
    expect(sha(transfer(pair, data))).toBe(sha(data));
    return { stats: pair.a.stats, repairedAt: repairedAt! };
  }

  // Segments carry 1448 bytes (1460 less 12 of timestamps); these are the 100th, 103rd, 106th and 109th, all in one flight.
  const offsets = [100, 103, 106, 109].map((n) => n * 1448);

  it('repairs several holes in one window with one recovery and no timeout', () => {
    const { stats } = run(true, offsets);
    expect(stats.timeouts).toBe(0);
    expect(stats.fastRetransmits).toBe(1);
    expect(stats.retransmits).toBe(offsets.length); // each hole once, nothing that arrived is sent again
  });

  it('repairs them a round trip after the loss is seen, where NewReno needs a round trip per hole', () => {
    const sack = run(true, offsets);
    const reno = run(false, offsets);
    expect(reno.stats.retransmits).toBe(offsets.length);
    expect(reno.stats.timeouts).toBe(0);
    // 20 ms round trips: NewReno learns of each further hole from the partial ACK of the one before.
    expect(reno.repairedAt - sack.repairedAt).toBe((offsets.length - 1) * 20);
  });

  it('after a timeout, resends only what the peer did not SACK', () => {
    const pair = new TcpPair({ faults: { latencyMs: 10 } });
    const data = pattern(300 * 1448);
    // Lose a segment and every retransmission of it until the RTO has fired, so only the RTO repairs it.
    const hole = (1000 + 1 + 150 * 1448) >>> 0;
    let lost = 0;
    pair.lose = (seg, to) => to === 'b' && seg.header.seq === hole && seg.payload.length > 0 && pair.a.stats.timeouts === 0 && ++lost > 0;
    const got = transfer(pair, data);
    expect(sha(got)).toBe(sha(data));
    expect(pair.a.stats.timeouts).toBeGreaterThanOrEqual(1);
    // Go-back-N would resend the whole flight after the hole; stepping over the SACKed ranges resends the hole alone.
    expect(pair.a.stats.retransmits).toBeLessThanOrEqual(lost + 2);
  });
});
