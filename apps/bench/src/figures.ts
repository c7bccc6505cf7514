/**
 * What the bench measures and against what: each Moat figure is paired with
 * a baseline measured in the same run, and the ratio of their medians.
 */
import { dgramTransfer, netBulk, netConnections, portRoundTrip, sabRoundTrip } from './baselines.js';
import type { ThroughputPlan } from './measure.js';
import { nullCalls, tcpBulk, tcpBulkAcrossLink, tcpConnections, udpTransfer, udpTransferAcrossLink, type LinkCounters } from './moat.js';
import { median, summarize } from './stats.js';
import { acceptedConnections, type ConnectResult, type TcpBulkPlan, type TcpConnectPlan, type TransferResult } from './tcp-protocol.js';
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
  tcp: TcpPlans;
}

export interface TcpPlans {
  /** Bulk transfers, each one connection: on one machine, and across the link of `linkMtu`. */
  bulk: TcpBulkPlan;
  /** IP MTU of the perfect simulated link the bulk plan also crosses. */
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
// TCP: each transfer is one connection of 32 MiB in 64 KiB writes, after a warm-up transfer of 4 MiB
// on the same fresh machine; connections come 500 in a row after 20 untimed ones.
export const FULL: Plan = {
  passes: 3,
  latency: { warmup: 4_000, iterations: 7_000 },
  inFlight: { depth: 64, calls: 30_000, trials: 2 },
  udp: [udp(8192, 8, 8 << 20, 2), udp(1024, 64, 2 << 20, 2)],
  link: LINK_CASES,
  tcp: {
    bulk: { bytes: 32 << 20, writeSize: 64 << 10, warmupBytes: 4 << 20, transfers: 1 },
    linkMtu: 1500,
    connect: { connections: 500, warmup: 20, block: 100 },
  },
};

export const QUICK: Plan = {
  passes: 1,
  latency: { warmup: 1_000, iterations: 2_000 },
  inFlight: { depth: 64, calls: 5_000, trials: 2 },
  udp: [udp(8192, 8, 2 << 20, 2), udp(1024, 64, 512 << 10, 2)],
  link: LINK_CASES,
  tcp: {
    bulk: { bytes: 4 << 20, writeSize: 64 << 10, warmupBytes: 1 << 20, transfers: 1 },
    linkMtu: 1500,
    connect: { connections: 100, warmup: 20, block: 50 },
  },
};

export interface Measure {
  /** The median: µs for latencies, per second for throughputs. */
  median: number;
  unit: 'µs' | 'calls/s' | 'messages/s' | 'MB/s' | 'connections/s';
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
  const { bulk, connect, linkMtu } = plan.tcp;
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
      run: async () => (await counted(linkKey(c), () => udpTransferAcrossLink(udpOf(plan, c), c.mtu))()).rounds,
    })),
    { key: 'moat-tcp', what: `Moat ${tcpBulkLabel(bulk)}`, run: async () => (await counted('moat-tcp', () => tcpBulk(bulk))()).transfers },
    { key: 'net-tcp', what: `Node net ${tcpBulkLabel(bulk)}`, run: () => netBulk(bulk) },
    {
      key: 'moat-tcp-link',
      what: `Moat ${tcpBulkLabel(bulk)}, link MTU ${linkMtu}`,
      run: async () => (await counted('moat-tcp-link', () => tcpBulkAcrossLink(bulk, linkMtu))()).transfers,
    },
    {
      key: 'moat-tcp-connect',
      what: `Moat ${tcpConnectLabel(connect)}`,
      run: async () => [(await counted('moat-tcp-connect', () => tcpConnections(connect))()).result],
    },
    { key: 'net-tcp-connect', what: `Node net ${tcpConnectLabel(connect)}`, run: async () => [await netConnections(connect)] },
  ];
}

const sizeLabel = (bytes: number) => (bytes >= 1 << 20 ? `${bytes / (1 << 20)} MiB` : `${bytes / 1024} KiB`);
const tcpBulkLabel = (b: TcpBulkPlan) => `TCP bulk, ${sizeLabel(b.bytes)} in ${sizeLabel(b.writeSize)} writes`;
const tcpConnectLabel = (c: TcpConnectPlan) => `TCP connect+accept+close, ${c.connections} in a row`;

/** MB/s (10^6 bytes) of each transfer, connect to the last byte read. */
function bulk(transfers: TransferResult[]): Measure {
  return { median: median(transfers.map((t) => t.bytes / t.ms / 1000)), unit: 'MB/s', samples: transfers.length };
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

/** Runs every measurement, pass after pass; `step` is told what is being measured. */
export async function measureAll(plan: Plan, step: (what: string) => void): Promise<Figure[]> {
  const pooled = new Map<string, unknown[]>();
  const counters = new Map<string, SideCounters>();
  for (let pass = 1; pass <= plan.passes; pass++) {
    for (const m of measurements(plan, counters)) {
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
      const moat = { ...across, link: linkReport(c, counters.get(linkKey(c)) as LinkCounters, across.median / oneMachine.median) };
      return pair(`udp-link${c.mtu}-${u.size}/dgram-${u.size}`, linkLabel(c, u), moat, 'Node dgram, 127.0.0.1', transfer(u, rounds(`dgram-${u.size}`)));
    }),
    ...tcpFigures(plan, pooled, counters),
  ];
  return figures;
}

/** The TCP figures, from the pooled samples and the counters of every pass. */
function tcpFigures(plan: Plan, pooled: Map<string, unknown[]>, counters: Map<string, SideCounters>): Figure[] {
  const { bulk: b, connect, linkMtu } = plan.tcp;
  const transfers = (key: string) => pooled.get(key) as TransferResult[];
  const net = bulk(transfers('net-tcp'));
  const oneMachine = bulk(transfers('moat-tcp'));
  const across = bulk(transfers('moat-tcp-link'));
  const runs = pooled.get('moat-tcp-connect') as ConnectResult[];
  const made = plan.passes * acceptedConnections(connect);
  return [
    pair('tcp/net', tcpBulkLabel(b), { ...oneMachine, tcp: tcpBulkReport(b, counters.get('moat-tcp')!) }, 'Node net, 127.0.0.1', net),
    pair(
      `tcp-link${linkMtu}/net`,
      `${tcpBulkLabel(b)}, link MTU ${linkMtu}`,
      { ...across, tcp: tcpBulkReport(b, counters.get('moat-tcp-link')!, { mtu: linkMtu, vsOneMachine: across.median / oneMachine.median }) },
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
