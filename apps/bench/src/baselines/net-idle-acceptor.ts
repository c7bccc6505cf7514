/**
 * Worker: the server end of the Node `net` idle-connection baseline. It
 * listens on an ephemeral port of 127.0.0.1 (answering the port), accepts
 * and keeps every connection, reading and sending nothing, and answers each
 * `{ expect: n }` once it holds n connections.
 */
import net from 'node:net';
import { once } from 'node:events';
import { parentPort } from 'node:worker_threads';

const host = parentPort!;
const held: net.Socket[] = [];
let expected: number | undefined;
const answer = () => {
  if (expected !== undefined && held.length >= expected) {
    host.postMessage({ held: held.length });
    expected = undefined;
  }
};
const server = net.createServer((sock) => {
  sock.on('error', (err) => {
    throw err; // ends the worker with an error, which fails the measurement
  });
  held.push(sock);
  answer();
});
// Linux caps the backlog at somaxconn; the opener keeps few connects in flight anyway.
server.listen({ port: 0, host: '127.0.0.1', backlog: 4096 });
await once(server, 'listening');
host.postMessage({ port: (server.address() as net.AddressInfo).port });
host.on('message', (m: { expect?: number; close?: true }) => {
  if (m.close) {
    for (const s of held) s.destroy();
    server.close();
    host.close();
    return;
  }
  expected = m.expect;
  answer();
});
