/**
 * The entry of a domain child process (isolation 'process'). It holds its two
 * pipes to the host and nothing else: no IPC channel, no environment, no
 * stdin. The host writes an init record first; then the program runs as in a
 * worker, its syscalls and lifecycle events going over the channel pipe.
 */
import { isMainThread } from 'node:worker_threads';
import { deserialize } from 'node:v8';
import { PipeTransport } from './pipe-transport.js';
import type { DomainInit } from './program.js';

if (!isMainThread) throw new Error('@moat/libc process runtime must run as the main thread of a child process');
const transport = new PipeTransport();

// What a worker's 'error' event tells its host, a child says itself before it
// exits: events are blocking writes, so the host has it before the exit. This
// is in place before anything else loads (the rest of libc, the program), so
// a module the permission model will not let it read is reported too.
process.on('uncaughtException', (err) => {
  try {
    transport.sendEvent({ event: 'error', message: describe(err) });
  } finally {
    process.exit(1);
  }
});

const { Channel } = await import('./channel.js');
const { runProgram } = await import('./run.js');
// The first message on the channel pipe is the init record (a structured clone, as a worker's workerData).
const init = deserialize(transport.receiveSync()) as DomainInit;
await runProgram(init, new Channel(transport), (e) => transport.sendEvent(e));

function describe(err: unknown): string {
  const e = err as (Error & { code?: string; permission?: string; resource?: string }) | undefined;
  const message = e?.message ?? String(err);
  // The permission model's own message does not say what was refused.
  return e?.code === 'ERR_ACCESS_DENIED' && e.resource ? `${message}: ${e.permission} ${e.resource}` : message;
}
