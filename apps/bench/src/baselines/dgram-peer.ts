/**
 * Worker: one end of the Node dgram baseline on 127.0.0.1, running the same
 * windowed protocol as Moat's UDP domains. The receiver answers its port
 * first, then (at the end) how many datagrams arrived; the sender answers
 * its rounds.
 */
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { parentPort, workerData } from 'node:worker_threads';
import { Receiver, runSender, type UdpPlan } from '../udp-protocol.js';

type PeerArgs = { role: 'receive' } | { role: 'send'; port: number; plan: UdpPlan };

const args = workerData as PeerArgs;
const host = parentPort!;
const sock = createSocket('udp4');
sock.bind(0, '127.0.0.1');
await once(sock, 'listening');

if (args.role === 'receive') {
  const rx = new Receiver();
  sock.on('message', (m, from) => {
    const reply = rx.take(m);
    if (!reply) return;
    sock.send(reply, from.port, from.address, () => {
      if (rx.finished) sock.close(() => host.postMessage(rx.delivered));
    });
  });
  host.postMessage(sock.address().port);
} else {
  const acks: Uint8Array[] = [];
  let wake: (() => void) | undefined;
  sock.on('message', (m) => {
    acks.push(m);
    wake?.();
  });
  const receive = () =>
    new Promise<Uint8Array | undefined>((resolve) => {
      if (acks.length > 0) return resolve(acks.shift());
      const timer = setTimeout(() => ((wake = undefined), resolve(undefined)), args.plan.ackTimeoutMs);
      wake = () => {
        clearTimeout(timer);
        wake = undefined;
        resolve(acks.shift());
      };
    });
  const send = (f: Uint8Array) =>
    new Promise<void>((resolve, reject) => sock.send(f, args.port, '127.0.0.1', (err) => (err ? reject(err) : resolve())));
  const rounds = await runSender({ sendAll: async (frames) => void (await Promise.all(frames.map(send))), receive }, args.plan);
  sock.close(() => host.postMessage(rounds));
}
