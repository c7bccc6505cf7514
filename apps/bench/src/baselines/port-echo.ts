/**
 * Worker: the far end of the raw MessagePort baseline. It sends every message
 * straight back (transferring its buffer, as Moat's kernel does) and bumps
 * the wake word a blocked sender sleeps on, as the kernel worker's post() does.
 */
import { workerData, type MessagePort } from 'node:worker_threads';

const { port, signal } = workerData as { port: MessagePort; signal: SharedArrayBuffer };
const wake = new Int32Array(signal);
port.on('message', (m: Uint8Array) => {
  port.postMessage(m, [m.buffer as ArrayBuffer]);
  Atomics.add(wake, 0, 1);
  Atomics.notify(wake, 0);
});
// When the sender's worker ends its port closes; closing ours lets this worker end too.
port.on('close', () => port.close());
