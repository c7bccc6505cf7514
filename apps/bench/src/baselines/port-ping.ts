/**
 * Worker: the sending end of the raw MessagePort baseline, mirroring Moat's
 * domain side call for call. Messages are small byte arrays, posted by copy
 * as Moat's small channel frames are (copying costs a small frame less than
 * transferring its buffer); what Moat adds on top (msgpack, validation, the
 * kernel's scheduling) is what the ratio shows.
 */
import { parentPort, receiveMessageOnPort, workerData, type MessagePort } from 'node:worker_threads';
import { throughput, timeAsync, timeSync, togetherTrials, type Span } from '../measure.js';
import type { NullCallsArgs } from '../programs/null-calls.js';
import { waitForChange } from './spin.js';

const { port, signal, plan } = workerData as { port: MessagePort; signal: SharedArrayBuffer; plan: NullCallsArgs };
/** A null request frame is a few bytes; 8 is as small as any. */
const FRAME_BYTES = 8;

/** Blocking round trip: post, then take the reply off the port, sleeping as Channel.exchangeSync does. */
function syncRoundTrip(): () => void {
  const wake = new Int32Array(signal);
  let frame = new Uint8Array(FRAME_BYTES);
  return () => {
    let seen = Atomics.load(wake, 0);
    port.postMessage(frame);
    for (;;) {
      const reply = receiveMessageOnPort(port);
      if (reply) return void (frame = reply.message as Uint8Array<ArrayBuffer>);
      waitForChange(wake, 0, seen);
      seen = Atomics.load(wake, 0);
    }
  };
}

/** Promise round trip: replies come back in order, so a FIFO of resolvers matches them. */
function asyncRoundTrip(): () => Promise<void> {
  const free: Uint8Array<ArrayBuffer>[] = [];
  const waiting: (() => void)[] = [];
  port.on('message', (frame: Uint8Array<ArrayBuffer>) => {
    free.push(frame);
    waiting.shift()!();
  });
  return () =>
    new Promise((resolve) => {
      waiting.push(resolve);
      const frame = free.pop() ?? new Uint8Array(FRAME_BYTES);
      port.postMessage(frame);
    });
}

let result: Float64Array | number[] | Span[];
if (plan.mode === 'sync') result = timeSync(plan.warmup, plan.iterations, syncRoundTrip());
else if (plan.mode === 'async') result = await timeAsync(plan.warmup, plan.iterations, asyncRoundTrip());
else if (plan.mode === 'in-flight') result = await throughput(plan, asyncRoundTrip());
else result = await togetherTrials(plan, plan.bell, (trial) => parentPort!.postMessage({ ready: trial }), asyncRoundTrip());
port.close();
parentPort!.postMessage(result);
