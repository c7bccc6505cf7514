/**
 * Real kernel and domain workers: the channel's two APIs, and containment of
 * every way a domain can die.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Errno } from '@moat/abi';
import { Machine } from '@moat/sim';

const program = (name: string) => new URL(`./fixtures/programs/${name}.mjs`, import.meta.url);
let machine: Machine | undefined;
afterEach(async () => {
  await machine?.shutdown();
  machine = undefined;
});

/** Resolves once the kernel reports `pred` true of its stats (each check waits for a kernel round trip). */
async function kernelReaches(m: Machine, pred: (s: Awaited<ReturnType<Machine['stats']>>) => boolean): Promise<void> {
  for (let i = 0; i < 10_000; i++) if (pred(await m.stats())) return;
  throw new Error('kernel never reached the expected state');
}

describe('the syscall channel from a real domain worker', () => {
  it('serves the blocking and the promise API through the same validation', async () => {
    machine = new Machine();
    const d = await machine.spawn({ name: 'apis', program: program('apis') });
    const out = await d.outcome;
    expect(out.status, out.error).toBe('returned');
    expect(out.value).toMatchObject({
      viaAsync: 'async',
      viaSync: 'sync',
      ready: [1],
      syncError: Errno.EBADF,
      asyncError: 'EBADF',
      envKeys: [],
      workerDataKeys: ['args', 'name', 'port', 'program', 'signal'],
    });
    expect(out.final?.accounting).toEqual({ handles: 0, grantedHandles: 0, sockets: 0, buffers: 0, bufferBytes: 0, streamBytes: 0, pendingCalls: 0 });
  });
});

describe('containment: a domain dies, the kernel releases all it held, peers see it', () => {
  const cases: [mode: string, status: string, how: 'trigger' | 'kill' | 'trigger-then-kill', extra?: object][] = [
    ['throw', 'threw', 'trigger'],
    ['exit', 'exited', 'trigger'],
    ['oom', 'out-of-memory', 'trigger', { resourceLimits: { maxOldGenerationSizeMb: 24 } }],
    ['hang', 'killed', 'trigger-then-kill'],
    ['block', 'killed', 'kill'],
  ];
  it.each(cases)('%s ends it as %s; nothing leaks; its grantee, blocked, gets ECONNRESET', async (mode, status, how, extra) => {
    const m = (machine = new Machine());
    const reader = await m.spawn({ name: 'reader', program: program('reader'), args: { port: 9300 } });
    await reader.waitForLog(/listening/);
    const victim = await m.spawn({ name: 'victim', program: program('victim'), args: { port: 9301, readerPort: 9300, mode }, ...extra });
    await reader.waitForLog(/blocking/);
    // Both are parked in the kernel: the reader on the granted socket, the victim on its control socket.
    await kernelReaches(m, (s) => s.domains.filter((d) => d.alive && d.accounting.pendingCalls === 1).length === 2);
    if (how !== 'kill') await (await m.spawn({ name: 'trigger', program: program('trigger'), args: { port: 9301 } })).outcome;
    if (how !== 'trigger') await victim.kill('watchdog');
    const out = await victim.outcome;
    expect(out.status, out.error).toBe(status);
    expect(out.final?.accounting).toEqual({ handles: 0, grantedHandles: 0, sockets: 0, buffers: 0, bufferBytes: 0, streamBytes: 0, pendingCalls: 0 });
    const r = await reader.outcome;
    expect(r.value).toEqual({ drained: 4, ended: 'ECONNRESET', after: 'EBADF' });
    const stats = await m.stats();
    expect(stats.leaks).toEqual([]);
    expect(stats.internalErrors).toBe(0);
    expect(stats.pool.inUseBuffers).toBe(0);
    // The kernel still serves a newcomer.
    const after = await (await m.spawn({ name: 'apis', program: program('apis') })).outcome;
    expect(after.status, after.error).toBe('returned');
  });
});
