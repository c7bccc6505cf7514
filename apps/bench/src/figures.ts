/**
 * What the bench measures and against what: each Moat figure is paired with
 * a baseline measured in the same run, and the ratio of their medians.
 */
import { bareWorkers, dgramTransfer, netBulk, netConnections, netIdleConnections, portRoundTrip, portTogether, sabRoundTrip, type IdleConnectionsRun, type StartupRun } from './baselines.js';
import { campaign, sequentialSeeds, type CampaignResult } from './campaign.js';
import { aggregateRate, type ThroughputPlan } from './measure.js';
import { growthPer, MemoryProbe, type MemoryReading } from './memory.js';
import {
  kernelAtScale,
  nullCalls,
  nullCallsTogether,
  tcpBulk,
  tcpBulkAcrossLink,
  tcpConnections,
  udpTransfer,
  udpTransferAcrossLink,
  type LinkCounters,
  type ScalePlan,
  type ScaleResult,
} from './moat.js';
import { median, summarize } from './stats.js';
import { acceptedConnections, bulkConnections, freshMachine, timed, type ConnectResult, type TcpBulkPlan, type TcpConnectPlan, type TransferResult } from './tcp-protocol.js';
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
  /**
   * Per pass: `domains` domains on one kernel, each keeping `depth` calls in
   * flight, started together; against as many workers, each on its own
   * MessagePort to one echo thread. `calls` per domain per trial.
   */
  together: { domains: number } & ThroughputPlan;
  /** Rounds per pass. */
  udp: UdpPlan[];
  /**
   * The same transfers across a perfect simulated Ethernet link of `mtu`
   * between two machines: each runs the `udp` plan of datagrams of `size`,
   * and is compared with that plan's Node dgram baseline.
   */
  link: LinkCase[];
  tcp: TcpPlans;
  /**
   * Once per run, after the passes: one kernel taken to many domains and
   * connections, against bare workers and Node net sockets (see ScalePlan).
   */
  scale: ScalePlan;
  /** Once per run: `seeds` seeds of the campaign scenario with each number of `jobs`, and the same seeds in the main thread. */
  campaign: { seeds: number; jobs: number[] };
}

