/** TCP between real domain workers: on one machine, and across a lossy simulated link between two kernels. */
import { afterEach, describe, expect, it } from 'vitest';
import { Machine, Network } from '@moat/sim';

const program = (name: string) => new URL(`./fixtures/programs/${name}.mjs`, import.meta.url);
let stop: (() => Promise<void>) | undefined;
afterEach(async () => {
  await stop?.();
  stop = undefined;
});

describe('TCP between domains', () => {
  it('carries 4 MiB over loopback, each byte counted by the server', async () => {
    const m = new Machine();
    stop = () => m.shutdown();
    const server = await m.spawn({ name: 'server', program: program('tcp-server'), args: { port: 5000 } });
    await server.waitForLog(/listening/);
    const client = await m.spawn({ name: 'client', program: program('tcp-client'), args: { server: '127.0.0.1', port: 5000, bytes: 4 << 20 } });
    const [c, s] = await Promise.all([client.outcome, server.outcome]);
    expect(c.status, c.error).toBe('returned');
    expect(s.status, s.error).toBe('returned');
    expect(c.value).toMatchObject({ sent: 4 << 20, intact: true, eof: true });
    expect((s.value as any).bytes).toBe(4 << 20);
    const stats = await m.stats();
    expect(stats.internalErrors).toBe(0);
    expect(stats.leaks).toEqual([]);
  });

  it('carries 1 MiB intact across a link with loss, duplication, reordering and corruption', async () => {
    const net = new Network(5);
    stop = () => net.shutdown();
    const a = net.machine({ name: 'a', interfaces: [{ name: 'eth0', addr: '10.0.0.1/24', mac: '02:00:00:00:00:01' }] });
    const b = net.machine({ name: 'b', interfaces: [{ name: 'eth0', addr: '10.0.0.2/24', mac: '02:00:00:00:00:02' }] });
    await net.link(
      { machine: a, iface: 'eth0' },
      { machine: b, iface: 'eth0' },
      { latencyMs: 1, loss: 0.01, duplicate: 0.01, reorder: 0.01, reorderDelayMs: 2, corrupt: 0.005 },
    );
    const server = await b.spawn({ name: 'server', program: program('tcp-server'), args: { port: 5000 } });
    await server.waitForLog(/listening/);
    const client = await a.spawn({ name: 'client', program: program('tcp-client'), args: { server: '10.0.0.2', port: 5000, bytes: 1 << 20 } });
    const [c, s] = await Promise.all([client.outcome, server.outcome]);
    expect(c.status, c.error).toBe('returned');
    expect(c.value).toMatchObject({ sent: 1 << 20, intact: true, eof: true });
    expect((s.value as any).peer).toBe('10.0.0.1');
    const [sa, sb] = await Promise.all([a.stats(), b.stats()]);
    expect(sa.interfaces[0]!.wire!.lost + sb.interfaces[0]!.wire!.lost).toBeGreaterThan(0);
    for (const st of [sa, sb]) {
      expect(st.internalErrors).toBe(0);
      expect(st.leaks).toEqual([]);
    }
  });
});
