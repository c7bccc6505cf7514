import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { toChromeTrace, type ChromeTrace, type ChromeTraceEvent } from '../src/chrome-trace.js';
import { orderedTracks, TIMELINE_KINDS, type TimelineEvent } from '../src/timeline.js';
import { fixtureReport } from './fixture.js';

const key = (e: { pid: number; tid: number }) => `${e.pid}/${e.tid}`;

/** What every trace must satisfy for Perfetto and chrome://tracing to place each event. */
function checkStructure(trace: ChromeTrace): void {
  expect(trace.displayTimeUnit).toBe('ms');
  const threadNames = new Map<string, string>();
  const threadSort = new Set<string>();
  const processNames = new Set<number>();
  for (const e of trace.traceEvents) {
    expect(['M', 'X', 'i']).toContain(e.ph);
    expect(typeof e.name).toBe('string');
    expect(Number.isInteger(e.pid) && e.pid > 0).toBe(true);
    expect(Number.isInteger(e.tid) && e.tid >= 0).toBe(true);
    expect(Number.isFinite(e.ts) && e.ts >= 0).toBe(true);
    if (e.ph === 'M' && e.name === 'thread_name') threadNames.set(key(e), String(e.args!.name));
    if (e.ph === 'M' && e.name === 'thread_sort_index') threadSort.add(key(e));
    if (e.ph === 'M' && e.name === 'process_name') processNames.add(e.pid);
    if (e.ph === 'X') expect(Number.isFinite(e.dur) && e.dur! >= 0).toBe(true);
    if (e.ph === 'i') expect(e.s).toBe('t');
    if (e.ph !== 'M') {
      expect(threadNames.has(key(e)), `thread ${key(e)} of ${e.name} is named before use`).toBe(true);
      expect(threadSort.has(key(e))).toBe(true);
      expect(processNames.has(e.pid)).toBe(true);
    }
  }
  // Tids are unique across the trace and never a pid, so viewers that key threads by tid alone still agree.
  const tids = [...threadNames.keys()].map((k) => k.split('/')[1]);
  expect(new Set(tids).size).toBe(tids.length);
  for (const tid of tids) expect(processNames.has(Number(tid))).toBe(false);
  // Complete events on one thread never partly overlap (viewers only accept nesting).
  const spans = new Map<string, ChromeTraceEvent[]>();
  for (const e of trace.traceEvents) if (e.ph === 'X') spans.set(key(e), [...(spans.get(key(e)) ?? []), e]);
  for (const list of spans.values()) {
    list.sort((a, b) => a.ts - b.ts);
    for (let i = 1; i < list.length; i++) expect(list[i]!.ts).toBeGreaterThanOrEqual(list[i - 1]!.ts + list[i - 1]!.dur!);
  }
}

