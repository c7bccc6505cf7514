/**
 * Worker: one end of the raw SharedArrayBuffer + Atomics baseline, the
 * cheapest way two threads can signal each other. Word 0 carries the request
 * number, word 1 the echoed reply. The echo sleeps in Atomics.wait between
 * requests (as Moat's kernel worker sleeps in its event loop); the pinger
 * blocks as Moat's synchronous path does (spin, then wait).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { timeSync } from '../measure.js';
import { waitForChange } from './spin.js';

interface SabArgs {
  role: 'ping' | 'echo';
  signal: SharedArrayBuffer;
  warmup: number;
  iterations: number;
}

const STOP = -1;
const { role, signal, warmup, iterations } = workerData as SabArgs;
const word = new Int32Array(signal);

if (role === 'echo') {
  for (let last = 0; ; ) {
    Atomics.wait(word, 0, last);
    last = Atomics.load(word, 0);
    if (last === STOP) break;
    Atomics.store(word, 1, last);
    Atomics.notify(word, 1);
  }
} else {
  let n = 0;
  const samples = timeSync(warmup, iterations, () => {
    const request = ++n;
    Atomics.store(word, 0, request);
    Atomics.notify(word, 0);
    for (let seen = Atomics.load(word, 1); seen !== request; seen = Atomics.load(word, 1)) waitForChange(word, 1, seen);
  });
  Atomics.store(word, 0, STOP);
  Atomics.notify(word, 0);
  parentPort!.postMessage(samples);
}
