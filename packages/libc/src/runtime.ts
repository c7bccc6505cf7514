/**
 * The entry of a domain worker: it holds nothing but its channel, loads the
 * program module it was given, runs it and reports the result to its host.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { Channel } from './channel.js';
import type { DomainEvent, DomainProgram, DomainWorkerData } from './program.js';
import { asyncSockets, syncSockets } from './sockets.js';

if (!parentPort) throw new Error('@moat/libc/runtime must run in a worker thread');
const host = parentPort;
const data = workerData as DomainWorkerData;
const channel = new Channel(data.port, data.signal);
const emit = (e: DomainEvent) => host.postMessage(e);

const mod = (await import(data.program)) as { default?: DomainProgram };
if (typeof mod.default !== 'function') throw new Error(`${data.program} has no default export function`);
const value = await mod.default({
  name: data.name,
  args: data.args,
  sys: syncSockets(channel),
  async: asyncSockets(channel),
  channel,
  log: (message) => emit({ event: 'log', message }),
  publish: (value) => emit({ event: 'publish', value }),
});
emit({ event: 'result', value });
channel.close();
