import { describe, expect, it } from 'vitest';
import { Xoshiro128 } from '../src/link/rng.js';
import {
  DEFAULT_LINK_FAULTS,
  SimLinkDirection,
  validateLinkFaults,
  type LinkFaults,
  type SimLinkDelivery,
  type SimLinkStats,
} from '../src/link/sim-link.js';

function faults(overrides: Partial<LinkFaults>): LinkFaults {
  return { ...DEFAULT_LINK_FAULTS, ...overrides };
}

/** A frame whose bytes say which frame it is, so reordered or duplicated deliveries can be told apart. */
function frame(n: number, length = 100): Uint8Array {
  const f = new Uint8Array(length);
  for (let i = 0; i < length; i++) f[i] = (n * 31 + i) & 0xff;
  if (length >= 4) new DataView(f.buffer).setUint32(0, n);
  return f;
}

function bitsDiffering(a: Uint8Array, b: Uint8Array): number {
  if (a.length !== b.length) return Infinity;
  let bits = 0;
  for (let i = 0; i < a.length; i++) for (let x = a[i]! ^ b[i]!; x; x &= x - 1) bits++;
  return bits;
}

/** Every frame offered is accounted for exactly once. */
function expectBalanced(s: Readonly<SimLinkStats>): void {
  expect(s.delivered - s.duplicated + s.lost + s.partitionDrops + s.tooBig + s.queueDrops).toBe(s.offered);
}

const EVERYTHING = faults({
  latencyMs: 10,
  jitterMs: 4,
  bandwidthBitsPerSecond: 10_000_000,
  loss: 0.1,
  duplicate: 0.1,
  reorder: 0.1,
  reorderDelayMs: 7,
  corrupt: 0.1,
  partitions: [{ fromMs: 50, toMs: 60 }],
  queueLimitFrames: 5,
});

/** Sends frames of varied sizes at varied times and returns every delivery, tagged with its frame's number. */
function run(f: LinkFaults, seed: number, frames = 400): { n: number; d: SimLinkDelivery }[] {
  const link = new SimLinkDirection(f, seed, 0);
  const out: { n: number; d: SimLinkDelivery }[] = [];
  for (let n = 0; n < frames; n++) {
    for (const d of link.send(frame(n, 60 + ((n * 97) % 1400)), n * 0.25)) out.push({ n, d });
  }
  return out;
}

describe('Xoshiro128 (xoshiro128**)', () => {
  it('matches the reference C implementation from state {1, 2, 3, 4}', () => {
    const rng = Xoshiro128.fromState(1, 2, 3, 4);
    const first = Array.from({ length: 10 }, () => rng.nextUint32());
    // Output of https://prng.di.unimi.it/xoshiro128starstar.c compiled with gcc.
    expect(first).toEqual([11520, 0, 5927040, 70819200, 2031721883, 1637235492, 1287239034, 3734860849, 3729100597, 4258142804]);
  });

  it('gives unrelated sequences for neighbouring and large seeds, and floats in [0, 1)', () => {
    const seeds = [0, 1, 2, -1, 2 ** 32, 2 ** 32 + 1, Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER];
    const heads = seeds.map((s) => {
      const rng = new Xoshiro128(s);
      return [rng.nextUint32(), rng.nextUint32()].join(',');
    });
    expect(new Set(heads).size).toBe(seeds.length);
    const rng = new Xoshiro128(7);
    let sum = 0;
    for (let i = 0; i < 10_000; i++) {
      const x = rng.nextFloat();
      expect(x >= 0 && x < 1).toBe(true);
      sum += x;
    }
    expect(sum / 10_000).toBeCloseTo(0.5, 1);
  });

  it('rejects seeds that are not safe integers and the all-zero state', () => {
    expect(() => new Xoshiro128(1.5)).toThrow(RangeError);
    expect(() => new Xoshiro128(2 ** 53)).toThrow(RangeError);
    expect(() => Xoshiro128.fromState(0, 0, 0, 0)).toThrow(RangeError);
  });
});