export interface TcpPlans {
  /** Bulk transfers on one machine, each one connection (Node's `net` makes the same ones). */
  bulk: TcpBulkPlan;
  /** Bulk transfers across the perfect simulated link of `linkMtu` (smaller: the link is slower). */
  linkBulk: TcpBulkPlan;
  /** IP MTU of that link. */
  linkMtu: number;
  /** Connection setup, one connection after another, on one machine. */
  connect: TcpConnectPlan;
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
// TCP: on one machine each timed transfer is one connection of 256 MiB in 64 KiB writes, after twelve
// warm-up connections of 128 MiB (1.5 GiB) on the same fresh machine: the kernel is JavaScript, and its
// CPU per MiB falls for about the first GiB while V8 compiles the code of three threads on two cores
// (docs/performance.md, "Ninth round"); after four it was still 1.3-2x the steady state. The first
// warm-up transfer is a figure of its own (a fresh machine's). Across the link, 32 MiB after 4 MiB. Connections come 500 in a row
// after 20 untimed ones.
// At scale: the start-up and memory of 64 domains spawned one after another (the last 20 of them hold
// the connections: a domain holds at most 1024 handles, so 10,000 connections take 10 pairs). The
// loaded figure is a ratio of p99s, so each series has 6,000 samples (the 60th slowest is its p99), in
// blocks that alternate with the same program's alone on a kernel of its own.
export const FULL: Plan = {
  passes: 3,
  latency: { warmup: 4_000, iterations: 7_000 },
  inFlight: { depth: 64, calls: 30_000, trials: 2 },
  together: { domains: 8, depth: 64, calls: 4_000, trials: 2 },
  udp: [udp(8192, 8, 8 << 20, 2), udp(1024, 64, 2 << 20, 2)],
  link: LINK_CASES,
  tcp: {
    bulk: { bytes: 256 << 20, writeSize: 64 << 10, warmupBytes: 128 << 20, warmupTransfers: 12, transfers: 3 },
    linkBulk: { bytes: 32 << 20, writeSize: 64 << 10, warmupBytes: 4 << 20, warmupTransfers: 1, transfers: 1 },
    linkMtu: 1500,
    connect: { connections: 500, warmup: 20, block: 100 },
  },
  scale: {
    domainMarks: [1, 8, 32, 64],
    pairs: 10,
    connectionsPerPair: 1_000,
    depth: 64,
    probe: { warmup: 4_000, blockWarmup: 200, iterations: 1_000, blocks: 6 },
  },
  campaign: { seeds: 8, jobs: [1, 2] },
};

export const QUICK: Plan = {
  passes: 1,
  latency: { warmup: 1_000, iterations: 2_000 },
  inFlight: { depth: 64, calls: 5_000, trials: 2 },
  together: { domains: 2, depth: 64, calls: 1_000, trials: 1 },
  udp: [udp(8192, 8, 2 << 20, 2), udp(1024, 64, 512 << 10, 2)],
  link: LINK_CASES,
  tcp: {
    bulk: { bytes: 4 << 20, writeSize: 64 << 10, warmupBytes: 1 << 20, warmupTransfers: 1, transfers: 1 },
    linkBulk: { bytes: 4 << 20, writeSize: 64 << 10, warmupBytes: 1 << 20, warmupTransfers: 1, transfers: 1 },
    linkMtu: 1500,
    connect: { connections: 100, warmup: 20, block: 50 },
  },
  scale: {
    domainMarks: [1, 2],
    pairs: 1,
    connectionsPerPair: 100,
    depth: 64,
    probe: { warmup: 1_000, blockWarmup: 100, iterations: 250, blocks: 2 },
  },
  campaign: { seeds: 1, jobs: [1, 2] },
};

export interface Measure {
  /** The median: µs or ms for latencies, per second for throughputs, KiB or MiB per unit for memory. */
  median: number;
  unit: 'µs' | 'ms' | 'calls/s' | 'messages/s' | 'MB/s' | 'connections/s' | 'scenarios/s' | 'KiB' | 'MiB';
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
  /** Moat's TCP figures: the run and what the kernels counted. */
  tcp?: TcpReport;
  /** Bulk TCP, either side: MB/s of every transfer, warm-up ones first, one array per pass (where the warm-up ends shows). */
  transfers?: number[][];
  /** Memory figures: how the growth was read. */
  memory?: MemoryReport;
  /** Campaign figures: the run. */
  campaign?: CampaignResult;
}

/** Growth of memory per domain, worker or connection between two readings (memory.ts). */
export interface MemoryReport {
  /** What the growth is divided by: domains, workers or connections. */
  count: number;
  /** Growth of the whole process's rss (for Node's connections, plus its client process's), bytes per unit. */
  rssBytes: number;
  /** Moat: growth of the kernel worker's heap in use plus its external memory, bytes per unit. */
  kernelBytes?: number;
  /** Whether every thread collected its garbage before each reading (false without the inspector: plain rss). */
  collected: boolean;
  /** Connections: milliseconds to open those added since the previous reading (Moat's 10,000: the 9 later pairs at once, the slowest one's time). */
  openMs?: number;
}

/**
 * What the kernels counted during a Moat TCP figure, summed over the passes
 * (whole runs: warm-up transfers or connections and the handshakes
 * included). Keys are prefixed by the machine: `machine.` on one machine,
 * `sender.` (the source's) and `receiver.` (the sink's) across a link.
 */
export interface TcpReport {
  /** Bulk: bytes per timed transfer, and per write (the sink reads up to as much per recv). */
  bytes?: number;
  writeSize?: number;
  /** Across a link: its IP MTU, and this median over the one-machine Moat median of the same run. */
  mtu?: number;
  vsOneMachine?: number;
  /** Connections: connections/s of each block of `block` timed connections, in order, one array per pass. */
  blockRates?: number[][];
  /** Where a frame or segment could be dropped, zero or not, and any other nonzero `stack.drop.*`. */
  drops: Record<string, number>;
  /** TCP segments in and out, SYNs, RSTs, frames; the kernels' internal errors and leaks (must be 0). */
  counters: Record<string, number>;
  /**
   * Ratios of those counters: across a link `segmentsPerAck` (data segments
   * the source sent per segment the sink sent back); for connections
   * `segmentsPerConnection` (7 when every handshake and close is clean:
   * SYN, SYN-ACK, ACK, FIN, ACK, FIN, ACK).
   */
  derived: Record<string, number>;
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
  /** moat.median / baseline.median, or moat.p99 / baseline.p99 when `ratioOf` is 'p99'. */
  ratio: number;
  ratioOf?: 'p99';
}

const pair = (id: string, figure: string, moat: Measure, name: string, baseline: Measure, ratioOf?: 'p99'): Figure => ({
  id,
  figure,
  moat,
  baseline: { name, ...baseline },
  ratio: ratioOf === 'p99' ? moat.p99! / baseline.p99! : moat.median / baseline.median,
  ...(ratioOf ? { ratioOf } : {}),
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
  all: ['kernel.internalErrors', 'kernel.leaks'],
};

/** Counters by machine (`sender`, `receiver`, or `machine`), each as a flat record. */
export type SideCounters = Record<string, Record<string, number>>;

/** Adds one run's counters to those of the passes before. */
export function addCounters<C extends SideCounters>(into: C | undefined, c: C): C {
  const out: SideCounters = {};
  for (const [side, counters] of Object.entries(c)) {
    const sum = { ...into?.[side] };
    for (const [k, v] of Object.entries(counters)) sum[k] = (sum[k] ?? 0) + v;
    out[side] = sum;
  }
  return out as C;
}

/**
 * The drop counters `always` of every machine (zero or not) and any other
 * nonzero `stack.drop.*` or `stack.frag.lost.*`, and the counters `keep`
 * names per machine (`all` for every machine), all prefixed by the machine.
 */
export function counterReport(
  counters: SideCounters,
  always: readonly string[],
  keep: Record<string, readonly string[]>,
): { drops: Record<string, number>; counters: Record<string, number> } {
  const drops: Record<string, number> = {};
  const kept: Record<string, number> = {};
  for (const [side, got] of Object.entries(counters)) {
    for (const k of always) drops[`${side}.${k}`] = got[k] ?? 0;
    for (const [k, v] of Object.entries(got)) if (/^stack\.(drop|frag\.lost)\./.test(k) && v > 0) drops[`${side}.${k}`] = v;
    for (const k of [...(keep[side] ?? []), ...(keep.all ?? [])]) kept[`${side}.${k}`] = got[k] ?? 0;
  }
  return { drops, counters: kept };
}

/** Ethernet frames one datagram of `size` bytes takes at `mtu` (IPv4 fragments of 8-byte multiples, 20-byte headers). */
export function framesPerDatagram(size: number, mtu: number): number {
  const ipPayload = size + 8;
  return ipPayload + 20 <= mtu ? 1 : Math.ceil(ipPayload / ((mtu - 20) & ~7));
}

/** What a link figure reports: every drop counter of LINK_DROPS (zero or not), any other nonzero one, and the traffic counters. */
export function linkReport(c: LinkCase, counters: LinkCounters, vsOneMachine: number): LinkReport {
  const { drops, counters: kept } = counterReport({ sender: counters.sender, receiver: counters.receiver }, LINK_DROPS, LINK_COUNTERS);
  return { mtu: c.mtu, framesPerDatagram: framesPerDatagram(c.size, c.mtu), vsOneMachine, drops, counters: kept };
}

/** Where a TCP run on one machine could drop: the loopback queue, buffers. */
const TCP_DROPS_ONE = ['stack.tx.deviceQueueFull', 'stack.tx.noBuffer', 'pool.failures'];
/** Across a link, also the wire, the interfaces and address resolution. */
const TCP_DROPS_LINK = [
  'wire.lost',
  'wire.tooBig',
  'wire.queueDrops',
  'wire.partitionDrops',
  'eth0.noCarrier',
  'eth0.rxQueueFull',
  'stack.drop.arp.queueFull',
  ...TCP_DROPS_ONE,
];
const TCP_ERRORS = ['kernel.internalErrors', 'kernel.leaks'];
const TCP_COUNTERS_ONE = { machine: ['stack.in.tcpSyn', 'stack.in.tcp', 'stack.out.tcp', 'stack.out.tcpRst', 'stack.tx.frames'], all: TCP_ERRORS };
const TCP_COUNTERS_LINK = {
  sender: ['stack.out.tcp', 'stack.in.tcp', 'stack.out.tcpRst', 'stack.tx.frames', 'stack.rx.frames', 'wire.offered', 'wire.delivered', 'wire.bytesDelivered'],
  receiver: ['stack.in.tcpSyn', 'stack.in.tcp', 'stack.out.tcp', 'stack.out.tcpRst', 'wire.delivered'],
  all: TCP_ERRORS,
};

/** The report of a bulk TCP figure; across a link when `mtu` is given. */
export function tcpBulkReport(plan: TcpBulkPlan, counters: SideCounters, link?: { mtu: number; vsOneMachine: number }): TcpReport {
  const r = counterReport(counters, link ? TCP_DROPS_LINK : TCP_DROPS_ONE, link ? TCP_COUNTERS_LINK : TCP_COUNTERS_ONE);
  // On one machine one stack counts both directions, so data and ACK segments cannot be told apart.
  const derived: Record<string, number> = link ? { segmentsPerAck: (counters.sender?.['stack.out.tcp'] ?? 0) / (counters.receiver?.['stack.out.tcp'] ?? NaN) } : {};
  return { bytes: plan.bytes, writeSize: plan.writeSize, ...link, ...r, derived };
}

/** The report of the connection figure: `connections` made in all, warm-up included, over the passes. */
export function tcpConnectReport(counters: SideCounters, connections: number, blockRates: number[][]): TcpReport {
  const r = counterReport(counters, TCP_DROPS_ONE, TCP_COUNTERS_ONE);
  return { blockRates, ...r, derived: { segmentsPerConnection: (counters.machine?.['stack.out.tcp'] ?? 0) / connections } };
}

const linkKey = (c: LinkCase) => `moat-link-${c.mtu}-${c.size}`;

function measurements(plan: Plan, counters: Map<string, SideCounters>): Measurement[] {
  /** Runs `run` and adds the counters it reports to those of the passes before, under `key`. */
  const counted =
    <T>(key: string, run: () => Promise<{ counters: SideCounters } & T>) =>
    async (): Promise<T> => {
      const got = await run();
      counters.set(key, addCounters(counters.get(key), got.counters));
      return got;
    };
  const { bulk, linkBulk, connect, linkMtu } = plan.tcp;
  const { warmup, iterations } = plan.latency;
  const flight = { mode: 'in-flight', ...plan.inFlight } as const;
  const depth = plan.inFlight.depth;
  const { together } = plan;
  return [
    { key: 'moat-sync', what: 'Moat null syscall, sync', run: () => nullCalls({ mode: 'sync', warmup, iterations }) },
    { key: 'moat-async', what: 'Moat null syscall, async', run: () => nullCalls({ mode: 'async', warmup, iterations }) },
    { key: 'port-sync', what: 'MessagePort, blocking', run: () => portRoundTrip({ mode: 'sync', warmup, iterations }) },
    { key: 'port-async', what: 'MessagePort, async', run: () => portRoundTrip({ mode: 'async', warmup, iterations }) },
    { key: 'sab', what: 'SAB + Atomics, blocking', run: () => sabRoundTrip(warmup, iterations) },
    { key: 'moat-flight', what: `Moat async null, ${depth} in flight`, run: () => nullCalls(flight) },
    { key: 'port-flight', what: `MessagePort, ${depth} in flight`, run: () => portRoundTrip(flight) },
    { key: 'moat-together', what: `Moat ${togetherLabel(plan)}`, run: async () => (await nullCallsTogether(together.domains, together)).map(aggregateRate) },
    { key: 'port-together', what: portTogetherLabel(plan), run: async () => (await portTogether(together.domains, together)).map(aggregateRate) },
    ...plan.udp.flatMap((u) => [
      { key: `moat-udp-${u.size}`, what: `Moat ${udpLabel(u)}`, run: () => udpTransfer(u) },
      { key: `dgram-${u.size}`, what: `Node dgram ${udpLabel(u)}`, run: () => dgramTransfer(u) },
    ]),
    ...plan.link.map((c) => ({
      key: linkKey(c),
      what: `Moat ${linkLabel(c, udpOf(plan, c))}`,
      run: async () => (await counted(linkKey(c), () => udpTransferAcrossLink(udpOf(plan, c), c.mtu))()).rounds,
    })),
    { key: 'moat-tcp', what: `Moat ${tcpBulkLabel(bulk)}`, run: async () => (await counted('moat-tcp', () => tcpBulk(bulk))()).transfers },
    { key: 'net-tcp', what: `Node net ${tcpBulkLabel(bulk)}`, run: () => netBulk(bulk) },
    {
      key: 'moat-tcp-link',
      what: `Moat ${tcpBulkLabel(linkBulk)}, link MTU ${linkMtu}`,
      run: async () => (await counted('moat-tcp-link', () => tcpBulkAcrossLink(linkBulk, linkMtu))()).transfers,
    },
    {
      key: 'moat-tcp-connect',
      what: `Moat ${tcpConnectLabel(connect)}`,
      run: async () => [(await counted('moat-tcp-connect', () => tcpConnections(connect))()).result],
    },
    { key: 'net-tcp-connect', what: `Node net ${tcpConnectLabel(connect)}`, run: async () => [await netConnections(connect)] },
  ];
}

const togetherLabel = (p: Plan) => `async null, ${p.together.domains} domains × ${p.together.depth} in flight`;
const portTogetherLabel = (p: Plan) => `MessagePort, ${p.together.domains} workers × ${p.together.depth} in flight, one echo thread`;

const sizeLabel = (bytes: number) => (bytes >= 1 << 20 ? `${bytes / (1 << 20)} MiB` : `${bytes / 1024} KiB`);
const tcpBulkLabel = (b: TcpBulkPlan) =>
  `TCP bulk, ${sizeLabel(b.bytes)} in ${sizeLabel(b.writeSize)} writes after ${b.warmupTransfers > 1 ? `${b.warmupTransfers} × ` : ''}${sizeLabel(b.warmupBytes)}`;
const tcpFreshLabel = (b: TcpBulkPlan) => `TCP bulk, the first ${sizeLabel(b.warmupBytes)} of a fresh machine in ${sizeLabel(b.writeSize)} writes`;
const tcpConnectLabel = (c: TcpConnectPlan) => `TCP connect+accept+close, ${c.connections} in a row`;

/** MB/s (10^6 bytes) of a transfer, connect to the last byte read. */
const mbPerSec = (t: TransferResult) => t.bytes / t.ms / 1000;

/** The median MB/s of the transfers given. */
function bulk(transfers: TransferResult[]): Measure {
  return { median: median(transfers.map(mbPerSec)), unit: 'MB/s', samples: transfers.length };
}

/** MB/s of every transfer of a run (its passes' results one after another, `perPass` each), one array per pass. */
export function ratesByPass(all: TransferResult[], perPass: number): number[][] {
  const passes: number[][] = [];
  for (let i = 0; i < all.length; i += perPass) passes.push(all.slice(i, i + perPass).map((t) => Math.round(mbPerSec(t))));
  return passes;
}

/** Connections per second of each pass's run of connections. */
function connections(results: ConnectResult[]): Measure {
  return { median: median(results.map((r) => r.connections / (r.ms / 1000))), unit: 'connections/s', samples: results.length };
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

/** What a run measured: the figures, the targets of issue 6 judged on them, and the scale runs' raw readings. */
export interface Measured {
  figures: Figure[];
  targets: Target[];
  scale: ScaleRaw;
}

/** The once-per-run measurements, as they came (the JSON keeps them, so a later run can be compared reading by reading). */
export interface ScaleRaw {
  moat: Omit<ScaleResult, 'probe'>;
  bareWorkers: StartupRun;
  netIdle: IdleConnectionsRun;
  campaign: CampaignResult[];
  /** Whether every memory reading collected every thread's garbage first (the inspector was available). */
  collected: boolean;
}

/** Runs every measurement, pass after pass, then the once-per-run ones; `step` is told what is being measured. */
export async function measureAll(plan: Plan, step: (what: string) => void): Promise<Measured> {
  const pooled = new Map<string, unknown[]>();
  const counters = new Map<string, SideCounters>();
  for (let pass = 1; pass <= plan.passes; pass++) {
    for (const m of measurements(plan, counters)) {
      step(`${m.what}${plan.passes > 1 ? ` (pass ${pass}/${plan.passes})` : ''}`);
      const got = Array.from(await m.run());
      pooled.set(m.key, [...(pooled.get(m.key) ?? []), ...got]);
    }
  }
  const scale = await measureScale(plan, step);

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
    pair(
      `null-async-${plan.together.depth}x${plan.together.domains}/port-${plan.together.depth}x${plan.together.domains}`,
      togetherLabel(plan),
      rate(numbers('moat-together'), 'calls/s'),
      portTogetherLabel(plan),
      rate(numbers('port-together'), 'messages/s'),
    ),
    ...plan.udp.map((u) =>
      pair(`udp-${u.size}/dgram-${u.size}`, udpLabel(u), transfer(u, rounds(`moat-udp-${u.size}`)), 'Node dgram, 127.0.0.1', transfer(u, rounds(`dgram-${u.size}`))),
    ),
    ...plan.link.map((c) => {
      const u = udpOf(plan, c);
      const across = transfer(u, rounds(linkKey(c)));
      const oneMachine = transfer(u, rounds(`moat-udp-${u.size}`));
      const moat = { ...across, link: linkReport(c, counters.get(linkKey(c)) as LinkCounters, across.median / oneMachine.median) };
      return pair(`udp-link${c.mtu}-${u.size}/dgram-${u.size}`, linkLabel(c, u), moat, 'Node dgram, 127.0.0.1', transfer(u, rounds(`dgram-${u.size}`)));
    }),
    ...tcpFigures(plan, pooled, counters),
    ...scale.figures,
  ];
  return { figures, targets: judgeTargets(figures, plan), scale: scale.raw };
}

/** The once-per-run measurements: Moat's kernel at scale, then its baselines, then the campaigns. */
async function measureScale(plan: Plan, step: (what: string) => void): Promise<{ figures: Figure[]; raw: ScaleRaw }> {
  const s = plan.scale;
  const total = Math.max(...s.domainMarks);
  const counts = [s.connectionsPerPair, ...(s.pairs > 1 ? [s.pairs * s.connectionsPerPair] : [])];
  const memory = MemoryProbe.open();
  let moat: ScaleResult, bare: StartupRun, net: IdleConnectionsRun;
  try {
    step(`Moat kernel at scale: a probe (and one alone on another kernel), ${total} domains one after another, ${counts.join(' then ')} idle connections (once)`);
    moat = await kernelAtScale(s, memory, (what) => step(`  Moat kernel at scale: ${what}`));
    step(`bare workers, ${total} one after another (once)`);
    bare = await bareWorkers(s.domainMarks, memory);
    step(`Node net, ${counts.join(' then ')} idle connections (once)`);
    net = await netIdleConnections(counts, s.depth, memory);
  } finally {
    memory.close();
  }
  const { seeds, jobs } = plan.campaign;
  step(`campaign scenario, ${seeds} seeds in the main thread (once)`);
  const sequential = await sequentialSeeds(seeds);
  const campaigns: CampaignResult[] = [];
  for (const j of jobs) {
    step(`campaign scenario, ${seeds} seeds, ${j} job${j === 1 ? '' : 's'} (once)`);
    campaigns.push(await campaign(seeds, j));
  }
  const { probe, ...moatRaw } = moat;
  const collected = [...moat.readings, ...moat.connections, ...bare.readings, ...net.readings].every((r) => r.reading.collected);
  return {
    figures: [...scaleFigures(plan, moat, bare, net), ...campaignFigures(sequential, campaigns)],
    raw: { moat: moatRaw, bareWorkers: bare, netIdle: net, campaign: [sequential, ...campaigns], collected },
  };
}

const kib = (bytes: number) => bytes / 1024;
const mib = (bytes: number) => bytes / (1024 * 1024);
const thousands = (n: number) => n.toLocaleString('en-US');

/** A memory figure: growth per unit from `before` to `after`, in KiB or MiB. */
function memoryMeasure(before: MemoryReading, after: MemoryReading, count: number, unit: 'KiB' | 'MiB', openMs?: number): Measure {
  const g = growthPer(before, after, count);
  const scaleOf = unit === 'KiB' ? kib : mib;
  return {
    median: scaleOf(g.rssBytes),
    unit,
    samples: 1,
    memory: { count, ...g, collected: before.collected && after.collected, ...(openMs === undefined ? {} : { openMs }) },
  };
}

/** Start-up samples (ms) of the threads started from the one after the previous mark up to this one. */
export function startupBracket(startups: number[], marks: number[], mark: number): number[] {
  const previous = Math.max(0, ...marks.filter((m) => m < mark));
  return startups.slice(previous, mark);
}

const bracketLabel = (marks: number[], mark: number, what: string) => {
  const previous = Math.max(0, ...marks.filter((m) => m < mark));
  return previous + 1 === mark ? `${what} ${mark}` : `${what}s ${previous + 1}-${mark}`;
};

/** The scale figures: connections' memory, each mark's start-up and memory, and the probe loaded against alone. */
function scaleFigures(plan: Plan, moat: ScaleResult, bare: StartupRun, net: IdleConnectionsRun): Figure[] {
  const s = plan.scale;
  const marks = s.domainMarks;
  const readingAt = (run: StartupRun, n: number) => run.readings.find((r) => r.count === n)!.reading;
  const figures: Figure[] = moat.connections.map((c, i) => {
    const n = net.readings[i + 1]!;
    const holders = i === 0 ? 'two domains' : `${s.pairs} pairs of domains`;
    return pair(
      `idle-conn-${c.count}/net-idle-${c.count}`,
      `memory per idle TCP connection, ${thousands(c.count)} (${holders})`,
      memoryMeasure(moat.beforeConnections, c.reading, c.count, 'KiB', c.openMs),
      'Node net, 127.0.0.1 (both ends)',
      memoryMeasure(net.readings[0]!.reading, n.reading, n.count, 'KiB', n.openMs),
    );
  });
  for (const mark of marks) {
    figures.push(
      pair(
        `domain-start-${mark}/worker-start-${mark}`,
        `start-up to first syscall answered, ${bracketLabel(marks, mark, 'domain')}`,
        { ...summarize(startupBracket(moat.startups, marks, mark)), unit: 'ms' },
        `bare Worker to first statement, ${bracketLabel(marks, mark, 'worker')}`,
        { ...summarize(startupBracket(bare.startups, marks, mark)), unit: 'ms' },
      ),
    );
  }
  for (const mark of marks) {
    figures.push(
      pair(
        `domain-memory-${mark}/worker-memory-${mark}`,
        `memory per domain, ${mark} on one kernel`,
        memoryMeasure(moat.readings[0]!.reading, readingAt(moat, mark), mark, 'MiB'),
        `bare Worker, ${mark} running`,
        memoryMeasure(bare.readings[0]!.reading, readingAt(bare, mark), mark, 'MiB'),
      ),
    );
  }
  const { domains, connections } = moat.loadedWith;
  figures.push(
    pair(
      'null-sync-loaded/null-sync-idle',
      `null syscall, sync, with ${thousands(connections)} connections open and ${domains} domains attached`,
      latency(moat.probe.loaded),
      'the same program, alone on a kernel of its own, timed in alternation',
      latency(moat.probe.idle),
      'p99',
    ),
  );
  return figures;
}

/** Campaign figures: each number of jobs against the same seeds run one after another in the main thread. */
function campaignFigures(sequential: CampaignResult, campaigns: CampaignResult[]): Figure[] {
  const measure = (c: CampaignResult): Measure => ({ median: c.perSecond, unit: 'scenarios/s', samples: 1, campaign: c });
  const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;
  return campaigns.map((c) =>
    pair(
      `campaign-${c.jobs}/sequential`,
      `campaign, ${plural(c.seeds, 'seed')}, ${plural(c.jobs, 'job')} (runCampaign)`,
      measure(c),
      `the same ${plural(c.seeds, 'seed')} one after another in the main thread, no pool`,
      measure(sequential),
    ),
  );
}

/** One target of issue 6, judged on this run's figures. */
export interface Target {
  target: string;
  /** The figure it is judged on, and its ratio. */
  figure: string;
  measured: number;
  limit: number;
  /** 'max': the ratio must not exceed the limit; 'min': it must reach it. */
  kind: 'max' | 'min';
  met: boolean;
  /** Set when this run did not measure under the target's own conditions (e.g. --quick). */
  caveat?: string;
}

/** The targets of issue 6, each judged on the ratio of the figure it names. */
export function judgeTargets(figures: Figure[], plan: Plan): Target[] {
  const ratio = (id: string) => figures.find((f) => f.id === id)?.ratio ?? NaN;
  const judge = (target: string, figure: string, limit: number, kind: Target['kind'], caveat?: string): Target => {
    const measured = ratio(figure);
    return { target, figure, measured, limit, kind, met: kind === 'max' ? measured <= limit : measured >= limit, ...(caveat ? { caveat } : {}) };
  };
  const loaded = figures.find((f) => f.id === 'null-sync-loaded/null-sync-idle');
  const attached = 1 + Math.max(...plan.scale.domainMarks);
  const caveat =
    plan.scale.connectionsPerPair < 1000 || attached < 64
      ? `measured with ${thousands(plan.scale.connectionsPerPair)} connections and ${attached} domains, not the target's 1,000 and 64`
      : undefined;
  return [
    judge('null syscall (sync) at most 1.3x the raw transport', 'null-sync/port-sync', 1.3, 'max'),
    judge('null syscall (async) at most 1.3x the raw transport', 'null-async/port-async', 1.3, 'max'),
    judge('bulk TCP on one machine at least 0.5x Node net', 'tcp/net', 0.5, 'min'),
    judge(`1,000 connections and 64 domains on one kernel: null syscall p99 at most 10x the idle p99`, loaded?.id ?? 'null-sync-loaded/null-sync-idle', 10, 'max', caveat),
  ];
}

/** The TCP figures, from the pooled samples and the counters of every pass. */
function tcpFigures(plan: Plan, pooled: Map<string, unknown[]>, counters: Map<string, SideCounters>): Figure[] {
  const { bulk: b, linkBulk, connect, linkMtu } = plan.tcp;
  const transfers = (key: string) => pooled.get(key) as TransferResult[];
  const net = bulk(timed(transfers('net-tcp')));
  const oneMachine = bulk(timed(transfers('moat-tcp')));
  const across = bulk(timed(transfers('moat-tcp-link')));
  const runs = pooled.get('moat-tcp-connect') as ConnectResult[];
  const made = plan.passes * acceptedConnections(connect);
  return [
    pair(
      'tcp/net',
      tcpBulkLabel(b),
      { ...oneMachine, transfers: ratesByPass(transfers('moat-tcp'), bulkConnections(b)), tcp: tcpBulkReport(b, counters.get('moat-tcp')!) },
      'Node net, 127.0.0.1',
      { ...net, transfers: ratesByPass(transfers('net-tcp'), bulkConnections(b)) },
    ),
    pair('tcp-fresh/net-fresh', tcpFreshLabel(b), bulk(freshMachine(transfers('moat-tcp'))), 'Node net, 127.0.0.1', bulk(freshMachine(transfers('net-tcp')))),
    pair(
      `tcp-link${linkMtu}/net`,
      `${tcpBulkLabel(linkBulk)}, link MTU ${linkMtu}`,
      { ...across, tcp: tcpBulkReport(linkBulk, counters.get('moat-tcp-link')!, { mtu: linkMtu, vsOneMachine: across.median / oneMachine.median }) },
      'Node net, 127.0.0.1',
      net,
    ),
    pair(
      'tcp-connect/net-connect',
      tcpConnectLabel(connect),
      { ...connections(runs), tcp: tcpConnectReport(counters.get('moat-tcp-connect')!, made, runs.map((r) => r.blockRates)) },
      'Node net, 127.0.0.1',
      connections(pooled.get('net-tcp-connect') as ConnectResult[]),
    ),
  ];
}
