/**
 * A report's timeline in the Trace Event Format (the JSON object form) that
 * Perfetto (ui.perfetto.dev) and chrome://tracing open.
 *
 * Layout: one process for the domains (with a `verdicts` thread last), one
 * per machine's kernel, one for the links; one thread per track. Spans are
 * complete (`X`) events, instants are thread-scoped `i` events; both keep
 * the event's args, and its kind is the category. Times are microseconds
 * since the run began, as in the timeline.
 */
import type { ScenarioReport } from './report.js';
import { isSpan, packRows, placedTimeline, timelineEnd, trackGroup, type TimelineEvent } from './timeline.js';

type Args = Record<string, string | number | boolean>;

export interface ChromeTraceEvent {
  name: string;
  /** Phase: M metadata, X complete, i instant. */
  ph: 'M' | 'X' | 'i';
  /** Microseconds. */
  ts: number;
  /** Microseconds (X only). */
  dur?: number;
  pid: number;
  tid: number;
  cat?: string;
  /** Instant scope: the thread. */
  s?: 't';
  /** One of the trace viewer's reserved colour names. */
  cname?: string;
  args?: Args;
}

export interface ChromeTrace {
  traceEvents: ChromeTraceEvent[];
  displayTimeUnit: 'ms';
  /** Shown by chrome://tracing's Metadata button and imported by Perfetto as trace metadata. */
  otherData: Args;
}

interface Thread {
  pid: number;
  tid: number;
  name: string;
}

export function toChromeTrace(report: ScenarioReport): ChromeTrace {
  const all = report.timeline?.events ?? [];
  const { events, tracks } = placedTimeline(report);
  const end = timelineEnd(events, report.durationMs);

  const meta: ChromeTraceEvent[] = [];
  const body: ChromeTraceEvent[] = [];
  const metadata = (name: string, pid: number, tid: number, args: Args) => meta.push({ name, ph: 'M', ts: 0, pid, tid, args });

  // Processes in the tracks' order: the domains, each machine's kernel, the links.
  const pids = new Map<string, number>();
  const addProcess = (key: string, name: string): number => {
    let pid = pids.get(key);
    if (pid === undefined) {
      pid = pids.size + 1;
      pids.set(key, pid);
      metadata('process_name', pid, 0, { name });
      metadata('process_sort_index', pid, 0, { sort_index: pid });
    }
    return pid;
  };
  const domainsPid = addProcess('domains', `${report.scenario} (seed ${report.seed}): domains`);
  const processOf = (track: string): number => {
    const { group, label } = trackGroup(track);
    if (group === 'domain') return domainsPid;
    if (group === 'link') return addProcess('links', 'links');
    return addProcess(track, `kernel ${label}`);
  };

  for (const track of tracks) processOf(track);

  // Threads get trace-wide unique tids in display order, none equal to a pid:
  // viewers that ignore thread_sort_index, key threads by tid alone, or take a
  // thread whose tid is its pid for the process's main thread still agree.
  let nextTid = pids.size + 1;
  let sortIndex = 0;
  const addThread = (pid: number, name: string): Thread => {
    const t = { pid, tid: nextTid++, name };
    metadata('thread_name', pid, t.tid, { name });
    metadata('thread_sort_index', pid, t.tid, { sort_index: sortIndex++ });
    return t;
  };

  const byTrack = new Map<string, TimelineEvent[]>();
  for (const e of events) {
    const list = byTrack.get(e.track);
    if (list) list.push(e);
    else byTrack.set(e.track, [e]);
  }

  for (const track of tracks) {
    const pid = processOf(track);
    const mine = byTrack.get(track) ?? [];
    const spans = mine.filter(isSpan);
    // Spans on one thread must nest; overlapping ones (calls pending at once) go on extra rows.
    const { rows, count } = packRows(spans);
    const threads = [addThread(pid, track)];
    for (let r = 1; r < count; r++) threads.push(addThread(pid, `${track} #${r + 1}`));
    const rowOf = new Map<TimelineEvent, number>(spans.map((s, i) => [s, rows[i]!]));
    for (const e of mine) {
      const row = rowOf.get(e);
      const thread = threads[row ?? 0]!;
      const base = { name: e.name, cat: e.kind, ts: e.ts, pid: thread.pid, tid: thread.tid };
      const args = e.args ? { ...e.args } : undefined;
      const cname = e.kind === 'fault' ? 'terrible' : undefined;
      if (row !== undefined) body.push({ ...base, ph: 'X', dur: Math.max(0, e.dur!), ...(args && { args }), ...(cname && { cname }) });
      else body.push({ ...base, ph: 'i', s: 't', ...(args && { args }), ...(cname && { cname }) });
    }
  }

  // Verdicts are instants at the end of the run, on their own thread of the domains process.
  const verdicts = addThread(domainsPid, 'verdicts');
  for (const v of report.verdicts) {
    body.push({
      name: `${v.pass ? 'PASS' : 'FAIL'} ${v.name}`,
      cat: 'verdict',
      ph: 'i',
      s: 't',
      ts: end,
      pid: verdicts.pid,
      tid: verdicts.tid,
      cname: v.pass ? 'good' : 'terrible',
      args: { pass: v.pass, detail: v.detail },
    });
  }
  const dropped = report.timeline?.dropped ?? 0;
  if (dropped > 0) {
    body.push({ name: `${dropped} events dropped`, cat: 'recorder', ph: 'i', s: 't', ts: end, pid: verdicts.pid, tid: verdicts.tid, cname: 'bad', args: { dropped } });
  }

  // Stable by time: viewers accept any order, but people read the file too.
  body.sort((a, b) => a.ts - b.ts);

  const otherData: Args = {
    scenario: report.scenario,
    description: report.description,
    seed: report.seed,
    durationMs: report.durationMs,
    passed: report.passed,
    verdicts: report.verdicts.map((v) => `${v.pass ? 'PASS' : 'FAIL'} ${v.name}`).join('; '),
    events: events.length,
    droppedEvents: dropped,
  };
  if (events.length < all.length) otherData.unplaceableEvents = all.length - events.length;
  if (report.timeline?.hash) otherData.hash = report.timeline.hash;
  if (report.lockstep) otherData.lockstep = 'virtual time';
  return { traceEvents: [...meta, ...body], displayTimeUnit: 'ms', otherData };
}