describe('SimLinkDirection determinism', () => {
  it('replays the same deliveries for the same seed and sends, and different ones for another seed', () => {
    const a = run(EVERYTHING, 42);
    const b = run(EVERYTHING, 42);
    expect(a.length).toBeGreaterThan(100);
    expect(b).toEqual(a);
    const c = run(EVERYTHING, 43);
    expect(c).not.toEqual(a);
  });

  it('draws a fixed amount of luck per frame, so dropping some frames does not change the faults of the others', () => {
    const base = faults({ latencyMs: 5, jitterMs: 3, loss: 0.2, duplicate: 0.2, reorder: 0.2, reorderDelayMs: 4, corrupt: 0.2 });
    const cut = { ...base, mtu: 500, partitions: [{ fromMs: 20, toMs: 40 }] };
    const whole = run(base, 9);
    const partial = run(cut, 9);
    const inPartition = (n: number) => n * 0.25 >= 20 && n * 0.25 < 40;
    const tooBig = (n: number) => 60 + ((n * 97) % 1400) > 514;
    expect(partial).toEqual(whole.filter(({ n }) => !inPartition(n) && !tooBig(n)));
  });

  it('gives every delivery its own copy of the bytes', () => {
    const link = new SimLinkDirection(faults({ duplicate: 1 }), 1, 0);
    const sent = frame(1);
    const [a, b] = link.send(sent, 0);
    expect(a!.bytes).toEqual(sent);
    expect(b!.bytes).toEqual(sent);
    expect(a!.bytes).not.toBe(sent);
    expect(a!.bytes).not.toBe(b!.bytes);
    sent.fill(0);
    a!.bytes[5] = 0xee;
    expect(b!.bytes).toEqual(frame(1));
  });

  it('refuses time that goes backwards', () => {
    const link = new SimLinkDirection(DEFAULT_LINK_FAULTS, 1, 0);
    link.send(frame(1), 10);
    link.send(frame(2), 10);
    expect(() => link.send(frame(3), 9)).toThrow(/backwards/);
  });
});

describe('SimLinkDirection fault rates', () => {
  const N = 20_000;
  const f = faults({ latencyMs: 10, loss: 0.05, duplicate: 0.02, corrupt: 0.01, reorder: 0.03, reorderDelayMs: 5 });
  const link = new SimLinkDirection(f, 2024, 0);
  const sent: Uint8Array[] = [];
  const deliveries: { n: number; sentAt: number; d: SimLinkDelivery }[] = [];
  for (let n = 0; n < N; n++) {
    const fr = frame(n);
    sent.push(fr);
    for (const d of link.send(fr, n)) deliveries.push({ n, sentAt: n, d });
  }
  const s = link.stats;

  it('loses, duplicates, corrupts and reorders at the configured rates', () => {
    expect(s.offered).toBe(N);
    expect(s.lost / N).toBeGreaterThan(0.04);
    expect(s.lost / N).toBeLessThan(0.06);
    const survived = N - s.lost;
    expect(s.duplicated / survived).toBeGreaterThan(0.015);
    expect(s.duplicated / survived).toBeLessThan(0.025);
    expect(s.corrupted / s.delivered).toBeGreaterThan(0.007);
    expect(s.corrupted / s.delivered).toBeLessThan(0.013);
    expect(s.reordered / s.delivered).toBeGreaterThan(0.025);
    expect(s.reordered / s.delivered).toBeLessThan(0.035);
    expect(s.delivered).toBe(deliveries.length);
    expect(s.bytesOffered).toBe(N * 100);
    expect(s.bytesDelivered).toBe(s.delivered * 100);
    expectBalanced(s);
  });

  it('flips exactly one bit of each corrupted delivery and leaves the rest intact', () => {
    const flipped = deliveries.map(({ n, d }) => bitsDiffering(sent[n]!, d.bytes));
    expect(flipped.every((bits) => bits <= 1)).toBe(true);
    expect(flipped.filter((bits) => bits === 1).length).toBe(s.corrupted);
  });

  it('holds back exactly the reordered deliveries, and later frames overtake them', () => {
    const held = deliveries.filter(({ sentAt, d }) => d.at - sentAt === 15);
    expect(held.length).toBe(s.reordered);
    expect(deliveries.every(({ sentAt, d }) => d.at - sentAt === 10 || d.at - sentAt === 15)).toBe(true);
    const arrivalOrder = [...deliveries].sort((x, y) => x.d.at - y.d.at || x.n - y.n);
    let overtaken = 0;
    for (let i = 1; i < arrivalOrder.length; i++) if (arrivalOrder[i]!.n < arrivalOrder[i - 1]!.n) overtaken++;
    expect(overtaken).toBeGreaterThan(s.reordered * 0.9);
  });
});

