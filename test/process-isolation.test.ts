/**
 * Process domains (isolation 'process'): the same channel over pipes, the
 * same containment as a worker's, what Node's permission model refuses them,
 * and that no child outlives its machine.
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Errno } from '@moat/abi';
import { Machine, PERMISSION_FLAG, type Isolation } from '@moat/sim';

const program = (name: string) => new URL(`./fixtures/programs/${name}.mjs`, import.meta.url);
const RELEASED = { handles: 0, grantedHandles: 0, sockets: 0, buffers: 0, bufferBytes: 0, streamBytes: 0, pendingCalls: 0 };
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

/** Nothing leaked, no kernel bug, every buffer back in the pool. */
async function expectClean(m: Machine): Promise<void> {
  const stats = await m.stats();
  expect(stats.leaks).toEqual([]);
  expect(stats.internalErrors).toBe(0);
  expect(stats.pool.inUseBuffers).toBe(0);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return false;
    throw err;
  }
}

describe('the syscall channel over a process domain’s pipes', () => {
  it.each<Isolation>(['worker', 'process'])('a %s domain exchanges UDP with a worker domain, blocking and promise calls at once', async (isolation) => {
    const m = (machine = new Machine());
    const echo = await m.spawn({ name: 'echo', program: program('udp-echo'), args: { port: 7007 } });
    await echo.waitForLog(/listening/);
    const client = await m.spawn({ name: 'client', program: program('pipe-client'), args: { port: 7007 }, isolation });
    expect(client.isolation).toBe(isolation);
    const out = await client.outcome;
    expect(out.status, out.error).toBe('returned');
    expect(out.value).toMatchObject({
      viaSync: 'sync',
      viaAsync: 'async',
      inFlight: ['n1', 'n2', 'n3', 'n4', 'n5'],
      bigIntact: true,
      syncError: Errno.EBADF,
      asyncError: 'EBADF',
      envKeys: [],
    });
    const seen = out.value as { isMainThread: boolean; hasWorkerData: boolean; pid: number };
    if (isolation === 'process') {
      // Its own process: the main thread of a pid that is not the host's, with no workerData.
      expect(seen).toMatchObject({ isMainThread: true, hasWorkerData: false, pid: client.pid });
      expect(seen.pid).not.toBe(process.pid);
    } else expect(seen).toMatchObject({ isMainThread: false, hasWorkerData: true, pid: process.pid });
    expect(out.final?.accounting).toEqual(RELEASED);
    expect((await echo.outcome).value).toEqual({ echoed: 8 });
    await expectClean(m);
  });

  it('answers hostile raw frames from a process exactly as from a worker', async () => {
    const m = (machine = new Machine());
    const answers = [];
    for (const isolation of ['worker', 'process'] as const) {
      const out = await (await m.spawn({ name: `raw-${isolation}`, program: program('raw-frames'), isolation })).outcome;
      expect(out.status, out.error).toBe('returned');
      expect(out.final?.accounting).toEqual(RELEASED);
      answers.push(out.value);
    }
    expect(answers[1]).toEqual(answers[0]);
    const { answers: got } = answers[1] as { answers: [number, number][] };
    expect(got[3]).toEqual([10, Errno.EMSGSIZE]); // 2 MiB announced: refused by the kernel, not the bridge
    expect(got[6]).toEqual([0, Errno.EINVAL]); // a value that is not bytes
    expect(got.at(-1)).toEqual([7, 0]);
    await expectClean(m);
  });

  it('a kernel oops stops a process domain as it stops a worker', async () => {
    const m = (machine = new Machine({ malformedLimit: 3 }));
    const out = await (await m.spawn({ name: 'raw', program: program('raw-frames'), isolation: 'process' })).outcome;
    expect(out.status).toBe('killed');
    expect(out.error).toMatch(/kernel oops: 3 malformed frames/);
    expect(out.signal).toBe('SIGKILL');
    expect(out.final?.accounting).toEqual(RELEASED);
    await expectClean(m);
  });

  it('refuses options a child cannot honour, before the kernel hears of the domain', async () => {
    const m = (machine = new Machine());
    const spec = { name: 'x', program: program('spin') };
    await expect(m.spawn({ ...spec, isolation: 'process', resourceLimits: { stackSizeMb: 8 } })).rejects.toThrow(/stackSizeMb cannot be applied to a child process/);
    await expect(m.spawn({ ...spec, allowFsRead: ['/'] })).rejects.toThrow(/allowFsRead applies to isolation 'process' only/);
    await expect(m.spawn({ ...spec, isolation: 'thread' as Isolation })).rejects.toThrow(/isolation must be 'worker' or 'process'/);
    expect((await m.stats()).domains).toEqual([]);
  });
});

