/**
 * The Moat side of each figure: a fresh simulated machine (kernel worker)
 * per measurement, or two joined by a simulated link, with the bench's
 * programs running in domain workers. Runs that report counters take them
 * from the kernels once the programs have returned.
 */
import type { KernelStats } from '@moat/kernel';
import { Machine, Network, type DomainHandle } from '@moat/sim';
import type { StartupRun } from './baselines.js';
import { conduct, epochMs, newBell, ring } from './doorbell.js';
import { byTrial, type Span, type ThroughputPlan } from './measure.js';
import type { MemoryProbe, MemoryReading } from './memory.js';
import type { ConnAcceptorArgs } from './programs/conn-acceptor.js';
import type { ConnOpenerArgs } from './programs/conn-opener.js';
import type { NullCallsArgs } from './programs/null-calls.js';
import type { NullProbeArgs } from './programs/null-probe.js';
import { startedAt } from './programs/started.js';
import type { TcpAcceptorArgs } from './programs/tcp-acceptor.js';
import type { TcpConnectorArgs } from './programs/tcp-connector.js';
import type { TcpSinkArgs } from './programs/tcp-sink.js';
import type { TcpSourceArgs } from './programs/tcp-source.js';
import { acceptedConnections, bulkConnections, type ConnectResult, type TcpBulkPlan, type TcpConnectPlan, type TransferResult } from './tcp-protocol.js';
import type { UdpReceiverArgs } from './programs/udp-receiver.js';
import type { UdpSenderArgs } from './programs/udp-sender.js';
import type { RoundResult, UdpPlan } from './udp-protocol.js';

const program = (name: string) => new URL(`./programs/${name}.js`, import.meta.url);

async function onMachine<T>(run: (m: Machine) => Promise<T>): Promise<T> {
  const machine = new Machine({ name: 'bench' });
  try {
    return await run(machine);
  } finally {
    await machine.shutdown();
  }
}

/** What the domain's program returned; anything but a normal return fails the bench. */
async function returned<T>(d: DomainHandle): Promise<T> {
  const o = await d.outcome;
  if (o.status !== 'returned') throw new Error(`domain ${o.name} ${o.status}: ${o.error ?? ''}\n${o.logs.join('\n')}`);
  return o.value as T;
}

/** Null syscalls from one domain (latency samples in µs, or calls/s per trial for 'in-flight'). */
export function nullCalls(args: NullCallsArgs): Promise<Float64Array | number[]> {
  return onMachine(async (m) => returned(await m.spawn({ name: 'caller', program: program('null-calls'), args })));
}

/**
 * `domains` domains on one kernel, each keeping `depth` null calls in flight,
 * started together by the bell (they are spawned all at once: their start-up
 * is not what this measures): each trial's spans, one per domain.
 */
export function nullCallsTogether(domains: number, plan: ThroughputPlan): Promise<Span[][]> {
  return onMachine(async (m) => {
    const bell = newBell();
    const args = { mode: 'together', bell, ...plan } satisfies NullCallsArgs;
    const callers = await Promise.all(Array.from({ length: domains }, (_, i) => m.spawn({ name: `caller${i}`, program: program('null-calls'), args })));
    const ready = callers.map((d) => (trial: number) => d.waitForLog(new RegExp(`^ready ${trial}$`)));
    const [, spans] = await Promise.all([conduct(bell, plan.trials, ready), Promise.all(callers.map((d) => returned<Span[]>(d)))]);
    return byTrial(spans);
  });
}

const RECEIVER_PORT = 7000;

/** Runs the receiver on `rx` bound to `bindAddr`, then the sender on `tx` sending to `to`; the sender's rounds. */
async function transfer(plan: UdpPlan, tx: Machine, rx: Machine, bindAddr: string, to: string): Promise<RoundResult[]> {
  const receiver = await rx.spawn({
    name: 'receiver',
    program: program('udp-receiver'),
    args: { addr: bindAddr, port: RECEIVER_PORT, depth: Math.max(16, plan.window) } satisfies UdpReceiverArgs,
  });
  await receiver.waitForLog(/^ready/);
  const sender = await tx.spawn({
    name: 'sender',
    program: program('udp-sender'),
    args: { ...plan, to: { addr: to, port: RECEIVER_PORT } } satisfies UdpSenderArgs,
  });
  const [rounds] = await Promise.all([returned<RoundResult[]>(sender), returned(receiver)]);
  return rounds;
}

/** A UDP transfer between two domains of one machine, through its kernel's loopback. */
export function udpTransfer(plan: UdpPlan): Promise<RoundResult[]> {
  return onMachine((m) => transfer(plan, m, m, '127.0.0.1', '127.0.0.1'));
}

