/** Two findings of the isolation library: revocation reaches what was granted on, and a newcomer's call does not wait behind a flooder's whole queue. */
import { describe, expect, it } from 'vitest';
import { AF_INET, encodeRequest, MSG_DONTWAIT, Errno, Rights, SOCK_DGRAM, SYS } from '@moat/abi';
import { Kernel } from '../src/index.js';
import { kernelWithDomains } from './harness.js';

describe('revoke', () => {
  it('takes back what the grantee granted on, at any depth', async () => {
    const { kernel, attach } = kernelWithDomains();
    const owner = attach('owner');
    const plugin = attach('plugin');
    const bystander = attach('bystander');
    const [, s] = await owner.call('socket', AF_INET, SOCK_DGRAM, 0);
    await owner.call('bind', s, { addr: '127.0.0.1', port: 7000 });
    const [, g] = await owner.call('grant', s, 'plugin', Rights.READ | Rights.GRANT);
    const [, b] = await plugin.call('grant', g, 'bystander', Rights.READ);
    expect(await owner.call('revoke', s, 'plugin')).toEqual([0, 1]);
    expect((await owner.call('sendto', s, new Uint8Array([42]), 0, { addr: '127.0.0.1', port: 7000 }))[0]).toBe(0);
    expect((await bystander.call('recvfrom', b, 10, MSG_DONTWAIT))[0]).toBe(Errno.EBADF);
    expect((await plugin.call('recvfrom', g, 10, MSG_DONTWAIT))[0]).toBe(Errno.EBADF);
    const stats = kernel.stats().domains;
    expect(stats.find((d) => d.name === 'plugin')!.accounting.grantedHandles).toBe(0);
    expect(stats.find((d) => d.name === 'owner')!.accounting.grantedHandles).toBe(0);
    kernel.shutdown();
  });
});

describe('requests that arrive during a long drain', () => {
  it("are taken between rounds, so a newcomer's call waits a turn, not a flooder's whole queue", async () => {
    const order: string[] = [];
    const kernel = new Kernel();
    const flooder = kernel.attach('flooder', { post: () => order.push('f') }, { maxPendingCalls: 5000 });
    // The quiet domain's request sits on its port: delivered at the next turn of the event loop, or pulled.
    const inbox: Uint8Array[] = [];
    const quiet = kernel.attach('quiet', {
      post: () => order.push('q'),
      pull: () => inbox.splice(0).forEach((m) => kernel.submit(quiet, m)),
    });
    for (let i = 1; i <= 4000; i++) kernel.submit(flooder, encodeRequest(i, SYS.null, []));
    inbox.push(encodeRequest(1, SYS.null, []));
    setImmediate(() => inbox.splice(0).forEach((m) => kernel.submit(quiet, m)));
    while (!order.includes('q')) await new Promise((r) => setImmediate(r));
    // The round it arrived in and the flooder's turn ahead of it in the next (16 each); the whole drain of 64 rounds would be 1,024.
    expect(order.indexOf('q')).toBeLessThanOrEqual(32);
    kernel.shutdown();
  });
});
