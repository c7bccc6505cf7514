/**
 * Worker: as bare as a worker thread gets, the baseline of a domain's
 * start-up and memory. Its first statement posts the time its code began
 * to run (on the clock every thread shares); then it holds on, doing
 * nothing, until the host tells it to go.
 */
import { parentPort } from 'node:worker_threads';

parentPort!.postMessage(performance.timeOrigin + performance.now());
parentPort!.once('message', () => parentPort!.close());
