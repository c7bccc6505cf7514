/** What both domain entries (worker and child process) do once their channel is up. */
import type { Channel } from './channel.js';
import type { DomainEvent, DomainInit, DomainProgram } from './program.js';
import { asyncSockets, syncSockets } from './sockets.js';

/** Loads the program module, runs it, reports its result, and closes the channel. */
export async function runProgram(init: DomainInit, channel: Channel, emit: (e: DomainEvent) => void): Promise<void> {
  const mod = (await import(init.program)) as { default?: DomainProgram };
  if (typeof mod.default !== 'function') throw new Error(`${init.program} has no default export function`);
  const value = await mod.default({
    name: init.name,
    args: init.args,
    sys: syncSockets(channel),
    async: asyncSockets(channel),
    channel,
    log: (message) => {
      channel.logged(message);
      emit({ event: 'log', message });
    },
    publish: (value) => emit({ event: 'publish', value }),
  });
  emit({ event: 'result', value });
  channel.close();
}
