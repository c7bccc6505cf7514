/**
 * Lockstep (issue 5): a scenario run in lockstep gives the same event log,
 * and so the same hash, every time for one seed; the default mode is untouched.
 */
import { describe, expect, it } from 'vitest';
import { LIBRARY, otaIsolation } from '@moat/examples';
import { defineScenario, type ArgsContext, type ScenarioReport } from '@moat/sim';

const program = (name: string) => new URL(`./fixtures/programs/${name}.mjs`, import.meta.url);

/** UDP echoes and a TCP transfer on one machine, how much of each following from the seed. */
const scenario = defineScenario({
  name: 'lockstep-mix',
  description: 'a UDP echo pair and a TCP pair on one machine, their traffic sized by the seed',
  machines: [{ name: 'm' }],
  domains: [
    { name: 'echo', machine: 'm', program: program('udp-echo'), args: { port: 7000 }, awaited: false, shutdownMs: 10_000 },
    { name: 'sink', machine: 'm', program: program('tcp-server'), args: { port: 8000 } },
    { name: 'pinger', machine: 'm', program: program('echo-client'), args: ({ seed }: ArgsContext) => ({ server: { addr: '127.0.0.1', port: 7000 }, count: 3 + (seed % 5) }), startAfter: { domain: 'echo', log: '^listening' } },
    { name: 'source', machine: 'm', program: program('tcp-client'), args: ({ seed }: ArgsContext) => ({ server: '127.0.0.1', port: 8000, bytes: 50_000 + 7_000 * seed }), startAfter: { domain: 'sink', log: '^listening' } },
  ],
  expect: [
    { name: 'every echo intact', check: (run) => (run.outcomes.pinger?.value as { intact: number } | undefined)?.intact === 3 + (run.seed % 5) },
    { name: 'the stream arrived intact', check: (run) => (run.outcomes.source?.value as { intact: boolean } | undefined)?.intact === true },
  ],
  timeoutMs: 30_000,
});

const events = (r: ScenarioReport) => r.timeline!.events.filter((e) => e.kind === 'syscall').length;