/** The counters of one transfer across a link, by where they were counted. */
export type LinkCounters = {
  /** Counters of the sending machine: `stack.*` (its stack), `eth0.*` (its interface), `wire.*` (the link towards the receiver), `pool.*`. */
  sender: Record<string, number>;
  /** The same on the receiving machine (its `wire.*` is the direction of the acknowledgements). */
  receiver: Record<string, number>;
};

/** Counters of a run on one machine: `machine` holds its kernel's, as `flatten` makes them. */
export type MachineCounters = {
  machine: Record<string, number>;
};

/** Two machines, each with its own kernel worker, joined by a perfect simulated Ethernet link of `mtu`; `run` gets the sender's and the receiver's. */
async function acrossLink<T>(mtu: number, run: (a: Machine, b: Machine) => Promise<T>): Promise<{ result: T; counters: LinkCounters }> {
  const net = new Network(1);
  try {
    const iface = (addr: string, mac: string) => ({ name: 'eth0', addr, mac, mtu });
    const a = net.machine({ name: 'sender', interfaces: [iface('10.0.0.1/24', '02:00:00:00:00:01')] });
    const b = net.machine({ name: 'receiver', interfaces: [iface('10.0.0.2/24', '02:00:00:00:00:02')] });
    await net.link({ machine: a, iface: 'eth0' }, { machine: b, iface: 'eth0' }, { mtu });
    const result = await run(a, b);
    const [sa, sb] = await Promise.all([a.stats(), b.stats()]);
    return { result, counters: { sender: flatten(sa), receiver: flatten(sb) } };
  } finally {
    await net.shutdown();
  }
}

/** Sender and receiver on two machines joined by a link of `mtu` (see `acrossLink`); the receiver is bound to 0.0.0.0. */
export async function udpTransferAcrossLink(plan: UdpPlan, mtu: number): Promise<{ rounds: RoundResult[]; counters: LinkCounters }> {
  const { result, counters } = await acrossLink(mtu, (a, b) => transfer(plan, a, b, '0.0.0.0', '10.0.0.2'));
  return { rounds: result, counters };
}

const TCP_PORT = 5000;

/** The sink on `rx` listening on `listenAddr`, then the source on `tx` connecting to `to`: the source's timed transfers. */
async function tcpBulkRun(plan: TcpBulkPlan, tx: Machine, rx: Machine, listenAddr: string, to: string): Promise<TransferResult[]> {
  const sink = await rx.spawn({
    name: 'sink',
    program: program('tcp-sink'),
    args: { addr: listenAddr, port: TCP_PORT, connections: bulkConnections(plan), readSize: plan.writeSize } satisfies TcpSinkArgs,
  });
  await sink.waitForLog(/^ready/);
  const source = await tx.spawn({ name: 'source', program: program('tcp-source'), args: { to: { addr: to, port: TCP_PORT }, plan } satisfies TcpSourceArgs });
  const [transfers] = await Promise.all([returned<TransferResult[]>(source), returned(sink)]);
  return transfers;
}

/** Bulk TCP between two domains of one machine, through its kernel's loopback; with the kernel's counters. */
export function tcpBulk(plan: TcpBulkPlan): Promise<{ transfers: TransferResult[]; counters: MachineCounters }> {
  return onMachine(async (m) => {
    const transfers = await tcpBulkRun(plan, m, m, '127.0.0.1', '127.0.0.1');
    return { transfers, counters: { machine: flatten(await m.stats()) } };
  });
}

/** Bulk TCP across a perfect link of `mtu`: the source on one machine, the sink (on 0.0.0.0) on the other. */
export async function tcpBulkAcrossLink(plan: TcpBulkPlan, mtu: number): Promise<{ transfers: TransferResult[]; counters: LinkCounters }> {
  const { result, counters } = await acrossLink(mtu, (a, b) => tcpBulkRun(plan, a, b, '0.0.0.0', '10.0.0.2'));
  return { transfers: result, counters };
}

/** TCP connections one after another between two domains of one machine; with the kernel's counters. */
export function tcpConnections(plan: TcpConnectPlan): Promise<{ result: ConnectResult; counters: MachineCounters }> {
  return onMachine(async (m) => {
    const acceptor = await m.spawn({
      name: 'acceptor',
      program: program('tcp-acceptor'),
      args: { addr: '127.0.0.1', port: TCP_PORT, connections: acceptedConnections(plan) } satisfies TcpAcceptorArgs,
    });
    await acceptor.waitForLog(/^ready/);
    const connector = await m.spawn({
      name: 'connector',
      program: program('tcp-connector'),
      args: { to: { addr: '127.0.0.1', port: TCP_PORT }, plan } satisfies TcpConnectorArgs,
    });
    const [result] = await Promise.all([returned<ConnectResult>(connector), returned(acceptor)]);
    return { result, counters: { machine: flatten(await m.stats()) } };
  });
}