describe('SimLinkDirection timing', () => {
  it('delivers after the latency plus a jitter within [0, jitterMs)', () => {
    const link = new SimLinkDirection(faults({ latencyMs: 20, jitterMs: 5 }), 3, 0);
    const delays: number[] = [];
    for (let n = 0; n < 2000; n++) for (const d of link.send(frame(n), n * 3)) delays.push(d.at - n * 3);
    expect(delays.length).toBe(2000);
    expect(Math.min(...delays)).toBeGreaterThanOrEqual(20);
    expect(Math.max(...delays)).toBeLessThan(25);
    expect(Math.min(...delays)).toBeLessThan(20.1);
    expect(Math.max(...delays)).toBeGreaterThan(24.9);
  });

  it('delivers at exactly now + latency without jitter, and at now on a perfect link', () => {
    const slow = new SimLinkDirection(faults({ latencyMs: 12.5 }), 3, 0);
    expect(slow.send(frame(1), 100).map((d) => d.at)).toEqual([112.5]);
    const perfect = new SimLinkDirection(DEFAULT_LINK_FAULTS, 3, 0);
    expect(perfect.send(frame(1), 100)).toEqual([{ at: 100, bytes: frame(1) }]);
  });

  it('serialises frames at the bandwidth: 1250-byte frames at 1 Mbit/s come out 10 ms apart', () => {
    const link = new SimLinkDirection(faults({ bandwidthBitsPerSecond: 1_000_000, latencyMs: 3 }), 5, 0);
    const at = [0, 0, 0, 0, 0].flatMap((now, n) => link.send(frame(n, 1250), now).map((d) => d.at));
    expect(at).toEqual([13, 23, 33, 43, 53]);
    // A frame sent while the wire is busy waits for it; one sent after it is idle does not.
    expect(link.send(frame(5, 1250), 45).map((d) => d.at)).toEqual([63]);
    expect(link.send(frame(6, 1250), 200).map((d) => d.at)).toEqual([213]);
    // Smaller frames take proportionally less time.
    expect(link.send(frame(7, 125), 300).map((d) => d.at)).toEqual([304]);
  });

  it('still spends wire time on frames lost in flight', () => {
    // With no room to queue, a frame offered while the lost one is on the wire is dropped.
    const link = new SimLinkDirection(faults({ bandwidthBitsPerSecond: 1_000_000, loss: 1, queueLimitFrames: 0 }), 5, 0);
    expect(link.send(frame(1, 1250), 0)).toEqual([]);
    expect(link.send(frame(2, 1250), 5)).toEqual([]);
    expect(link.send(frame(3, 1250), 10)).toEqual([]);
    expect(link.stats).toMatchObject({ lost: 2, queueDrops: 1 });
  });
});

describe('SimLinkDirection partitions', () => {
  it('drops exactly the frames offered inside the windows, relative to the start', () => {
    const startedAt = 1000;
    const link = new SimLinkDirection(
      faults({ partitions: [{ fromMs: 100, toMs: 200 }, { fromMs: 300, toMs: 350 }] }),
      11,
      startedAt,
    );
    const inside = (t: number) => (t >= 100 && t < 200) || (t >= 300 && t < 350);
    for (let t = 0; t < 500; t++) {
      const now = startedAt + t;
      expect(link.partitioned(now)).toBe(inside(t));
      expect(link.send(frame(t), now).length).toBe(inside(t) ? 0 : 1);
    }
    expect(link.stats).toMatchObject({ offered: 500, delivered: 350, partitionDrops: 150 });
    expect(link.partitioned(startedAt + 99.999)).toBe(false);
    expect(link.partitioned(startedAt + 199.999)).toBe(true);
  });

  it('accepts a partition that never heals', () => {
    const link = new SimLinkDirection(faults({ partitions: [{ fromMs: 10, toMs: Infinity }] }), 1, 0);
    expect(link.send(frame(1), 9)).toHaveLength(1);
    expect(link.send(frame(2), 1e12)).toHaveLength(0);
  });

  it('is not changed by later edits to the caller’s configuration', () => {
    const config = faults({ partitions: [{ fromMs: 0, toMs: 10 }] });
    const link = new SimLinkDirection(config, 1, 0);
    (config.partitions as { fromMs: number; toMs: number }[]).length = 0;
    config.loss = 1;
    expect(link.send(frame(1), 5)).toHaveLength(0);
    expect(link.send(frame(1), 10)).toHaveLength(1);
  });
});