describe('containment: a process domain dies, the kernel releases all it held, peers see it', () => {
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
    const victim = await m.spawn({ name: 'victim', program: program('victim'), args: { port: 9301, readerPort: 9300, mode }, isolation: 'process', ...extra });
    await reader.waitForLog(/blocking/);
    // Both are parked in the kernel: the reader on the granted socket, the victim (blocked in read(2)) on its control socket.
    await kernelReaches(m, (s) => s.domains.filter((d) => d.alive && d.accounting.pendingCalls === 1).length === 2);
    if (how !== 'kill') await (await m.spawn({ name: 'trigger', program: program('trigger'), args: { port: 9301 } })).outcome;
    if (how !== 'trigger') await victim.kill('watchdog');
    const out = await victim.outcome;
    expect(out.status, out.error).toBe(status);
    if (mode === 'throw') expect(out.error).toBe('victim threw');
    if (mode === 'exit') expect(out.exitCode).toBe(3);
    if (mode === 'oom') expect(out.error).toMatch(/JavaScript heap out of memory/);
    if (status === 'killed') expect(out).toMatchObject({ error: 'watchdog', signal: 'SIGKILL' });
    expect(out.final?.accounting).toEqual(RELEASED);
    expect((await reader.outcome).value).toEqual({ drained: 4, ended: 'ECONNRESET', after: 'EBADF' });
    await expectClean(m);
    // The kernel still serves a newcomer, in a process too.
    const after = await (await m.spawn({ name: 'raw', program: program('raw-frames'), isolation: 'process' })).outcome;
    expect(after.status, after.error).toBe('returned');
  });

  it('a native crash ends only the child; what it published survives; nothing leaks', async () => {
    const m = (machine = new Machine());
    const d = await m.spawn({ name: 'crasher', program: program('abort'), args: { port: 9400 }, isolation: 'process' });
    await d.waitForLog(/waiting/);
    await (await m.spawn({ name: 'trigger', program: program('trigger'), args: { port: 9400 } })).outcome;
    const out = await d.outcome;
    expect(out).toMatchObject({ status: 'exited', signal: 'SIGABRT', error: 'ended by SIGABRT', published: { holding: 3 } });
    expect(out.final?.accounting).toEqual(RELEASED);
    await expectClean(m);
  });

  it.each([
    ['unknown-event', /sent a lifecycle event the host does not know/],
    ['garbage-event', /sent a lifecycle event the host does not know/],
    ['huge-event', /announced a lifecycle event of 1073741823 bytes/],
  ])('the host stops a child that breaks the pipe protocol (%s)', async (mode, reason) => {
    const m = (machine = new Machine());
    const out = await (await m.spawn({ name: 'abuser', program: program('pipe-abuser'), args: { mode }, isolation: 'process' })).outcome;
    expect(out.status).toBe('killed');
    expect(out.error).toMatch(reason);
    expect(out.logs).toEqual(['abusing']);
    expect(out.final?.accounting).toEqual(RELEASED);
    await expectClean(m);
  });

  it('no child outlives its machine: shutdown kills one blocked in a call and one spinning', async () => {
    const m = (machine = new Machine());
    const blocked = await m.spawn({ name: 'reader', program: program('reader'), args: { port: 9500 }, isolation: 'process' });
    const spinning = await m.spawn({ name: 'spin', program: program('spin'), isolation: 'process' });
    await Promise.all([blocked.waitForLog(/listening/), spinning.waitForLog(/spinning/)]);
    const pids = [blocked.pid!, spinning.pid!];
    expect(pids.every(isAlive)).toBe(true);
    await m.shutdown();
    machine = undefined;
    for (const d of [blocked, spinning]) expect(await d.outcome).toMatchObject({ status: 'killed', error: 'machine shutdown', signal: 'SIGKILL' });
    expect(pids.filter(isAlive)).toEqual([]);
  });
});

describe.skipIf(!PERMISSION_FLAG)('the permission model around a process domain', () => {
  let dir: string;
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  /** A directory outside every package, with a file in it to read and a path to write. */
  function probeArgs() {
    dir = mkdtempSync(join(tmpdir(), 'moat-sandbox-'));
    writeFileSync(join(dir, 'secret'), 'host data');
    return { writeTo: join(dir, 'escaped'), readFrom: join(dir, 'secret') };
  }

  it('refuses it file writes, reads outside its packages, child processes and workers; not the network', async () => {
    const m = (machine = new Machine());
    const args = probeArgs();
    const d = await m.spawn({ name: 'probe', program: program('sandbox-probe'), args, isolation: 'process' });
    const out = await d.outcome;
    expect(out.status, out.error).toBe('returned');
    expect(out.value).toEqual({
      write: 'ERR_ACCESS_DENIED',
      read: 'ERR_ACCESS_DENIED',
      childProcess: 'ERR_ACCESS_DENIED',
      worker: 'ERR_ACCESS_DENIED',
      // Node 20's model does not cover the network; a Node with --allow-net refuses it (Moat does not pass the flag).
      udp: process.allowedNodeEnvironmentFlags.has('--allow-net') ? 'ERR_ACCESS_DENIED' : 'allowed',
      fsWrite: false,
    });
    expect(existsSync(args.writeTo)).toBe(false);
    expect(d.permissions?.flag).toBe(PERMISSION_FLAG);
    expect(d.permissions?.fsRead.some((p) => dir.startsWith(p))).toBe(false);
  });

  it('a worker domain has none of those limits', async () => {
    const m = (machine = new Machine());
    const args = probeArgs();
    const out = await (await m.spawn({ name: 'probe', program: program('sandbox-probe'), args })).outcome;
    expect(out.value).toEqual({ write: 'allowed', read: 'allowed', childProcess: 'allowed', worker: 'allowed', udp: 'allowed', fsWrite: null });
    expect(existsSync(args.writeTo)).toBe(true);
  });

  it('allowFsRead lets a process domain read more, and still not write', async () => {
    const m = (machine = new Machine());
    const args = probeArgs();
    const out = await (await m.spawn({ name: 'probe', program: program('sandbox-probe'), args, isolation: 'process', allowFsRead: [dir] })).outcome;
    expect(out.value).toMatchObject({ write: 'ERR_ACCESS_DENIED', read: 'allowed' });
    expect(existsSync(args.writeTo)).toBe(false);
  });
});