/** One flat record of a kernel's counters: its stack's, its first interface's and its wire's, its pool's failures and its own errors. */
function flatten(s: KernelStats): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(s.stack)) out[`stack.${k}`] = v;
  const eth = s.interfaces[0];
  for (const [k, v] of Object.entries(eth?.counters ?? {})) out[`${eth!.name}.${k}`] = v;
  for (const [k, v] of Object.entries(eth?.wire ?? {})) out[`wire.${k}`] = v;
  out['pool.failures'] = s.pool.failures;
  out['kernel.internalErrors'] = s.internalErrors;
  out['kernel.leaks'] = s.leaks.length;
  return out;
}

/** The kernel at scale, measured on one machine (see `kernelAtScale`). */
export interface ScalePlan {
  /** Domain counts at which memory is read (and start-up brackets end); the last is how many are spawned after the probe. */
  domainMarks: number[];
  /** Pairs of domains that hold connections, an acceptor and an opener each: the last of the spawned domains. */
  pairs: number;
  /** Connections each pair holds. A domain holds at most 1024 handles, whatever its maxHandles (the kernel's handle table has 10 bits of slot). */
  connectionsPerPair: number;
  /** Connects, and accepts, each pair keeps in flight. */
  depth: number;
  /**
   * The probes' blocking null syscalls: `blocks` blocks of `iterations` timed
   * calls each, the probe alone on its kernel and the one on the loaded kernel
   * taking turns (see kernelAtScale); `warmup` untimed calls before the first
   * block, `blockWarmup` before each later one.
   */
  probe: { warmup: number; blockWarmup: number; iterations: number; blocks: number };
}

export interface ScaleResult extends StartupRun {
  /** The probes' null syscall latencies (µs), pooled over their blocks: alone on a kernel, and on the kernel with the first pair's connections open and every domain attached. */
  probe: { idle: Float64Array; loaded: Float64Array };
  /** Domains attached while the probe was loaded, itself included, and the connections then open. */
  loadedWith: { domains: number; connections: number };
  /** Readings once the first pair's connections were open, then every pair's (`count` connections; `openMs` to open those added since the reading before). */
  connections: { count: number; reading: MemoryReading; openMs: number }[];
  /** The reading the connection figures grow from: every domain attached, no connection open. */
  beforeConnections: MemoryReading;
  /** The kernel's counters at the end: its internal errors and leaks, every nonzero drop, TCP segments, sockets held. */
  counters: Record<string, number>;
}

/** The bell's values in a scale run, in the order it rings them (the probes have bells of their own). */
const BELL = { firstPair: 1, otherPairs: 3, release: 4 } as const;

/**
 * One kernel taken to scale. A probe domain is spawned first on it, and a
 * second one alone on a kernel of its own. Then domains are spawned one
 * after another, each once the one before has had its first syscall
 * answered, with memory read at each mark: idle domains first (each blocked
 * in a recv), then the pairs. The first pair opens its connections; the two
 * probes then time their null syscalls in blocks, taking turns (alone,
 * loaded, loaded, alone, ...), so that the machine's load, which comes and
 * goes with other work, weighs on both series alike; then the other pairs
 * open theirs.
 */
