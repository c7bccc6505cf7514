/**
 * What the bench measures and against what: each Moat figure is paired with
 * a baseline measured in the same run, and the ratio of their medians.
 */
import { dgramTransfer, portRoundTrip, sabRoundTrip } from './baselines.js';
import type { ThroughputPlan } from './measure.js';
import { nullCalls, udpTransfer, udpTransferAcrossLink, type LinkCounters } from './moat.js';
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
  /**
   * The same transfers across a perfect simulated Ethernet link of `mtu`
   * between two machines: each runs the `udp` plan of datagrams of `size`,
   * and is compared with that plan's Node dgram baseline.
   */
  link: LinkCase[];
}

export interface LinkCase {
  /** The IP MTU of both interfaces and of the link. */
  mtu: number;
  /** Datagram size: picks the `udp` plan (and its dgram baseline). */
  size: number;
}

const udp = (size: number, window: number, bytesPerRound: number, rounds: number): UdpPlan => ({
  size,
  window,
  datagrams: Math.ceil(bytesPerRound / size),
  rounds,
  ackTimeoutMs: 20,
});

// 1 KiB datagrams fit one 1500-byte frame; 8 KiB ones take 6 fragments there, and one jumbo frame at 9000.
const LINK_CASES: LinkCase[] = [
  { mtu: 1500, size: 1024 },
  { mtu: 1500, size: 8192 },
  { mtu: 9000, size: 8192 },
];

// Each measurement starts a fresh kernel worker, whose code takes some 3000 calls to be optimised:
// hence the long latency warm-up.
// A window is 64 KiB, well under the 208 KiB receive queue of Moat and of Linux: Linux charges a
// datagram's whole buffer (for 8 KiB, about 13 KiB), so 16 windows of 8 KiB already overflow it.
export const FULL: Plan = {
  passes: 3,
  latency: { warmup: 4_000, iterations: 7_000 },
  inFlight: { depth: 64, calls: 30_000, trials: 2 },
  udp: [udp(8192, 8, 8 << 20, 2), udp(1024, 64, 2 << 20, 2)],
  link: LINK_CASES,
};

export const QUICK: Plan = {
  passes: 1,
  latency: { warmup: 1_000, iterations: 2_000 },
  inFlight: { depth: 64, calls: 5_000, trials: 2 },
  udp: [udp(8192, 8, 2 << 20, 2), udp(1024, 64, 512 << 10, 2)],
  link: LINK_CASES,
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
  /** UDP across a link: what the link and the two kernels counted. */
  link?: LinkReport;
}

/**
 * Counters of a transfer across a link, summed over the passes. They cover
 * each transfer whole, warm-up round and address resolution included, while
 * `deliveredFraction` covers the measured rounds only. Keys are prefixed by
 * the machine: `sender.` or `receiver.`, then `stack.` (its stack's
 * counters), `eth0.` (its interface), `wire.` (its direction of the link:
 * the sender's carries the data, the receiver's the acknowledgements) or
 * `pool.` (its packet buffers).
 */
