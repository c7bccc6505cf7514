/**
 * The baselines, each measured between plain worker threads with the same
 * timing loops as Moat's programs: what the transport alone costs.
 */
import { MessageChannel } from 'node:worker_threads';
import type { NetPeerArgs } from './baselines/net-peer.js';
import type { NullCallsArgs } from './programs/null-calls.js';
import { acceptedConnections, bulkConnections, type ConnectResult, type TcpBulkPlan, type TcpConnectPlan, type TransferResult } from './tcp-protocol.js';
import type { RoundResult, UdpPlan } from './udp-protocol.js';
import { ended, nextMessage, startWorker } from './workers.js';

/** Round trips over a raw MessagePort (latency samples in µs, or messages/s per trial for 'in-flight'). */
export async function portRoundTrip(plan: NullCallsArgs): Promise<Float64Array | number[]> {
  const { port1, port2 } = new MessageChannel();
  const signal = new SharedArrayBuffer(4);
  const echo = startWorker('port-echo', { port: port2, signal }, [port2]);
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
