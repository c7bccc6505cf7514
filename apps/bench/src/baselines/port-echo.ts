/**
 * Worker: the far end of the raw MessagePort baselines. It sends every
 * message straight back on the port it came from (copied, as Moat's kernel
 * posts a small frame: see COPY_FRAME_MAX_BYTES in @moat/abi) and bumps
 * that sender's wake word, which a blocked sender sleeps on, as the kernel
 * worker's post() does. One echo thread
 * serves one sender, or several at once as one kernel serves many domains.
 */
import { workerData, type MessagePort } from 'node:worker_threads';

const { peers } = workerData as { peers: { port: MessagePort; signal: SharedArrayBuffer }[] };
for (const { port, signal } of peers) {
  const wake = new Int32Array(signal);
  port.on('message', (m: Uint8Array) => {
    port.postMessage(m);
    Atomics.add(wake, 0, 1);
    Atomics.notify(wake, 0);
  });
  // When a sender's worker ends its port closes; closing ours lets this worker end once all have.
  port.on('close', () => port.close());
}