describe('SimLinkDirection drops', () => {
  it('drops frames longer than the MTU plus the 14-byte Ethernet header as tooBig', () => {
    const link = new SimLinkDirection(DEFAULT_LINK_FAULTS, 1, 0);
    expect(link.send(new Uint8Array(1514), 0)).toHaveLength(1);
    expect(link.send(new Uint8Array(1515), 0)).toHaveLength(0);
    const small = new SimLinkDirection(faults({ mtu: 576 }), 1, 0);
    expect(small.send(new Uint8Array(590), 0)).toHaveLength(1);
    expect(small.send(new Uint8Array(591), 0)).toHaveLength(0);
    expect(link.stats).toMatchObject({ offered: 2, delivered: 1, tooBig: 1, bytesOffered: 3029, bytesDelivered: 1514 });
  });

  it('tail-drops frames beyond queueLimitFrames waiting for the wire', () => {
    const link = new SimLinkDirection(faults({ bandwidthBitsPerSecond: 1_000_000, queueLimitFrames: 3 }), 1, 0);
    // The first frame goes straight onto the wire; three wait; the rest are dropped.
    const first = Array.from({ length: 10 }, (_, n) => link.send(frame(n, 1250), 0).map((d) => d.at));
    expect(first).toEqual([[10], [20], [30], [40], [], [], [], [], [], []]);
    expect(link.stats).toMatchObject({ delivered: 4, queueDrops: 6 });
    // By 20 ms the frames due to start at 10 and 20 have left the queue: room for two more.
    const later = Array.from({ length: 3 }, (_, n) => link.send(frame(n, 1250), 20).map((d) => d.at));
    expect(later).toEqual([[50], [60], []]);
    expectBalanced(link.stats);
  });

  it('with queueLimitFrames 0 sends only when the wire is idle', () => {
    const link = new SimLinkDirection(faults({ bandwidthBitsPerSecond: 1_000_000, queueLimitFrames: 0 }), 1, 0);
    expect(link.send(frame(1, 1250), 0)).toHaveLength(1);
    expect(link.send(frame(2, 1250), 9.5)).toHaveLength(0);
    expect(link.send(frame(3, 1250), 10)).toHaveLength(1);
  });

  it('never queues on a link of unlimited bandwidth', () => {
    const link = new SimLinkDirection(faults({ queueLimitFrames: 0 }), 1, 0);
    for (let n = 0; n < 100; n++) expect(link.send(frame(n), 0)).toHaveLength(1);
  });
});

describe('validateLinkFaults', () => {
  it('accepts the default and a fully faulty link', () => {
    expect(validateLinkFaults(DEFAULT_LINK_FAULTS)).toEqual([]);
    expect(validateLinkFaults(EVERYTHING)).toEqual([]);
    expect(validateLinkFaults(faults({ loss: 1, mtu: 68, partitions: [{ fromMs: 0, toMs: Infinity }] }))).toEqual([]);
  });

  it.each<[Partial<LinkFaults>, string]>([
    [{ loss: 1.5 }, 'loss must be between 0 and 1, got 1.5'],
    [{ duplicate: -0.1 }, 'duplicate must be between 0 and 1, got -0.1'],
    [{ reorder: NaN }, 'reorder must be a number, got NaN'],
    [{ corrupt: '0.1' as unknown as number }, 'corrupt must be a number, got "0.1"'],
    [{ mtu: 40 }, 'mtu must be an integer between 68 and 65535, got 40'],
    [{ mtu: 1500.5 }, 'mtu must be an integer between 68 and 65535, got 1500.5'],
    [{ latencyMs: -1 }, 'latencyMs must be a finite number >= 0, got -1'],
    [{ jitterMs: Infinity }, 'jitterMs must be a finite number >= 0, got Infinity'],
    [{ bandwidthBitsPerSecond: undefined as unknown as number }, 'bandwidthBitsPerSecond must be a number, got undefined'],
    [{ reorderDelayMs: -5 }, 'reorderDelayMs must be a finite number >= 0, got -5'],
    [{ queueLimitFrames: 2.5 }, 'queueLimitFrames must be an integer >= 0, got 2.5'],
    [{ partitions: [{ fromMs: 10, toMs: 5 }] }, 'partitions[0].toMs must be greater than fromMs (10), got 5'],
    [{ partitions: [{ fromMs: 0, toMs: 1 }, { fromMs: -1, toMs: 5 }] }, 'partitions[1].fromMs must be a finite number >= 0, got -1'],
    [{ partitions: [null as never] }, 'partitions[0] must be { fromMs, toMs }, got null'],
    [{ partitions: {} as never }, 'partitions must be an array of { fromMs, toMs }, got {}'],
  ])('reports %j', (overrides, message) => {
    expect(validateLinkFaults(faults(overrides))).toEqual([message]);
  });

  it('reports every problem, and the constructor throws them all', () => {
    const bad = faults({ loss: 2, mtu: 0 });
    expect(validateLinkFaults(bad)).toHaveLength(2);
    expect(() => new SimLinkDirection(bad, 1, 0)).toThrow(
      'invalid link faults: mtu must be an integer between 68 and 65535, got 0; loss must be between 0 and 1, got 2',
    );
  });
});
