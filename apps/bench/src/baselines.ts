/**
 * The baselines, each measured between plain worker threads with the same
 * timing loops as Moat's programs: what the transport alone costs.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { MessageChannel } from 'node:worker_threads';
import type { NetPeerArgs } from './baselines/net-peer.js';
import { conduct, epochMs, newBell } from './doorbell.js';
import { byTrial, type Span, type ThroughputPlan } from './measure.js';
import type { MemoryProbe, MemoryReading } from './memory.js';
import type { NullCallsArgs } from './programs/null-calls.js';
import { acceptedConnections, bulkConnections, type ConnectResult, type TcpBulkPlan, type TcpConnectPlan, type TransferResult } from './tcp-protocol.js';
import type { RoundResult, UdpPlan } from './udp-protocol.js';
import { ended, nextMessage, readyAndResult, startWorker } from './workers.js';

/** Round trips over a raw MessagePort (latency samples in µs, or messages/s per trial for 'in-flight'). */
export async function portRoundTrip(plan: NullCallsArgs): Promise<Float64Array | number[]> {
  const { port1, port2 } = new MessageChannel();
  const signal = new SharedArrayBuffer(4);
  const echo = startWorker('port-echo', { peers: [{ port: port2, signal }] }, [port2]);
  const ping = startWorker('port-ping', { port: port1, signal, plan }, [port1]);
  const result = await nextMessage<Float64Array | number[]>(ping);
  await ended(ping, echo);
  return result;
}

/** Blocking round trips over SharedArrayBuffer + Atomics (latency samples in µs). */
export async function sabRoundTrip(warmup: number, iterations: number): Promise<Float64Array> {
  const signal = new SharedArrayBuffer(8);
  const echo = startWorker('sab-pair', { role: 'echo', signal });
  const ping = startWorker('sab-pair', { role: 'ping', signal, warmup, iterations });
  const result = await nextMessage<Float64Array>(ping);
  await ended(ping, echo);
  return result;
}

/** Node's dgram on 127.0.0.1 between two workers: the sender's rounds, with what the receiver counted. */
export async function dgramTransfer(plan: UdpPlan): Promise<RoundResult[]> {
  const receiver = startWorker('dgram-peer', { role: 'receive' });
  const port = await nextMessage<number>(receiver);
  const sender = startWorker('dgram-peer', { role: 'send', port, plan });
  const [rounds] = await Promise.all([nextMessage<RoundResult[]>(sender), nextMessage<number[]>(receiver)]);
  await ended(sender, receiver);
  return rounds;
}

/** Node's net on 127.0.0.1 between two workers: the source's timed transfers. */
export async function netBulk(plan: TcpBulkPlan): Promise<TransferResult[]> {
  const sink = startWorker('net-peer', { role: 'sink', connections: bulkConnections(plan) } satisfies NetPeerArgs);
  const port = await nextMessage<number>(sink);
  const source = startWorker('net-peer', { role: 'source', port, plan } satisfies NetPeerArgs);
  const [transfers] = await Promise.all([nextMessage<TransferResult[]>(source), nextMessage<number[]>(sink)]);
  await ended(source, sink);
  return transfers;
}

/** Node's net on 127.0.0.1 between two workers: connections one after another. */
export async function netConnections(plan: TcpConnectPlan): Promise<ConnectResult> {
  const acceptor = startWorker('net-peer', { role: 'acceptor', connections: acceptedConnections(plan) } satisfies NetPeerArgs);
  const port = await nextMessage<number>(acceptor);
  const connector = startWorker('net-peer', { role: 'connector', port, plan } satisfies NetPeerArgs);
  const [result] = await Promise.all([nextMessage<ConnectResult>(connector), nextMessage<number>(acceptor)]);
  await ended(connector, acceptor);
  return result;
}

/**
 * `senders` workers, each with its own MessagePort to one echo thread (as
 * domains have theirs to one kernel worker), keeping `depth` round trips in
 * flight and started together by the bell: each trial's spans, one per sender.
 */
