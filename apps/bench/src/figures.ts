/**
 * What the bench measures and against what: each Moat figure is paired with
 * a baseline measured in the same run, and the ratio of their medians.
 */
import { dgramTransfer, portRoundTrip, sabRoundTrip } from './baselines.js';
import type { ThroughputPlan } from './measure.js';
import { nullCalls, udpTransfer } from './moat.js';
import { median, summarize } from './stats.js';
import type { RoundResult, UdpPlan } from './udp-protocol.js';

export interface Plan {
  /**
   * Every measurement runs once per pass, Moat and baselines in turn, and the
   * passes' samples are pooled: a change of load on the machine during the
   * run then weighs on both sides of a ratio alike.
   */
  passes: number;
  /** Per pass. */
  latency: { warmup: number; iterations: number };
  /** Per pass. */
  inFlight: ThroughputPlan;
  /** Rounds per pass. */
  udp: UdpPlan[];
}

const udp = (size: number, window: number, bytesPerRound: number, rounds: number): UdpPlan => ({
  size,
  window,
  datagrams: Math.ceil(bytesPerRound / size),
  rounds,
  ackTimeoutMs: 20,
});

// Each measurement starts a fresh kernel worker, whose code takes some 3000 calls to be optimised:
// hence the long latency warm-up.
// A window is 64 KiB, well under the 208 KiB receive queue of Moat and of Linux: Linux charges a
// datagram's whole buffer (for 8 KiB, about 13 KiB), so 16 windows of 8 KiB already overflow it.
export const FULL: Plan = {
  passes: 3,
  latency: { warmup: 4_000, iterations: 7_000 },
  inFlight: { depth: 64, calls: 30_000, trials: 2 },
  udp: [udp(8192, 8, 8 << 20, 2), udp(1024, 64, 2 << 20, 2)],
};

export const QUICK: Plan = {
  passes: 1,
  latency: { warmup: 1_000, iterations: 2_000 },
  inFlight: { depth: 64, calls: 5_000, trials: 2 },
  udp: [udp(8192, 8, 2 << 20, 2), udp(1024, 64, 512 << 10, 2)],
};

export interface Measure {
  /** The median: µs for latencies, per second for throughputs. */
  median: number;
  unit: 'µs' | 'calls/s' | 'messages/s' | 'MB/s';
  p99?: number;
  samples: number;
  /** UDP: median datagrams delivered per second. */
  datagramsPerSec?: number;
  /** UDP: datagrams delivered / datagrams sent, over the measured rounds. */
  deliveredFraction?: number;
  /** UDP: acknowledgements asked for again because the window's last datagram was dropped. */
  ackTimeouts?: number;
}

export interface Figure {
  id: string;
  /** What Moat does. */
  figure: string;
  moat: Measure;
  baseline: Measure & { name: string };
  /** moat.median / baseline.median. */
  ratio: number;
}

const pair = (id: string, figure: string, moat: Measure, name: string, baseline: Measure): Figure => ({
  id,
  figure,
  moat,
  baseline: { name, ...baseline },
  ratio: moat.median / baseline.median,
});

const latency = (samples: ArrayLike<number>): Measure => ({ ...summarize(samples), unit: 'µs' });

function rate(perTrial: number[], unit: Measure['unit']): Measure {
  return { median: median(perTrial), unit, samples: perTrial.length };
}

function transfer(plan: UdpPlan, rounds: RoundResult[]): Measure {
  const sum = (f: (r: RoundResult) => number) => rounds.reduce((a, r) => a + f(r), 0);
  return {
    median: median(rounds.map((r) => (r.delivered * plan.size) / r.ms / 1000)),
    unit: 'MB/s',
    samples: rounds.length,
    datagramsPerSec: median(rounds.map((r) => (r.delivered / r.ms) * 1000)),
    deliveredFraction: sum((r) => r.delivered) / sum((r) => r.sent),
    ackTimeouts: sum((r) => r.ackTimeouts),
  };
}