export async function kernelAtScale(plan: ScalePlan, memory: MemoryProbe, note: (what: string) => void = () => undefined): Promise<ScaleResult> {
  const total = Math.max(...plan.domainMarks);
  if (2 * plan.pairs > total) throw new Error(`${plan.pairs} pairs of connection domains do not fit in ${total} domains`);
  const machine = new Machine({ name: 'scale' });
  const aloneMachine = new Machine({ name: 'alone' });
  const bell = newBell();
  const loadedBell = newBell();
  const aloneBell = newBell();
  try {
    const probeArgs = (b: SharedArrayBuffer) => ({ ...plan.probe, bell: b }) satisfies NullProbeArgs;
    const probe = await machine.spawn({ name: 'probe', program: program('null-probe'), args: probeArgs(loadedBell) });
    const alone = await aloneMachine.spawn({ name: 'probe', program: program('null-probe'), args: probeArgs(aloneBell) });
    await Promise.all([probe.waitForLog(/^ready$/), alone.waitForLog(/^ready$/)]);

    const run: StartupRun = { startups: [], readings: [{ count: 0, reading: await memory.read() }] };
    // A domain holds at most 1024 handles: raise the default 64 to that for the pairs.
    const limits = { maxHandles: 1024 };
    const openers: DomainHandle[] = [];
    const acceptors: DomainHandle[] = [];
    for (let n = 1; n <= total; n++) {
      const pair = n - (total - 2 * plan.pairs) - 1; // >= 0 for the pairs' domains: acceptor, opener, acceptor...
      const p = Math.floor(pair / 2);
      const port = 6000 + p;
      const go = p === 0 ? BELL.firstPair : BELL.otherPairs;
      const t = epochMs();
      const d =
        pair < 0
          ? await machine.spawn({ name: `idle${n}`, program: program('idle') })
          : pair % 2 === 0
            ? await machine.spawn({
                name: `acceptor${p}`,
                program: program('conn-acceptor'),
                limits,
                args: { addr: '127.0.0.1', port, connections: plan.connectionsPerPair, depth: plan.depth, bell, go, release: BELL.release } satisfies ConnAcceptorArgs,
              })
            : await machine.spawn({
                name: `opener${p}`,
                program: program('conn-opener'),
                limits,
                args: { to: { addr: '127.0.0.1', port }, connections: plan.connectionsPerPair, depth: plan.depth, bell, go, release: BELL.release } satisfies ConnOpenerArgs,
              });
      run.startups.push(startedAt(await d.waitForLog(/^started /)) - t);
      if (pair >= 0 && pair % 2 === 0) {
        await d.waitForLog(/^ready$/); // listening before its opener can be told to go
        acceptors.push(d);
      } else if (pair >= 0) openers.push(d);
      if (plan.domainMarks.includes(n)) {
        note(`${n} domains attached`);
        run.readings.push({ count: n, reading: await memory.read() });
      }
    }
    const beforeConnections = run.readings.at(-1)!.reading;

    /** Rings `value` and waits until the pairs `from` to `to` (exclusive) hold their connections: the slowest opener's time to open its own. */
    const open = async (value: number, from: number, to: number) => {
      ring(bell, value);
      const held = await Promise.all(openers.slice(from, to).map((o) => o.waitForLog(/^held /)));
      await Promise.all(acceptors.slice(from, to).map((a) => a.waitForLog(/^held$/)));
      return Math.max(...held.map((line) => Number(line.slice('held '.length))));
    };
    const connections: ScaleResult['connections'] = [];
    note(`the first pair opening ${plan.connectionsPerPair} connections`);
    const firstMs = await open(BELL.firstPair, 0, 1);
    connections.push({ count: plan.connectionsPerPair, reading: await memory.read(), openMs: firstMs });

    note(`the probes, ${plan.probe.blocks} blocks each, in turns`);
    for (let block = 1; block <= plan.probe.blocks; block++) {
      // ABBA order: neither series always goes first after the other's block.
      const turns: [DomainHandle, SharedArrayBuffer][] = [
        [alone, aloneBell],
        [probe, loadedBell],
      ];
      for (const [p, b] of block % 2 === 1 ? turns : turns.reverse()) {
        ring(b, block);
        await p.waitForLog(new RegExp(`^block ${block} done$`));
      }
    }
    const idle = alone.published as Float64Array;
    const loaded = probe.published as Float64Array;

    if (plan.pairs > 1) {
      note(`${plan.pairs - 1} more pairs opening theirs`);
      const restMs = await open(BELL.otherPairs, 1, plan.pairs);
      connections.push({ count: plan.pairs * plan.connectionsPerPair, reading: await memory.read(), openMs: restMs });
    }
    const stats = await machine.stats();
    ring(bell, BELL.release);
    ring(loadedBell, plan.probe.blocks + 1);
    ring(aloneBell, plan.probe.blocks + 1);
    return {
      ...run,
      probe: { idle, loaded },
      loadedWith: { domains: 1 + total, connections: plan.connectionsPerPair },
      connections,
      beforeConnections,
      counters: scaleCounters(stats),
    };
  } finally {
    await Promise.all([machine.shutdown(), aloneMachine.shutdown()]);
  }
}

/** What a scale run's kernel counted: errors and leaks (must be 0), every nonzero drop, TCP handshakes and resets, the sockets its domains held. */
function scaleCounters(stats: KernelStats): Record<string, number> {
  const flat = flatten(stats);
  const out: Record<string, number> = {
    'kernel.internalErrors': flat['kernel.internalErrors']!,
    'kernel.leaks': flat['kernel.leaks']!,
    'stack.in.tcpSyn': flat['stack.in.tcpSyn'] ?? 0,
    'stack.out.tcpRst': flat['stack.out.tcpRst'] ?? 0,
    'domains.sockets': stats.domains.reduce((a, d) => a + (d.alive ? d.accounting.sockets : 0), 0),
  };
  for (const [k, v] of Object.entries(flat)) if (/^stack\.drop\./.test(k) && v > 0) out[k] = v;
  return out;
}