export async function portTogether(senders: number, plan: ThroughputPlan): Promise<Span[][]> {
  const bell = newBell();
  const channels = Array.from({ length: senders }, () => ({ ...new MessageChannel(), signal: new SharedArrayBuffer(4) }));
  const echo = startWorker(
    'port-echo',
    { peers: channels.map((c) => ({ port: c.port2, signal: c.signal })) },
    channels.map((c) => c.port2),
  );
  const pings = channels.map((c) =>
    readyAndResult<Span[]>(startWorker('port-ping', { port: c.port1, signal: c.signal, plan: { mode: 'together', bell, ...plan } satisfies NullCallsArgs }, [c.port1])),
  );
  const [, spans] = await Promise.all([conduct(bell, plan.trials, pings.map((p) => p.ready)), Promise.all(pings.map((p) => p.result))]);
  await ended(echo);
  return byTrial(spans);
}

/** What a run of threads (or domains) started one after another reports: each start-up, and memory readings. */
export interface StartupRun {
  /** Milliseconds from the host's start of each to its first sign of life, in the order they were started. */
  startups: number[];
  /** Readings before the first (`count` 0) and once `count` were running. */
  readings: { count: number; reading: MemoryReading }[];
}

/**
 * Bare worker threads started one after another, each kept running, up to
 * the last of `marks`: each one's start-up (from `new Worker` to its first
 * statement) and the memory once `marks[i]` are running.
 */
export async function bareWorkers(marks: number[], memory: MemoryProbe): Promise<StartupRun> {
  const run: StartupRun = { startups: [], readings: [{ count: 0, reading: await memory.read() }] };
  const workers = [];
  for (let n = 1; n <= Math.max(...marks); n++) {
    const t = epochMs();
    const w = startWorker('bare-worker', null);
    run.startups.push((await nextMessage<number>(w)) - t);
    workers.push(w);
    if (marks.includes(n)) run.readings.push({ count: n, reading: await memory.read() });
  }
  for (const w of workers) w.postMessage('go');
  await ended(...workers);
  return run;
}

/** Memory of idle connections, both ends, as more are opened: the readings before any (`count` 0) and at each count (`openMs` to open those added since the reading before). */
export interface IdleConnectionsRun {
  readings: { count: number; reading: MemoryReading; openMs: number }[];
}

type OpenerReply = { ready: true } | { held: number; ms: number } | { rss: number } | { error: string };

function childReply<T extends OpenerReply>(child: ChildProcess): Promise<T> {
  return new Promise((resolve, reject) => {
    const onExit = (code: number | null) => reject(new Error(`the net opener exited (${code}) before answering`));
    child.once('exit', onExit);
    child.once('message', (m: OpenerReply) => {
      child.off('exit', onExit);
      if ('error' in m) reject(new Error(`the net opener failed: ${m.error}`));
      else resolve(m as T);
    });
  });
}

/**
 * Node's `net` on 127.0.0.1: an acceptor worker in this process keeps every
 * connection a child process opens (`depth` connects in flight) until
 * `counts[i]` are open, and the memory is read at each count: this process's
 * rss (every thread's garbage collected) plus the child's (collected too).
 */
export async function netIdleConnections(counts: number[], depth: number, memory: MemoryProbe): Promise<IdleConnectionsRun> {
  const acceptor = startWorker('net-idle-acceptor', null);
  const { port } = await nextMessage<{ port: number }>(acceptor);
  const child = fork(new URL('./baselines/net-idle-opener.js', import.meta.url), { execArgv: ['--expose-gc'] });
  try {
    await childReply(child);
    const read = async (openMs: number, count: number) => {
      child.send({ memory: true });
      const { rss } = await childReply<{ rss: number }>(child);
      const host = await memory.read();
      return { count, openMs, reading: { ...host, rss: host.rss + rss } };
    };
    const run: IdleConnectionsRun = { readings: [await read(0, 0)] };
    let held = 0;
    for (const count of counts) {
      child.send({ open: count - held, port, depth });
      const opened = await childReply<{ held: number; ms: number }>(child);
      acceptor.postMessage({ expect: count });
      await nextMessage(acceptor);
      held = opened.held;
      run.readings.push(await read(opened.ms, count));
    }
    return run;
  } finally {
    if (child.connected) child.send({ exit: true });
    acceptor.postMessage({ close: true });
    await Promise.all([child.exitCode === null ? once(child, 'exit') : undefined, ended(acceptor)]);
  }
}