export interface LinkReport {
  /** IP MTU of both interfaces and of the link. */
  mtu: number;
  /** Ethernet frames per data datagram: IPv4 fragments when more than 1. */
  framesPerDatagram: number;
  /** This median over the one-machine Moat median of the same plan, same run: what crossing the link costs Moat. */
  vsOneMachine: number;
  /**
   * Every place a frame, fragment or datagram can be dropped on the way, zero
   * or not, and any other nonzero `stack.drop.*` (a frame or fragment refused)
   * or `stack.frag.lost.*` (a datagram whose held fragments were thrown away).
   */
  drops: Record<string, number>;
  /** What went through: datagrams and frames sent, fragments sent and reassembled, datagrams queued for the receiver; the kernels' internal errors and leaks (must be 0). */
  counters: Record<string, number>;
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

/** The drop counters always reported for a link figure, on both machines. */
const LINK_DROPS = [
  'wire.lost',
  'wire.tooBig',
  'wire.queueDrops',
  'wire.partitionDrops',
  'eth0.noCarrier',
  'eth0.rxQueueFull',
  'stack.tx.deviceQueueFull',
  'stack.tx.noBuffer',
  'stack.drop.arp.queueFull',
  // Fragments the reassembler refused, and datagrams whose held fragments it threw away.
  'stack.drop.frag.limitBytes',
  'stack.drop.frag.limitFragments',
  'stack.frag.lost.limitDatagrams',
  'stack.frag.lost.limitBytes',
  'stack.frag.lost.timeout',
  'stack.drop.udp.queueFull',
  'stack.drop.udp.noBuffer',
  'pool.failures',
];

const LINK_COUNTERS = {
  sender: ['stack.out.udp', 'stack.out.fragmented', 'stack.out.fragments', 'stack.tx.frames', 'wire.offered', 'wire.delivered', 'wire.bytesDelivered', 'stack.rx.frames', 'stack.in.udp'],
  receiver: ['stack.rx.frames', 'stack.in.fragment', 'stack.frag.reassembled', 'stack.in.udp', 'stack.out.udp', 'wire.offered', 'wire.delivered'],
  both: ['kernel.internalErrors', 'kernel.leaks'],
};

/** Adds one transfer's counters to those of the passes before. */
export function addCounters(into: LinkCounters | undefined, c: LinkCounters): LinkCounters {
  const add = (a: Record<string, number> = {}, b: Record<string, number>) => {
    const out = { ...a };
    for (const [k, v] of Object.entries(b)) out[k] = (out[k] ?? 0) + v;
    return out;
  };
  return { sender: add(into?.sender, c.sender), receiver: add(into?.receiver, c.receiver) };
}

/** Ethernet frames one datagram of `size` bytes takes at `mtu` (IPv4 fragments of 8-byte multiples, 20-byte headers). */
export function framesPerDatagram(size: number, mtu: number): number {
  const ipPayload = size + 8;
  return ipPayload + 20 <= mtu ? 1 : Math.ceil(ipPayload / ((mtu - 20) & ~7));
}

/** What a link figure reports: every drop counter of LINK_DROPS (zero or not), any other nonzero one, and the traffic counters. */
export function linkReport(c: LinkCase, counters: LinkCounters, vsOneMachine: number): LinkReport {
  const drops: Record<string, number> = {};
  const kept: Record<string, number> = {};
  for (const side of ['sender', 'receiver'] as const) {
    const got = counters[side];
    for (const k of LINK_DROPS) drops[`${side}.${k}`] = got[k] ?? 0;
    for (const [k, v] of Object.entries(got)) if (/^stack\.(drop|frag\.lost)\./.test(k) && v > 0) drops[`${side}.${k}`] = v;
    for (const k of [...LINK_COUNTERS[side], ...LINK_COUNTERS.both]) kept[`${side}.${k}`] = got[k] ?? 0;
  }
  return { mtu: c.mtu, framesPerDatagram: framesPerDatagram(c.size, c.mtu), vsOneMachine, drops, counters: kept };
}

const linkKey = (c: LinkCase) => `moat-link-${c.mtu}-${c.size}`;

function measurements(plan: Plan, linkCounters: Map<string, LinkCounters>): Measurement[] {
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
    ...plan.link.map((c) => ({
      key: linkKey(c),
      what: `Moat ${linkLabel(c, udpOf(plan, c))}`,
      run: async () => {
        const { rounds, counters } = await udpTransferAcrossLink(udpOf(plan, c), c.mtu);
        linkCounters.set(linkKey(c), addCounters(linkCounters.get(linkKey(c)), counters));
        return rounds;
      },
    })),
  ];
}

function udpOf(plan: Plan, c: LinkCase): UdpPlan {
  const u = plan.udp.find((u) => u.size === c.size);
  if (!u) throw new Error(`link case of ${c.size}-byte datagrams has no udp plan (and no dgram baseline) of that size`);
  return u;
}

const udpLabel = (u: UdpPlan) => `UDP ${u.size >= 1024 ? `${u.size / 1024} KiB` : `${u.size} B`}, window ${u.window}`;

function linkLabel(c: LinkCase, u: UdpPlan): string {
  const frames = framesPerDatagram(c.size, c.mtu);
  return `${udpLabel(u)}, link MTU ${c.mtu}${frames > 1 ? ` (${frames} fragments)` : ''}`;
}

/** Runs every measurement, pass after pass; `step` is told what is being measured. */
export async function measureAll(plan: Plan, step: (what: string) => void): Promise<Figure[]> {
  const pooled = new Map<string, unknown[]>();
  const linkCounters = new Map<string, LinkCounters>();
  for (let pass = 1; pass <= plan.passes; pass++) {
    for (const m of measurements(plan, linkCounters)) {
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
    ...plan.link.map((c) => {
      const u = udpOf(plan, c);
      const across = transfer(u, rounds(linkKey(c)));
      const oneMachine = transfer(u, rounds(`moat-udp-${u.size}`));
      const moat = { ...across, link: linkReport(c, linkCounters.get(linkKey(c))!, across.median / oneMachine.median) };
      return pair(`udp-link${c.mtu}-${u.size}/dgram-${u.size}`, linkLabel(c, u), moat, 'Node dgram, 127.0.0.1', transfer(u, rounds(`dgram-${u.size}`)));
    }),
  ];
  return figures;
}