describe('lockstep', () => {
  it('gives the same event log hash on every run of a seed, and another for another seed', async () => {
    const runs: ScenarioReport[] = [];
    for (let i = 0; i < 3; i++) runs.push(await scenario.run({ seed: 7, lockstep: true }));
    for (const r of runs) {
      expect(r.verdicts.filter((v) => !v.pass)).toEqual([]);
      expect(r.timeline!.dropped).toBe(0);
    }
    const hashes = runs.map((r) => r.timeline!.hash);
    console.log(`lockstep seed 7: ${hashes.join(' ')} (${events(runs[0]!)} syscall events)`);
    expect(hashes[1]).toBe(hashes[0]);
    expect(hashes[2]).toBe(hashes[0]);
    // Not only the hash: times are virtual, so the whole timeline repeats.
    expect(runs[1]!.timeline!.events.map((e) => [e.ts, e.name])).toEqual(runs[0]!.timeline!.events.map((e) => [e.ts, e.name]));

    const other = await scenario.run({ seed: 8, lockstep: true });
    expect(other.passed).toBe(true);
    console.log(`lockstep seed 8: ${other.timeline!.hash}`);
    expect(other.timeline!.hash).not.toBe(hashes[0]);
    expect((await scenario.run({ seed: 8, lockstep: true })).timeline!.hash).toBe(other.timeline!.hash);
  }, 120_000);

  it('leaves the default mode as it was', async () => {
    const report = await scenario.run({ seed: 7 });
    expect(report.passed).toBe(true);
    console.log(`default seed 7: ${report.timeline!.hash}`);
  }, 60_000);

  it('plans a timed kill on the virtual clock', async () => {
    const killed = defineScenario({
      name: 'lockstep-kill',
      description: 'a reader parked on a socket, killed 250 virtual ms in',
      machines: [{ name: 'm' }],
      domains: [{ name: 'reader', machine: 'm', program: program('udp-echo'), args: { port: 7001 }, awaited: true }],
      faults: [{ domain: 'reader', kind: 'kill', afterMs: 250 }],
      timeoutMs: 20_000,
    });
    const a = await killed.run({ lockstep: true });
    const b = await killed.run({ lockstep: true });
    expect(a.domains[0]!.status).toBe('killed');
    expect(a.domains[0]!.error).toBe('fault: kill after 250 ms');
    expect(b.timeline!.hash).toBe(a.timeline!.hash);
    const kill = a.timeline!.events.find((e) => e.name === 'fault');
    expect(kill?.ts).toBe(a.timeline!.events.find((e) => e.name === 'attach')!.ts + 250_000);
  }, 60_000);

  it('repeats two machines across a lossy link, frames and faults included', async () => {
    const linked = defineScenario({
      name: 'lockstep-link',
      description: 'a TCP transfer and UDP echoes from one machine to another across a link that loses, reorders and corrupts',
      machines: [
        { name: 'client', interfaces: [{ name: 'eth0', addr: '10.1.0.1/24' }] },
        { name: 'server', interfaces: [{ name: 'eth0', addr: '10.1.0.2/24' }] },
      ],
      links: [{ between: ['client.eth0', 'server.eth0'], faults: { latencyMs: 1, jitterMs: 1, loss: 0.03, reorder: 0.02, duplicate: 0.01, corrupt: 0.01 } }],
      domains: [
        { name: 'echo', machine: 'server', program: program('udp-echo'), args: { port: 7000 }, awaited: false },
        { name: 'sink', machine: 'server', program: program('tcp-server'), args: { port: 8000 } },
        { name: 'pinger', machine: 'client', program: program('echo-client'), args: { server: { addr: '10.1.0.2', port: 7000 }, count: 4 }, startAfter: { domain: 'echo', log: '^listening' } },
        { name: 'source', machine: 'client', program: program('tcp-client'), args: ({ seed }: ArgsContext) => ({ server: '10.1.0.2', port: 8000, bytes: 200_000 + 10_000 * seed }), startAfter: { domain: 'sink', log: '^listening' } },
      ],
      expect: [{ name: 'the stream arrived intact', check: (run) => (run.outcomes.source?.value as { intact: boolean } | undefined)?.intact === true }],
      timeoutMs: 30_000,
    });
    const a = await linked.run({ seed: 3, lockstep: true });
    const b = await linked.run({ seed: 3, lockstep: true });
    expect(a.passed).toBe(true);
    const link = a.links![0]!.stats;
    // The link did its worst, and the transfer recovered from it, the same way both times.
    expect(link.lost).toBeGreaterThan(0);
    expect(b.links![0]!.stats).toEqual(link);
    const frames = (r: ScenarioReport) => r.timeline!.events.filter((e) => e.kind === 'packet').length;
    console.log(`lockstep two machines, seed 3: ${a.timeline!.hash} (${frames(a)} frame events, ${link.lost} lost)`);
    expect(frames(a)).toBeGreaterThan(100);
    expect(b.timeline!.hash).toBe(a.timeline!.hash);
    expect(b.timeline!.events.map((e) => [e.ts, e.track, e.name])).toEqual(a.timeline!.events.map((e) => [e.ts, e.track, e.name]));
  }, 120_000);

  it('restarts a domain after its backoff in virtual time', async () => {
    const restarting = defineScenario({
      name: 'lockstep-restart',
      description: 'a domain that crashes, restarted on failure twice with a doubling backoff',
      machines: [{ name: 'm' }],
      domains: [{ name: 'crashy', machine: 'm', program: program('crashy'), args: { crash: true }, restart: { when: 'on-failure', max: 2, backoffMs: 400 } }],
      timeoutMs: 20_000,
    });
    const a = await restarting.run({ lockstep: true });
    const b = await restarting.run({ lockstep: true });
    expect(a.domains[0]!.restarts).toBe(2);
    expect(b.timeline!.hash).toBe(a.timeline!.hash);
    // Each life attaches its backoff after the last one's exit, to the virtual microsecond: 400 ms, then 800.
    const at = (name: string) => a.timeline!.events.filter((e) => e.name === name).map((e) => e.ts);
    const [exits, attaches] = [at('exit'), at('attach')];
    expect(attaches).toHaveLength(3);
    expect(attaches[1]! - exits[0]!).toBe(400_000);
    expect(attaches[2]! - exits[1]!).toBe(800_000);
  }, 60_000);

  it("gives a worker domain's clocks the virtual time", async () => {
    const clocks = defineScenario({
      name: 'lockstep-clock',
      description: 'a domain that reads performance.now(), Date.now() and new Date() around sleeps in the kernel',
      machines: [{ name: 'm' }],
      domains: [{ name: 'reader', machine: 'm', program: program('clock-reader'), args: { sleeps: [5, 250, 1] } }],
      timeoutMs: 20_000,
    });
    type Seen = { seen: { slept: number; now: number; dateNow: number; date: string }[]; fixed: string };
    const values = async () => (await clocks.run({ lockstep: true })).domains[0]!.summary as unknown as Seen;
    const [a, b] = [await values(), await values()];
    expect(b).toEqual(a);
    // Exactly the sleeps asked for, on a clock that starts with the run; Date reads the same time from 2000-01-01.
    expect(a.seen.map((s) => s.slept)).toEqual([5, 250, 1]);
    expect(a.seen.map((s) => s.now)).toEqual([5, 255, 256]);
    expect(a.seen[1]!.dateNow).toBe(Date.UTC(2000, 0, 1) + 255);
    expect(a.seen[2]!.date).toBe('2000-01-01T00:00:00.256Z');
    expect(a.fixed).toBe('1970-01-01T00:00:00.000Z');
  }, 60_000);

  // Deaths with a receive parked (the kernel must not take a domain that runs on for one that waits), an async
  // flood (rest notices), startAfter lines logged only after a round trip over the link (log notices), and the OTA.
  const repeated = ['crash-mid-transfer', 'oom-mid-transfer', 'syscall-flood', 'buffer-exhaustion'];
  for (const name of repeated) {
    it(`repeats the library's ${name} in lockstep`, async () => {
      const scenario = LIBRARY.find((s) => s.name === name)!;
      const [a, b] = [await scenario.run({ seed: 4, lockstep: true }), await scenario.run({ seed: 4, lockstep: true })];
      expect(a.verdicts.filter((v) => !v.pass)).toEqual([]);
      expect(b.timeline!.hash).toBe(a.timeline!.hash);
    }, 120_000);
  }

  it('repeats ota-isolation in lockstep, and another seed differs', async () => {
    const ota = otaIsolation({ imageBytes: 1 << 20 });
    const [a, b, c] = [await ota.run({ seed: 6, lockstep: true }), await ota.run({ seed: 6, lockstep: true }), await ota.run({ seed: 7, lockstep: true })];
    expect(a.passed).toBe(true);
    expect(c.passed).toBe(true);
    console.log(`lockstep ota-isolation seed 6: ${a.timeline!.hash}; seed 7: ${c.timeline!.hash}`);
    expect(b.timeline!.hash).toBe(a.timeline!.hash);
    expect(c.timeline!.hash).not.toBe(a.timeline!.hash);
  }, 180_000);
});
