/**
 * Child process: the client end of the Node `net` idle-connection baseline,
 * in a process of its own because both ends of 10,000 connections (20,000
 * descriptors) do not fit one process's limit. On `{ open, port, depth }`
 * it opens that many more connections, `depth` connects in flight, and
 * answers how many it holds; on `{ memory }` it collects its garbage (it
 * runs with --expose-gc) and answers its rss; on `{ exit }` it ends.
 */
import net from 'node:net';

type Request = { open: number; port: number; depth: number } | { memory: true } | { exit: true };

const held: net.Socket[] = [];

function connect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ port, host: '127.0.0.1' });
    sock.once('error', reject);
    sock.once('connect', () => resolve(sock));
  });
}

async function open(n: number, port: number, depth: number): Promise<void> {
  let started = 0;
  const lane = async () => {
    while (started < n) {
      started++;
      held.push(await connect(port));
    }
  };
  await Promise.all(Array.from({ length: Math.min(depth, n) }, lane));
}

process.on('message', (m: Request) => {
  if ('open' in m) {
    const t = performance.now();
    open(m.open, m.port, m.depth).then(
      () => process.send!({ held: held.length, ms: performance.now() - t }),
      (err: Error) => process.send!({ error: err.message }),
    );
  } else if ('memory' in m) {
    (globalThis as { gc?: () => void }).gc?.();
    process.send!({ rss: process.memoryUsage().rss });
  } else {
    for (const s of held) s.destroy();
    process.disconnect();
  }
});
process.send!({ ready: true });