interface Measurement {
  key: string;
  what: string;
  /** Latency samples in µs, rates per trial, or UDP rounds. */
  run(): Promise<ArrayLike<unknown>>;
}

function measurements(plan: Plan): Measurement[] {
  const { warmup, iterations } = plan.latency;
  const flight = { mode: 'in-flight', ...plan.inFlight } as const;
  const depth = plan.inFlight.depth;
  return [
    { key: 'moat-sync', what: 'Moat null syscall, sync', run: () => nullCalls({ mode: 'sync', warmup, iterations }) },
    { key: 'moat-async', what: 'Moat null syscall, async', run: () => nullCalls({ mode: 'async', warmup, iterations }) },
    { key: 'port-sync', what: 'MessagePort, blocking', run: () => portRoundTrip({ mode: 'sync', warmup, iterations }) },
    { key: 'port-async', what: 'MessagePort, async', run: () => portRoundTrip({ mode: 'async', warmup, iterations }) },
    { key: 'sab', what: 'SAB + Atomics, blocking', run: () => sabRoundTrip(warmup, iterations) },
    { key: 'moat-flight', what: `Moat async null, ${depth} in flight`, run: () => nullCalls(flight) },
    { key: 'port-flight', what: `MessagePort, ${depth} in flight`, run: () => portRoundTrip(flight) },
    ...plan.udp.flatMap((u) => [
      { key: `moat-udp-${u.size}`, what: `Moat ${udpLabel(u)}`, run: () => udpTransfer(u) },
      { key: `dgram-${u.size}`, what: `Node dgram ${udpLabel(u)}`, run: () => dgramTransfer(u) },
    ]),
  ];
}

const udpLabel = (u: UdpPlan) => `UDP ${u.size >= 1024 ? `${u.size / 1024} KiB` : `${u.size} B`}, window ${u.window}`;

/** Runs every measurement, pass after pass; `step` is told what is being measured. */
export async function measureAll(plan: Plan, step: (what: string) => void): Promise<Figure[]> {
  const pooled = new Map<string, unknown[]>();
  for (let pass = 1; pass <= plan.passes; pass++) {
    for (const m of measurements(plan)) {
      step(`${m.what}${plan.passes > 1 ? ` (pass ${pass}/${plan.passes})` : ''}`);
      const got = Array.from(await m.run());
      pooled.set(m.key, [...(pooled.get(m.key) ?? []), ...got]);
    }
  }
  const numbers = (key: string) => pooled.get(key) as number[];
  const rounds = (key: string) => pooled.get(key) as RoundResult[];

  const sab = latency(numbers('sab'));
  const depth = plan.inFlight.depth;
  const figures = [
    pair('null-sync/port-sync', 'null syscall, sync', latency(numbers('moat-sync')), 'MessagePort, blocking', latency(numbers('port-sync'))),
    pair('null-sync/sab', 'null syscall, sync', latency(numbers('moat-sync')), 'SAB + Atomics, blocking', sab),
    pair('null-async/port-async', 'null syscall, async', latency(numbers('moat-async')), 'MessagePort, async', latency(numbers('port-async'))),
    pair('null-async/sab', 'null syscall, async', latency(numbers('moat-async')), 'SAB + Atomics, blocking', sab),
    pair(
      `null-async-${depth}/port-${depth}`,
      `async null, ${depth} in flight`,
      rate(numbers('moat-flight'), 'calls/s'),
      `MessagePort, ${depth} in flight`,
      rate(numbers('port-flight'), 'messages/s'),
    ),
    ...plan.udp.map((u) =>
      pair(`udp-${u.size}/dgram-${u.size}`, udpLabel(u), transfer(u, rounds(`moat-udp-${u.size}`)), 'Node dgram, 127.0.0.1', transfer(u, rounds(`dgram-${u.size}`))),
    ),
  ];
  return figures;
}