describe('toChromeTrace', () => {
  const report = fixtureReport();
  const trace = toChromeTrace(report);
  const meta = (name: string) => trace.traceEvents.filter((e) => e.ph === 'M' && e.name === name);

  it('gives every event ph, pid, tid and ts, and names every thread before its events', () => {
    checkStructure(trace);
  });

  it('has a named thread for every track, domains first, and a process per kernel and one for links', () => {
    const names = meta('thread_name').map((e) => e.args!.name);
    const tracks = orderedTracks(['update-server', 'ota', 'third-party'], report.timeline!.events, ['device.eth0 -> server.eth0', 'server.eth0 -> device.eth0']);
    for (const t of tracks) expect(names).toContain(t);
    const sortOf = (name: string) => {
      const thread = meta('thread_name').find((e) => e.args!.name === name)!;
      return meta('thread_sort_index').find((e) => e.tid === thread.tid)!.args!.sort_index as number;
    };
    expect(sortOf('third-party')).toBeLessThan(sortOf('kernel:device'));
    expect(sortOf('kernel:server')).toBeLessThan(sortOf('link:device.eth0 -> server.eth0'));
    expect(meta('process_name').map((e) => e.args!.name)).toEqual(['ota-isolation (seed 7): domains', 'kernel device', 'kernel server', 'links']);
    expect(meta('process_sort_index').map((e) => e.args!.sort_index)).toEqual([1, 2, 3, 4]);
  });

  it('makes spans complete events and the rest thread-scoped instants, keeping name, kind and args', () => {
    const body = trace.traceEvents.filter((e) => e.ph !== 'M' && e.cat !== 'verdict');
    expect(body).toHaveLength(report.timeline!.events.length);
    const accept = body.find((e) => e.name === 'accept')!;
    expect(accept).toMatchObject({ ph: 'X', ts: 140, dur: 900, cat: 'syscall', args: { result: 'OK' } });
    const syn = body.find((e) => e.name.endsWith('[S]'))!;
    expect(syn).toMatchObject({ ph: 'i', s: 't', ts: 220, cat: 'packet', args: { len: 60 } });
    expect(body.find((e) => e.cat === 'fault')).toMatchObject({ name: 'duplicate', cname: 'terrible' });
    // Sorted by time (metadata first).
    const times = body.map((e) => e.ts);
    expect(times).toEqual([...times].sort((a, b) => a - b));
  });

  it('puts calls that are pending at once on a second row of their track', () => {
    const poll = trace.traceEvents.find((e) => e.name === 'poll')!;
    const recv = trace.traceEvents.find((e) => e.name === 'recv')!;
    expect(poll.tid).not.toBe(recv.tid);
    const threadName = (tid: number) => meta('thread_name').find((e) => e.tid === tid)!.args!.name;
    expect([threadName(poll.tid), threadName(recv.tid)].sort()).toEqual(['ota', 'ota #2']);
  });

  it('carries the verdicts as instants at the end of the run, and the run in otherData', () => {
    const verdicts = trace.traceEvents.filter((e) => e.cat === 'verdict');
    expect(verdicts.map((v) => v.name)).toEqual(['PASS OTA image intact', 'FAIL Every hostile call refused']);
    const last = Math.max(...trace.traceEvents.map((e) => e.ts + (e.dur ?? 0)));
    for (const v of verdicts) expect(v.ts).toBe(last);
    expect(verdicts[1]).toMatchObject({ ph: 'i', s: 't', args: { pass: false, detail: '1 breach' }, cname: 'terrible' });
    expect(trace.otherData).toMatchObject({ scenario: 'ota-isolation', seed: 7, passed: false, events: report.timeline!.events.length, droppedEvents: 0, hash: 'ab'.repeat(32) });
  });

  it('survives a JSON round trip unchanged', () => {
    expect(JSON.parse(JSON.stringify(trace))).toEqual(trace);
  });

  it('still gives a readable trace without a timeline, with dropped events, or with events no viewer can place', () => {
    const bare = toChromeTrace({ ...fixtureReport(), timeline: undefined });
    checkStructure(bare);
    expect(bare.traceEvents.filter((e) => e.name === 'thread_name').map((e) => e.args!.name)).toEqual(['update-server', 'ota', 'third-party', 'verdicts']);

    const bad: TimelineEvent[] = [
      { ts: Number.NaN, track: 'ota', kind: 'log', name: 'no time' },
      { ts: 5, dur: -3, track: 'ota', kind: 'syscall', name: 'negative' },
      { ts: 6, dur: Number.POSITIVE_INFINITY, track: 'ota', kind: 'syscall', name: 'endless' },
    ];
    const r = fixtureReport(bad);
    r.timeline!.dropped = 42;
    const t = toChromeTrace(r);
    checkStructure(t);
    expect(t.otherData).toMatchObject({ droppedEvents: 42, unplaceableEvents: 1 });
    expect(t.traceEvents.find((e) => e.name === 'negative')).toMatchObject({ ph: 'X', dur: 0 });
    expect(t.traceEvents.find((e) => e.name === 'endless')).toMatchObject({ ph: 'i' });
    expect(t.traceEvents.find((e) => e.name === '42 events dropped')).toBeDefined();
  });

  it('keeps its structure for any timeline', () => {
    const event = fc.record({
      ts: fc.double({ min: 0, max: 1e7, noNaN: true }),
      dur: fc.option(fc.double({ min: 0, max: 1e5, noNaN: true }), { nil: undefined }),
      track: fc.constantFrom('ota', 'third-party', 'kernel:device', 'kernel:server', 'link:a -> b', 'stranger'),
      kind: fc.constantFrom(...TIMELINE_KINDS),
      name: fc.string(),
    });
    fc.assert(
      fc.property(fc.array(event, { maxLength: 60 }), (events) => {
        const clean = events.map(({ dur, ...e }) => (dur === undefined ? e : { ...e, dur }));
        const t = toChromeTrace(fixtureReport(clean));
        checkStructure(t);
        expect(t.traceEvents.filter((e) => e.ph !== 'M' && e.cat !== 'verdict')).toHaveLength(events.length);
      }),
      { numRuns: 100, seed: 20261126 },
    );
  }, 30_000);
});
