/**
 * Worker: one end of the Node `net` baselines on 127.0.0.1, running the same
 * TCP runs as Moat's domains (../tcp-protocol.ts). The server roles answer
 * their port first, then (at the end) what they counted; the client roles
 * answer their results.
 *
 * - sink: reads each connection to its end, replies with the count, ends.
 * - source: connects, writes `writeSize` bytes at a time (waiting for 'drain'
 *   whenever write() says the socket's buffer is full), ends, reads the reply.
 * - acceptor: ends each connection as soon as it is accepted.
 * - connector: connects, waits for the end of the stream, closes; again.
 */
import { once } from 'node:events';
import net from 'node:net';
import { parentPort, workerData } from 'node:worker_threads';
import { countReply, runBulkSource, runConnector, type BulkConnection, type TcpBulkPlan, type TcpConnectPlan } from '../tcp-protocol.js';

export type NetPeerArgs =
  | { role: 'sink' | 'acceptor'; connections: number }
  | { role: 'source'; port: number; plan: TcpBulkPlan }
  | { role: 'connector'; port: number; plan: TcpConnectPlan };

const HOST = '127.0.0.1';
const args = workerData as NetPeerArgs;
const host = parentPort!;

/** Listens on an ephemeral port of 127.0.0.1, answers it, and resolves once `connections` were served and closed. */
async function serve(connections: number, onConnection: (sock: net.Socket, done: () => void) => void): Promise<number> {
  let served = 0;
  const server = net.createServer({ allowHalfOpen: true });
  const finished = new Promise<void>((resolve) => server.on('close', resolve));
  server.on('connection', (sock) => {
    sock.on('error', (err) => {
      throw err; // ends the worker with an error, which fails the measurement
    });
    onConnection(sock, () => {
      if (++served === connections) server.close();
    });
  });
  server.listen(0, HOST);
  await once(server, 'listening');
  host.postMessage((server.address() as net.AddressInfo).port);
  await finished;
  return served;
}

function connect(port: number, allowHalfOpen: boolean): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ port, host: HOST, allowHalfOpen });
    sock.once('error', reject);
    sock.once('connect', () => {
      sock.off('error', reject);
      resolve(sock);
    });
  });
}

/** A source connection: the sink's reply is collected from the moment it connects. */
async function bulkConnection(port: number): Promise<BulkConnection> {
  const sock = await connect(port, true);
  const parts: Buffer[] = [];
  let got = 0;
  let replied: (() => void) | undefined;
  sock.on('data', (d: Buffer) => {
    parts.push(d);
    got += d.length;
    if (got >= 8) replied?.();
  });
  return {
    write: (chunk) => (sock.write(chunk) ? undefined : once(sock, 'drain').then(() => undefined)),
    async finish() {
      const reply = new Promise<void>((resolve) => (got >= 8 ? resolve() : (replied = resolve)));
      sock.end();
      await reply;
      return new Uint8Array(Buffer.concat(parts));
    },
    close: () => void sock.destroy(),
  };
}

/** One connection of the connector: resolves once the acceptor has ended it and our socket is closed. */
function connectOnce(port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ port, host: HOST });
    sock.on('error', reject);
    sock.on('data', () => reject(new Error('the acceptor sent data')));
    sock.on('close', () => resolve());
  });
}

switch (args.role) {
  case 'sink': {
    const read: number[] = [];
    await serve(args.connections, (sock, done) => {
      let bytes = 0;
      sock.on('data', (d: Buffer) => void (bytes += d.length));
      sock.on('end', () => {
        read.push(bytes);
        sock.end(countReply(bytes), done);
      });
    });
    host.postMessage(read);
    break;
  }
  case 'acceptor': {
    const accepted = await serve(args.connections, (sock, done) => {
      sock.end(done);
      sock.resume();
    });
    host.postMessage(accepted);
    break;
  }
  case 'source':
    host.postMessage(await runBulkSource(args.plan, () => bulkConnection(args.port)));
    break;
  case 'connector':
    host.postMessage(await runConnector(args.plan, () => connectOnce(args.port)));
    break;
}
