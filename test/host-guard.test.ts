/** A domain's SIGUSR1 must not open the host's inspector (Node 20 would, and then any domain could run code in the host). */
import inspector from 'node:inspector';
import { describe, expect, it } from 'vitest';
import { hostGuard, Machine } from '@moat/sim';

const program = new URL('./fixtures/programs/sigusr1.mjs', import.meta.url);

/** Waits, a turn of the event loop at a time, until the host has handled `n` SIGUSR1s. */
async function handled(n: number): Promise<void> {
  const until = Date.now() + 10_000;
  while (hostGuard.sigusr1 < n && Date.now() < until) await new Promise((r) => setTimeout(r, 5));
}

describe('the host guards its inspector', () => {
  it.each(['worker', 'process'] as const)('a %s domain sending SIGUSR1 to the host does not open the inspector', async (isolation) => {
    const machine = new Machine({ name: 'm' });
    try {
      const before = hostGuard.sigusr1;
      const d = await machine.spawn({ name: 'signaller', program, isolation });
      const out = await d.outcome;
      expect(out.status, out.error).toBe('returned');
      await handled(before + 1);
      expect(hostGuard.sigusr1).toBe(before + 1);
      expect(inspector.url()).toBeUndefined();
    } finally {
      await machine.shutdown();
    }
  });
});
