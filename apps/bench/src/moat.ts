/**
 * The Moat side of each figure: a fresh simulated machine (kernel worker)
 * per measurement, or two joined by a simulated link, with the bench's
 * programs running in domain workers. Runs that report counters take them
 * from the kernels once the programs have returned.
 */
import type { KernelStats } from '@moat/kernel';
import { Machine, Network, type DomainHandle } from '@moat/sim';
import type { NullCallsArgs } from './programs/null-calls.js';
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
