/**
 * The send ring and read-ahead (issue 6): a domain's blocking sends on its
 * own streams go through its channel's send ring, and its recvs take what
 * the kernel reads ahead; the stream must stay the stream, errors must still
 * reach the program, and junk in the ring must hurt only its writer.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Machine } from '@moat/sim';

const program = (name: string) => new URL(`./fixtures/programs/${name}.mjs`, import.meta.url);
let stop: (() => Promise<void>) | undefined;
afterEach(async () => {
  await stop?.();
  stop = undefined;
});

async function pair(server: string, serverArgs: object, clientArgs: object, client = 'batch-sender') {
  const m = new Machine();
  stop = () => m.shutdown();
  const s = await m.spawn({ name: 'server', program: program(server), args: { port: 5000, ...serverArgs } });
  await s.waitForLog(/listening/);
  const c = await m.spawn({ name: 'client', program: program(client), args: { port: 5000, ...clientArgs } });
  const [co, so] = await Promise.all([c.outcome, s.outcome]);
  const stats = await m.stats();
  const domain = (name: string) => stats.domains.find((d) => d.name === name)!;
  return { client: co, server: so, stats, domain };
}

// Sizes around the ring's record limit (64 KiB), a send larger than a whole record, and small ones.
const SIZES = [1, 100, 65_535, 65_536, 65_537, 200_000, 3, 8191, 131_072];

describe('send ring and read-ahead', () => {
  it('carry a stream of every send size intact and in order, most of it batched', async () => {
    const { client, server, stats, domain } = await pair('tcp-server', {}, { bytes: 6 << 20, sizes: SIZES });
    expect(client.status, client.error).toBe('returned');
    expect(server.status, server.error).toBe('returned');
    expect(client.value).toMatchObject({ sent: 6 << 20, intact: true, eof: true });
    expect(domain('client').batched.ringSends).toBeGreaterThan(10);
    expect(domain('server').batched.readAheadBytes).toBeGreaterThan(0);
    expect(domain('client').bytes.sent).toBe(6 << 20);
    expect(stats.internalErrors).toBe(0);
    expect(stats.leaks).toEqual([]);
  });

  it('serve small recvs, peeks and polls from what was read ahead, consistently with the stream', async () => {
    const { client, server, domain } = await pair('batch-reader', {}, { bytes: 1 << 20, sizes: SIZES });
    expect(client.status, client.error).toBe('returned');
    expect(client.value).toMatchObject({ sent: 1 << 20, intact: true });
    expect(server.value).toEqual({ bytes: 1 << 20, peekMismatches: 0, pollLies: 0 });
    expect(domain('server').batched.readAheadBytes).toBeGreaterThan(0);
  });

  it('report an error a queued send met to a later send on the handle, which then fails as a call would', async () => {
    const { client, stats, domain } = await pair('rst-server', { readBytes: 100_000 }, { bytes: 256 << 20, sizes: [65_536], untilError: true });
    expect(client.status, client.error).toBe('returned');
    const { error, sent } = client.value as { error: string; sent: number };
    expect(['ECONNRESET', 'EPIPE']).toContain(error);
    expect(sent).toBeLessThan(256 << 20);
    expect(domain('client').batched.ringSends).toBeGreaterThan(0);
    expect(stats.internalErrors).toBe(0);
    expect(stats.leaks).toEqual([]);
  });

  it('break only the ring of a domain that writes junk into it: its calls go on, counted as malformed once', async () => {
    const { client, server, stats, domain } = await pair('tcp-server', {}, {}, 'ring-vandal');
    expect(client.status, client.error).toBe('returned');
    expect(client.value).toEqual({ sent: 80_000, replied: 32 });
    expect((server.value as { bytes: number }).bytes).toBe(80_000);
    expect(domain('client').malformed).toBe(1);
    expect(domain('client').batched.ringSends).toBe(0);
    expect(stats.lastMalformed).toMatch(/client: send ring/);
    expect(stats.internalErrors).toBe(0);
    expect(stats.leaks).toEqual([]);
  });
});
