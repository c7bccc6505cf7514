/**
 * Allocation failure injected at every point of a workload: whichever
 * allocation fails, the caller that asked gets its errno or drops its frame,
 * and everything it had taken comes back (invariant 6: nothing leaks).
 */
import { describe, expect, it } from 'vitest';
import { AF_INET, IPPROTO_ICMP, MSG_DONTWAIT, SOCK_DGRAM, SOCK_NONBLOCK, SOCK_STREAM } from '@moat/abi';
import { kernelWithDomains, type TestDomain } from './harness.js';
import type { AllocationFault } from '../src/index.js';

const lo = (port: number) => ({ addr: '127.0.0.1', port });
const turn = () => new Promise((r) => setImmediate(r));

/** UDP of three sizes, a ping, and a TCP connection with data both ways, never blocking (a blocking send would wait out the failures); errors are part of the run. */
async function workload(a: TestDomain, b: TestDomain): Promise<{ accepted: boolean; received: number }> {
  const [, ua] = await a.call('socket', AF_INET, SOCK_DGRAM, 0);
  const [, ub] = await b.call('socket', AF_INET, SOCK_DGRAM, 0);
  await a.call('bind', ua, lo(5000));
  await b.call('bind', ub, lo(5001));
  for (const size of [100, 3000, 9000]) await a.call('sendto', ua, new Uint8Array(size).fill(size & 0xff), MSG_DONTWAIT, lo(5001));
  let received = 0;
  for (let i = 0; i < 3; i++) if ((await b.call('recvfrom', ub, 65536, MSG_DONTWAIT))[0] === 0) received++;
  const [, ping] = await a.call('socket', AF_INET, SOCK_DGRAM, IPPROTO_ICMP);
  await a.call('sendto', ping, Uint8Array.from([8, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4]), MSG_DONTWAIT, lo(0));
  await turn();
  await a.call('recvfrom', ping, 100, MSG_DONTWAIT);
  const [, l] = await b.call('socket', AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  await b.call('bind', l, lo(5002));
  await b.call('listen', l, 4);
  const [, c] = await a.call('socket', AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  await a.call('connect', c, lo(5002));
  for (let i = 0; i < 5; i++) await turn();
  const [err, accepted] = await b.call('accept', l);
  await a.call('sendto', c, new Uint8Array(20_000).fill(7), MSG_DONTWAIT, null);
  for (let i = 0; i < 5; i++) await turn();
  if (err === 0) {
    await b.call('recvfrom', accepted[0], 65536, MSG_DONTWAIT);
    await b.call('sendto', accepted[0], new Uint8Array(500), MSG_DONTWAIT, null);
  }
  await a.call('recvfrom', c, 65536, MSG_DONTWAIT);
  return { accepted: err === 0, received };
}

/** Runs the workload on a fresh kernel with `fault`; returns the pool's figures and the kernel's verdict. */
async function run(fault?: AllocationFault) {
  const { kernel, attach } = kernelWithDomains();
  if (fault) kernel.pool.failAllocations(fault);
  const a = attach('a');
  const b = attach('b');
  const done = await workload(a, b);
  const attempts = kernel.pool.stats().allocations + kernel.pool.stats().failures;
  kernel.detach('a', 'done');
  kernel.detach('b', 'done');
  for (let i = 0; i < 3; i++) await turn(); // the resets of their connections go out
  const stats = kernel.stats();
  kernel.shutdown();
  return { attempts, stats, done };
}

describe('allocation failure at every point of a workload', () => {
  it('leaks nothing and errs nowhere, whichever allocation fails, alone or from there on', async () => {
    const clean = await run();
    expect(clean.stats.leaks).toEqual([]);
    expect(clean.done).toEqual({ accepted: true, received: 3 }); // with nothing failing, the whole workload happens
    const total = clean.attempts;
    expect(total).toBeGreaterThan(10); // datagrams, echo request and reply, segments
    let injected = 0;
    for (let at = 1; at <= total; at++) {
      for (const count of [1, 1_000_000]) {
        const { stats } = await run({ at, count });
        injected += stats.pool.injectedFailures;
        expect(stats.internalErrors, `allocation ${at} (x${count}): ${stats.lastInternalError}`).toBe(0);
        expect(stats.leaks, `allocation ${at} (x${count})`).toEqual([]);
        expect(stats.pool.inUseBuffers, `allocation ${at} (x${count})`).toBe(0);
        for (const d of stats.domains) expect(d.accounting, `${d.name}, allocation ${at} (x${count})`).toMatchObject({ buffers: 0, bufferBytes: 0, streamBytes: 0 });
      }
    }
    expect(injected).toBeGreaterThanOrEqual(total);
  }, 120_000);
});
