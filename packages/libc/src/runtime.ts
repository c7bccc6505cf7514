/**
 * The entry of a domain worker: it holds nothing but its channel, loads the
 * program module it was given, runs it and reports the result to its host.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { Channel, PortTransport } from './channel.js';
import type { DomainWorkerData } from './program.js';
import { runProgram } from './run.js';
import { useVirtualClock } from './virtual-clock.js';

if (!parentPort) throw new Error('@moat/libc/runtime must run in a worker thread');
const host = parentPort;
const data = workerData as DomainWorkerData;
// Before the program is loaded, so that not even its top level sees the real time.
if (data.lockstep) useVirtualClock(data.signal);
await runProgram(data, new Channel(new PortTransport(data.port, data.signal, data.lockstep)), (e) => host.postMessage(e));
