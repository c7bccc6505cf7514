/** A scenario run's timeline: recorded by the kernels, merged on the host, readable by the Chrome trace. */
import { describe, expect, it } from 'vitest';
import { defineScenario, timelineHash, toChromeTrace, type ScenarioReport } from '@moat/sim';

const program = (name: string) => new URL(`./fixtures/programs/${name}.mjs`, import.meta.url);

const scenario = defineScenario({
  name: 'traced',
  description: 'a TCP client on one machine sends to a server on another across a link, and a UDP echo pair shares the client machine',
  machines: [
    { name: 'a', interfaces: [{ name: 'eth0', addr: '10.0.0.1/24' }] },
    { name: 'b', interfaces: [{ name: 'eth0', addr: '10.0.0.2/24' }] },
  ],
  links: [{ between: ['a.eth0', 'b.eth0'] }],
  domains: [
    { name: 'server', machine: 'b', program: program('tcp-server'), args: { port: 5000 } },
    { name: 'client', machine: 'a', program: program('tcp-client'), args: { server: '10.0.0.2', port: 5000, bytes: 50_000 }, startAfter: { domain: 'server', log: '^listening' } },
    { name: 'echo', machine: 'a', program: program('udp-echo'), args: { port: 7000 }, awaited: false },
    { name: 'pinger', machine: 'a', program: program('echo-client'), args: { server: { addr: '127.0.0.1', port: 7000 }, count: 3 }, startAfter: { domain: 'echo', log: '^listening' } },
  ],
  timeoutMs: 30_000,
});

describe('the timeline of a scenario run', () => {
  let report: ScenarioReport;

  it('holds every domain’s calls, their lifecycles, both kernels’ transitions and frames, in time order', async () => {
    report = await scenario.run({ seed: 5 });
    expect(report.passed).toBe(true);
    const tl = report.timeline!;
    expect(tl.dropped).toBe(0);
    const events = tl.events;
    for (const d of ['server', 'client', 'echo', 'pinger']) {
      const calls = events.filter((e) => e.track === d && e.kind === 'syscall');
      expect(calls.length, d).toBeGreaterThan(0);
      for (const c of calls) {
        expect(c.args?.result === 'OK' || /^E[A-Z]+$/.test(String(c.args?.result))).toBe(true);
        expect(c.dur).toBeGreaterThanOrEqual(0);
      }
      const lifecycle = events.filter((e) => e.track === d && e.kind === 'lifecycle').map((e) => e.name);
      expect(lifecycle[0], d).toBe('attach');
      expect(lifecycle, d).toContain('detach');
      expect(lifecycle, d).toContain('exit');
    }
    expect(events.find((e) => e.track === 'client' && e.name === 'connect')?.args).toMatchObject({ result: 'OK' });
    // The client's blocking send spans the transfer: the kernel held it while TCP took the data.
    expect(events.find((e) => e.track === 'client' && e.name === 'sendto')!.dur).toBeGreaterThan(0);
    for (const m of ['a', 'b']) {
      const mine = events.filter((e) => e.track === `kernel:${m}`);
      expect(mine.some((e) => e.kind === 'transition' && e.name === 'SYN_SENT -> ESTABLISHED') || mine.some((e) => e.kind === 'transition' && e.name === 'SYN_RECEIVED -> ESTABLISHED')).toBe(true);
      expect(mine.some((e) => e.kind === 'packet' && e.args?.iface === 'eth0' && e.args?.proto === 'tcp')).toBe(true);
    }
    expect(events.some((e) => e.kind === 'packet' && e.args?.iface === 'lo' && e.args?.proto === 'udp')).toBe(true);
    // One clock: merged in time order, none before the run began or after it ended.
    for (let i = 1; i < events.length; i++) expect(events[i]!.ts).toBeGreaterThanOrEqual(events[i - 1]!.ts);
    expect(events[0]!.ts).toBeGreaterThanOrEqual(0);
    expect(events.at(-1)!.ts).toBeLessThanOrEqual(report.durationMs * 1000);
    // A client's SYN leaves machine a before machine b receives it.
    const syn = (m: string, dir: string) => events.find((e) => e.track === `kernel:${m}` && e.args?.dir === dir && e.args?.flags === 'S')!;
    expect(syn('a', 'tx').ts).toBeLessThan(syn('b', 'rx').ts);
    expect(tl.hash).toBe(timelineHash(events));
    expect(tl.hash).toMatch(/^[0-9a-f]{64}$/);
  });

  it('survives JSON and becomes a Chrome trace', () => {
    const again = JSON.parse(JSON.stringify(report)) as ScenarioReport;
    const trace = toChromeTrace(again);
    expect(trace.otherData.events).toBe(report.timeline!.events.length);
    expect(trace.otherData.hash).toBe(report.timeline!.hash);
    const threads = new Map(trace.traceEvents.filter((e) => e.name === 'thread_name').map((e) => [e.tid, String(e.args?.name)]));
    const spans = trace.traceEvents.filter((e) => e.ph === 'X');
    expect(spans.length).toBe(report.timeline!.events.filter((e) => e.kind === 'syscall').length);
    for (const d of ['server', 'client', 'echo', 'pinger']) expect(spans.some((e) => threads.get(e.tid)?.startsWith(d))).toBe(true);
    expect(trace.traceEvents.some((e) => e.cat === 'transition' && threads.get(e.tid) === 'kernel:b')).toBe(true);
  });
});
