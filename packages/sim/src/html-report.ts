/**
 * A scenario report as one self-contained HTML file: inline CSS, a few lines
 * of inline JS, the timeline as inline SVG, and no URL of any kind, so it
 * opens offline and can be attached to a bug or printed.
 *
 * Domain names, attempt names, logs and packet descriptions come from the
 * programs under test, which include hostile ones: every string from the
 * report goes through `esc`. A Content-Security-Policy that allows only this
 * file's own style and script (by hash) and no fetch of any kind is a second
 * wall: markup that slipped through could neither run nor call out.
 */
import { createHash } from 'node:crypto';
import type { Attempt, DomainReport, ScenarioReport } from './report.js';
import { tallyCalls } from './report.js';
import {
  TIMELINE_KINDS,
  connectionOf,
  isSpan,
  packRows,
  parseTransition,
  placedTimeline,
  timelineEnd,
  trackGroup,
  type TimelineEvent,
  type TimelineKind,
} from './timeline.js';

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
/** Text and attribute values alike: every attribute below is double-quoted. */
const esc = (v: unknown): string => String(v).replace(/[&<>"']/g, (c) => ESCAPES[c]!);

/** Microseconds in the unit that reads best. */
export function formatMicros(us: number): string {
  if (!Number.isFinite(us)) return '?';
  const a = Math.abs(us);
  if (a < 1000) return `${+us.toFixed(a < 10 ? 1 : 0)} µs`;
  if (a < 1e6) return `${+(us / 1000).toFixed(a < 1e4 ? 3 : a < 1e5 ? 2 : 1)} ms`;
  return `${+(us / 1e6).toFixed(a < 1e7 ? 3 : 2)} s`;
}

/** A count; anything else (attempts are a hostile program's own report) is shown as escaped text. */
const num = (n: unknown) => (typeof n === 'number' ? n.toLocaleString('en-US') : esc(n));
const plural = (n: number, one: string, many = `${one}s`) => `${num(n)} ${n === 1 ? one : many}`;

/** 'EBADF 4,096' chips, largest first; `OK` gets its own class so successes stand out. */
function outcomeChips(outcomes: unknown, breach = false): string {
  const entries = Object.entries(isRecord(outcomes) ? outcomes : {}).sort(([, a], [, b]) => Number(b) - Number(a) || 0);
  if (entries.length === 0) return '<span class="muted">none</span>';
  return entries
    .map(([k, n]) => `<span class="chip${k === 'OK' ? (breach ? ' chip-breach' : ' chip-ok') : ''}">${esc(k)} <b>${num(n)}</b></span>`)
    .join(' ');
}

/** A titled section of the page; the titles are ours, never the report's. */
interface Section {
  id: string;
  title: string;
  body: string;
}

function table(cls: string, head: string[], rows: string[], numeric: number[] = []): string {
  const th = head.map((h, i) => `<th${numeric.includes(i) ? ' class="num"' : ''}>${h}</th>`).join('');
  return `<table class="${cls}"><thead><tr>${th}</tr></thead><tbody>${rows.join('\n')}</tbody></table>`;
}

function header(r: ScenarioReport): string {
  const passing = r.verdicts.filter((v) => v.pass).length;
  const tl = r.timeline;
  const facts: [string, string][] = [
    ['seed', esc(r.seed)],
    ...(r.lockstep ? ([['mode', 'lockstep: timeline in virtual time, repeats with the seed']] as [string, string][]) : []),
    ['duration', esc(formatMicros(r.durationMs * 1000))],
    ['verdicts', `${num(passing)} of ${num(r.verdicts.length)} pass`],
    ['domains', num(r.domains.length)],
  ];
  if (tl) {
    facts.push(['events', `${num(tl.events.length)} recorded${tl.dropped ? `, <span class="bad">${num(tl.dropped)} dropped</span>` : ''}`]);
    if (tl.hash) facts.push(['replay hash', `<code class="hash">${esc(tl.hash)}</code>`]);
  }
  return `<header class="${r.passed ? 'pass' : 'fail'}">
<div class="badge" id="outcome">${r.passed ? 'PASS' : 'FAIL'}</div>
<div><h1>Scenario <span id="scenario-name">${esc(r.scenario)}</span></h1>
<p class="desc">${esc(r.description)}</p>
<dl class="facts">${facts.map(([k, v]) => `<div><dt>${k}</dt><dd>${v}</dd></div>`).join('')}</dl></div>
</header>`;
}

function verdictSection(r: ScenarioReport): Section {
  const rows = r.verdicts.map(
    (v) =>
      `<tr class="verdict ${v.pass ? 'pass' : 'fail'}"><td class="result">${v.pass ? 'PASS' : 'FAIL'}</td><td class="name">${esc(v.name)}</td><td class="detail">${esc(v.detail)}</td></tr>`,
  );
  const body = rows.length ? table('verdicts', ['result', 'verdict', 'detail'], rows) : '<p class="muted">No verdicts.</p>';
  return { id: 'verdicts', title: 'Verdicts', body };
}

function held(d: DomainReport): string {
  if (!d.final) return '<span class="bad">unknown</span>';
  const parts = Object.entries(d.final).filter(([, n]) => n !== 0);
  if (parts.length === 0) return '<span class="good">nothing</span>';
  return `<span class="bad">${parts.map(([k, n]) => `${esc(k)} ${esc(n)}`).join(', ')}</span>`;
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * A domain's attempts as its program reported them. They come from the
 * program's own return value, so a hostile one can put anything there: take
 * only well-formed entries' fields, and let nothing in them break the page.
 */
function attemptsOf(d: DomainReport): Attempt[] {
  if (!Array.isArray(d.attempts)) return [];
  return d.attempts.filter(isRecord);
}

const breachCount = (a: Attempt): number => (typeof a.breaches === 'number' && Number.isFinite(a.breaches) ? a.breaches : 0);

function attemptTable(attempts: Attempt[]): string {
  const rows = attempts.map(
    (a) =>
      `<tr class="attempt${breachCount(a) ? ' breach' : ''}"><td class="name">${esc(a.name)}</td><td class="num">${num(a.tries)}</td><td>${outcomeChips(a.outcomes, breachCount(a) > 0)}</td><td class="num breaches">${num(a.breaches)}</td><td class="note">${esc(a.note ?? '')}</td></tr>`,
  );
  return table('attempts', ['attempt', 'tries', 'results (by errno)', 'breaches', 'note'], rows, [1, 3]);
}

function callTable(d: DomainReport): string {
  const rows = Object.entries(d.calls)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([call, outcomes]) => {
      const total = Object.values(outcomes).reduce((s, n) => s + n, 0);
      return `<tr><td class="name">${esc(call)}</td><td class="num">${num(total)}</td><td>${outcomeChips(outcomes)}</td></tr>`;
    });
  return table('calls', ['syscall', 'calls', 'results'], rows, [1]);
}

function summaryJson(v: unknown): string {
  let text: string;
  try {
    text = JSON.stringify(v, null, 2) ?? String(v);
  } catch {
    text = String(v);
  }
  // A summary is for reading, not for archiving: the JSON report keeps all of it.
  return text.length > 20_000 ? `${text.slice(0, 20_000)}\n… (${num(text.length - 20_000)} more characters in the JSON report)` : text;
}

function domainSection(r: ScenarioReport): Section {
  const rows = r.domains.map((d) => {
    const t = tallyCalls(d.calls);
    const breaches = attemptsOf(d).reduce((s, a) => s + breachCount(a), 0);
    const ended = `<span class="status status-${esc(d.status)}">${esc(d.status)}</span>${d.error ? `<div class="error">${esc(d.error)}</div>` : ''}`;
    return `<tr class="domain" data-domain="${esc(d.name)}"><td class="name">${esc(d.name)}</td><td class="role">${esc(d.role)}</td><td class="ended">${ended}</td><td class="num calls">${num(t.total)}</td><td class="num ok">${num(t.ok)}</td><td class="refused">${outcomeChips(t.refused)}</td><td class="num malformed">${num(d.malformedFrames)}</td><td class="num breaches${breaches ? ' bad' : ''}">${num(breaches)}</td><td class="held">${held(d)}</td><td class="num restarts">${num(d.restarts)}</td></tr>`;
  });
  const details = r.domains
    .map((d) => {
      const parts: string[] = [];
      const attempts = attemptsOf(d);
      if (attempts.length) parts.push(`<h4>Attempts</h4>${attemptTable(attempts)}`);
      if (Object.keys(d.calls).length) parts.push(`<details><summary>Syscalls by result</summary>${callTable(d)}</details>`);
      if (d.summary !== undefined && d.summary !== null) parts.push(`<details><summary>What the program returned</summary><pre>${esc(summaryJson(d.summary))}</pre></details>`);
      if (parts.length === 0) return '';
      return `<div class="domain-detail" data-domain="${esc(d.name)}"><h3>${esc(d.name)} <span class="muted">${esc(d.role)}</span></h3>${parts.join('\n')}</div>`;
    })
    .join('\n');
  const head = ['domain', 'role', 'ended', 'syscalls', 'ok', 'refused (by errno)', 'malformed frames', 'breaches', 'left held after release', 'restarts'];
  return { id: 'domains', title: 'Domains', body: `${table('domains', head, rows, [3, 4, 6, 7, 9])}\n${details}` };
}

function kernelSection(r: ScenarioReport): Section {
  const k = r.kernel;
  const drops = Object.entries(k.stack).filter(([key]) => key.startsWith('drop.'));
  const facts: [string, string][] = [
    ['internal errors', `<span class="${k.internalErrors ? 'bad' : 'good'}">${num(k.internalErrors)}</span>${k.lastInternalError ? ` <span class="error">${esc(k.lastInternalError)}</span>` : ''}`],
    ['leaks', k.leaks.length ? `<span class="bad">${k.leaks.map(esc).join(', ')}</span>` : '<span class="good">none</span>'],
    ['buffers in use', `${num(k.pool.inUseBuffers)} (${num(k.pool.inUseBytes)} B of ${num(k.pool.capacityBytes)} B)`],
    ['allocations', `${num(k.pool.allocations)}, ${num(k.pool.failures)} failed`],
  ];
  const dropRows = drops.sort(([, a], [, b]) => b - a).map(([key, n]) => `<tr><td class="name">${esc(key.slice(5))}</td><td class="num">${num(n)}</td></tr>`);
  const other = Object.entries(k.stack)
    .filter(([key]) => !key.startsWith('drop.'))
    .map(([key, n]) => `<tr><td class="name">${esc(key)}</td><td class="num">${num(n)}</td></tr>`);
  const body = `<dl class="facts">${facts.map(([a, b]) => `<div><dt>${a}</dt><dd>${b}</dd></div>`).join('')}</dl>
${dropRows.length ? `<h4>Stack drops by reason</h4>${table('drops', ['reason', 'frames'], dropRows, [1])}` : '<p>Stack drops: none.</p>'}
${other.length ? `<details><summary>Other stack counters</summary>${table('counters', ['counter', 'value'], other, [1])}</details>` : ''}`;
  return { id: 'kernel', title: 'Kernel', body };
}

const LINK_COLUMNS = ['offered', 'delivered', 'lost', 'duplicated', 'reordered', 'corrupted', 'partitionDrops', 'tooBig', 'queueDrops'];

function linkSection(r: ScenarioReport): Section | undefined {
  const parts: string[] = [];
  if (r.links?.length) {
    const rows = r.links.map((l) => {
      const faults = Object.entries(l.faults as Record<string, unknown>)
        .filter(([, v]) => v !== 0 && v !== false && v !== undefined && v !== null)
        .map(([k, v]) => `${esc(k)} ${esc(typeof v === 'object' ? JSON.stringify(v) : v)}`)
        .join(', ');
      const cells = LINK_COLUMNS.map((c) => `<td class="num">${num(l.stats[c] ?? 0)}</td>`).join('');
      return `<tr class="link" data-link="${esc(l.name)}"><td class="name">${esc(l.name)}</td>${cells}<td class="faults">${faults || '<span class="muted">none</span>'}</td></tr>`;
    });
    parts.push(table('links', ['direction', ...LINK_COLUMNS, 'faults'], rows, LINK_COLUMNS.map((_, i) => i + 1)));
  }
  if (r.captures?.length) parts.push(`<h4>Captures</h4><ul class="captures">${r.captures.map((c) => `<li><code>${esc(c)}</code></li>`).join('')}</ul>`);
  return parts.length ? { id: 'links', title: 'Links', body: parts.join('\n') } : undefined;
}

// ---- Timeline --------------------------------------------------------------

const SVG_WIDTH = 1200;
const LABEL_WIDTH = 230;
const PLOT_LEFT = LABEL_WIDTH + 8;
const PLOT_WIDTH = SVG_WIDTH - PLOT_LEFT - 12;
const AXIS_HEIGHT = 26;
const ROW_HEIGHT = 14;

/** A round step for about `target` axis ticks over `span`. */
function tickStep(span: number, target = 8): number {
  const raw = span / target;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const f = raw / mag;
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * mag;
}

/** What a syscall's args say about its result: 'ok', 'err', or '' when they do not say. */
function resultClass(e: TimelineEvent): string {
  const r = e.args?.result ?? e.args?.errno ?? e.args?.outcome;
  if (r === undefined) return '';
  if (typeof r === 'number') return r >= 0 ? 'ok' : 'err';
  return r === 'OK' || r === true ? 'ok' : 'err';
}

function describe(e: TimelineEvent): string {
  const parts = [`${e.kind} ${e.name}`, `at ${formatMicros(e.ts)}`];
  if (isSpan(e)) parts.push(`for ${formatMicros(e.dur)}`);
  for (const [k, v] of Object.entries(e.args ?? {})) parts.push(`${k}=${v}`);
  return parts.join('\n');
}

/**
 * Events that would land on the same pixel become one mark with a count, so
 * the SVG stays a few thousand elements however long the run; Perfetto has
 * every event for zooming in.
 */
interface Mark {
  kind: TimelineKind;
  cls: string;
  row: number;
  x0: number;
  x1: number;
  events: TimelineEvent[];
}

function markTitle(m: Mark): string {
  if (m.events.length === 1) return describe(m.events[0]!);
  const first = m.events[0]!;
  const last = m.events[m.events.length - 1]!;
  const names = m.events.slice(0, 6).map((e) => `${formatMicros(e.ts)} ${e.name}`);
  if (m.events.length > 6) names.push(`… ${num(m.events.length - 6)} more`);
  return `${num(m.events.length)} ${m.kind} events, ${formatMicros(first.ts)} to ${formatMicros(last.ts + (isSpan(last) ? last.dur : 0))}\n${names.join('\n')}`;
}

function drawMark(m: Mark, top: number, height: number): string {
  const title = `<title>${esc(markTitle(m))}</title>`;
  const n = m.events.length > 1 ? ` data-count="${m.events.length}"` : '';
  const cls = `ev ${m.kind}${m.cls ? ` ${m.cls}` : ''}`;
  const mid = top + height / 2;
  const x = +m.x0.toFixed(1);
  switch (m.kind) {
    case 'syscall': {
      const y = top + 5 + m.row * ROW_HEIGHT;
      const w = Math.max(1, m.x1 - m.x0);
      return `<rect class="${cls}"${n} x="${x}" y="${y}" width="${+w.toFixed(1)}" height="${ROW_HEIGHT - 4}" rx="1.5">${title}</rect>`;
    }
    case 'packet': {
      const w = Math.max(1, m.x1 - m.x0);
      return `<rect class="${cls}"${n} x="${x}" y="${top + 3}" width="${+w.toFixed(1)}" height="${height - 6}">${title}</rect>`;
    }
    case 'fault':
      return `<path class="${cls}"${n} d="M${x - 4} ${top + 3}h8l-4 7z">${title}</path>`;
    case 'transition':
      return `<path class="${cls}"${n} d="M${x} ${mid - 5}l5 5-5 5-5-5z">${title}</path>`;
    case 'lifecycle':
      return `<path class="${cls}"${n} d="M${x} ${top + 2}v${height - 4}M${x} ${top + 2}h7l-2 3 2 3h-7">${title}</path>`;
    case 'log':
      return `<circle class="${cls}"${n} cx="${x}" cy="${top + height - 5}" r="2.5">${title}</circle>`;
  }
}

/** Where each kind is drawn in the stack: packets behind, marks in front. */
const LAYER: Record<TimelineKind, number> = { packet: 0, syscall: 1, log: 2, lifecycle: 3, transition: 4, fault: 5 };

function timelineSvg(r: ScenarioReport, tracks: string[], events: TimelineEvent[], end: number): string {
  const scale = PLOT_WIDTH / (end > 0 ? end : 1);
  const xOf = (us: number) => PLOT_LEFT + Math.max(0, us) * scale;
  const byTrack = new Map<string, TimelineEvent[]>(tracks.map((t) => [t, []]));
  for (const e of events) byTrack.get(e.track)?.push(e);

  const lanes: string[] = [];
  let y = AXIS_HEIGHT;
  tracks.forEach((track, i) => {
    const mine = byTrack.get(track)!;
    const spans = mine.filter((e) => e.kind === 'syscall' && isSpan(e)) as (TimelineEvent & { dur: number })[];
    const { rows, count } = packRows(spans);
    const rowOf = new Map<TimelineEvent, number>(spans.map((s, j) => [s, rows[j]!]));
    const height = Math.max(26, 10 + count * ROW_HEIGHT);

    const marks: Mark[] = [];
    const open = new Map<string, Mark>();
    for (const e of [...mine].sort((a, b) => a.ts - b.ts)) {
      const row = rowOf.get(e) ?? 0;
      const cls = e.kind === 'syscall' ? resultClass(e) : '';
      const x0 = xOf(e.ts);
      const x1 = isSpan(e) ? xOf(e.ts + Math.max(0, e.dur)) : x0;
      const key = `${e.kind}/${cls}/${row}`;
      const last = open.get(key);
      if (last && x0 - last.x1 < 1.5) {
        last.x1 = Math.max(last.x1, x1);
        last.events.push(e);
      } else {
        const m: Mark = { kind: e.kind, cls, row, x0, x1, events: [e] };
        marks.push(m);
        open.set(key, m);
      }
    }
    marks.sort((a, b) => LAYER[a.kind] - LAYER[b.kind]);

    const { group, label } = trackGroup(track);
    const shown = label.length > 26 ? `${label.slice(0, 25)}…` : label;
    lanes.push(
      `<g class="lane lane-${group}" data-track="${esc(track)}">` +
        `<rect class="lane-bg${i % 2 ? ' odd' : ''}" x="0" y="${y}" width="${SVG_WIDTH}" height="${height}"/>` +
        `<text class="lane-label" x="8" y="${y + height / 2 + 4}"><tspan class="group">${group}</tspan> ${esc(shown)}<title>${esc(track)}</title></text>` +
        marks.map((m) => drawMark(m, y, height)).join('') +
        `</g>`,
    );
    y += height;
  });

  const step = tickStep(end > 0 ? end : 1);
  const ticks: string[] = [];
  for (let t = 0; t <= end + 1e-9; t += step) {
    const x = +xOf(t).toFixed(1);
    ticks.push(`<line class="grid" x1="${x}" y1="${AXIS_HEIGHT - 4}" x2="${x}" y2="${y}"/><text class="tick" x="${x}" y="${AXIS_HEIGHT - 9}">${esc(formatMicros(t))}</text>`);
  }
  const name = `Timeline of ${r.scenario}`;
  return (
    `<svg id="timeline-svg" class="timeline" viewBox="0 0 ${SVG_WIDTH} ${y + 4}" width="100%" role="img" aria-label="${esc(name)}">` +
    `<g class="axis">${ticks.join('')}</g>${lanes.join('\n')}</svg>`
  );
}

function timelineSection(r: ScenarioReport, tracks: string[], events: TimelineEvent[]): Section {
  const tl = r.timeline;
  if (!tl) return { id: 'timeline', title: 'Timeline', body: '<p class="muted">No timeline was recorded for this run.</p>' };
  const end = timelineEnd(events, r.durationMs);
  const counts = new Map<string, Record<TimelineKind, number>>();
  for (const t of tracks) counts.set(t, { syscall: 0, packet: 0, transition: 0, fault: 0, log: 0, lifecycle: 0 });
  for (const e of events) {
    const c = counts.get(e.track);
    if (c && e.kind in c) c[e.kind]++;
  }
  const totals = Object.fromEntries(TIMELINE_KINDS.map((k) => [k, events.filter((e) => e.kind === k).length])) as Record<TimelineKind, number>;
  const toggles = TIMELINE_KINDS.map(
    (k) => `<label class="toggle"><input type="checkbox" checked data-kind="${k}"><svg class="key" viewBox="0 0 14 14" width="14" height="14"><rect class="ev ${k}" x="2" y="2" width="10" height="10" rx="2"/></svg> ${k} <span class="muted">${num(totals[k])}</span></label>`,
  ).join('');
  const countRows = tracks.map(
    (t) => `<tr><td class="name">${esc(t)}</td>${TIMELINE_KINDS.map((k) => `<td class="num">${num(counts.get(t)![k])}</td>`).join('')}</tr>`,
  );
  const dropped = tl.dropped
    ? `<p class="warning">The recorder reached its bound and dropped ${plural(tl.dropped, 'event')}: this timeline is incomplete.</p>`
    : '';
  const body = `${dropped}<p class="hint">One lane per track, time from the start of the run (${esc(formatMicros(end))} in all). Syscalls are bars (red when refused), packets grey ticks, TCP transitions diamonds, faults red triangles, lifecycle flags, logs dots; hover over any mark for its details. Marks that would share a pixel are merged (their title says how many). To zoom, open the Chrome trace of the run in Perfetto.</p>
<form class="controls" id="kinds">${toggles}</form>
<div class="svg-wrap">${timelineSvg(r, tracks, events, end)}</div>
<details><summary>Events by track</summary>${table('track-counts', ['track', ...TIMELINE_KINDS], countRows, TIMELINE_KINDS.map((_, i) => i + 1))}</details>`;
  return { id: 'timeline', title: 'Timeline', body };
}

/** A state's colour family, so a sequence reads at a glance. */
function stateClass(state: string): string {
  if (state === 'ESTABLISHED') return 'st-est';
  if (state === 'CLOSED') return 'st-closed';
  if (state.startsWith('SYN') || state === 'LISTEN') return 'st-open';
  return 'st-close';
}

const MAX_CONNECTIONS = 200;
const MAX_STEPS = 60;

function transitionSection(events: TimelineEvent[]): Section | undefined {
  const conns = new Map<string, TimelineEvent[]>();
  for (const e of events) {
    if (e.kind !== 'transition') continue;
    const key = connectionOf(e);
    const list = conns.get(key);
    if (list) list.push(e);
    else conns.set(key, [e]);
  }
  if (conns.size === 0) return undefined;
  const items: string[] = [];
  for (const [key, list] of [...conns].slice(0, MAX_CONNECTIONS)) {
    list.sort((a, b) => a.ts - b.ts);
    const steps: string[] = [];
    let previous: string | undefined;
    for (const e of list.slice(0, MAX_STEPS)) {
      const t = parseTransition(e.name);
      const when = `<span class="t">${esc(formatMicros(e.ts))}</span>`;
      if (!t) {
        steps.push(`<li class="state st-other" title="${esc(describe(e))}"><span class="s">${esc(e.name)}</span>${when}</li>`);
        previous = undefined;
        continue;
      }
      if (previous === undefined) steps.push(`<li class="state ${stateClass(t.from)}"><span class="s">${esc(t.from)}</span></li>`);
      else if (previous !== t.from) steps.push(`<li class="state gap" title="the states between were not recorded"><span class="s">…</span></li>`);
      steps.push(`<li class="state ${stateClass(t.to)}" title="${esc(describe(e))}"><span class="s">${esc(t.to)}</span>${when}</li>`);
      previous = t.to;
    }
    if (list.length > MAX_STEPS) steps.push(`<li class="state gap"><span class="s">… ${num(list.length - MAX_STEPS)} more</span></li>`);
    items.push(`<li class="conn" data-conn="${esc(key)}"><div class="conn-name">${esc(key)}</div><ol class="seq">${steps.join('')}</ol></li>`);
  }
  const more = conns.size > MAX_CONNECTIONS ? `<p class="muted">… and ${plural(conns.size - MAX_CONNECTIONS, 'more connection')} (all are in the Chrome trace).</p>` : '';
  const body = `<p class="hint">Each connection's states in order, with the time each was entered.</p>
<ol class="conns">${items.join('\n')}</ol>${more}`;
  return { id: 'transitions', title: 'TCP state transitions', body };
}

const MAX_LOG_LINES = 500;

function logSection(tracks: string[], events: TimelineEvent[]): Section | undefined {
  const logs = events.filter((e) => e.kind === 'log');
  if (logs.length === 0) return undefined;
  const blocks = tracks
    .map((t) => {
      const mine = logs.filter((e) => e.track === t);
      if (mine.length === 0) return '';
      const lines = mine
        .slice(0, MAX_LOG_LINES)
        .map((e) => `<li><span class="t">${esc(formatMicros(e.ts))}</span> ${esc(e.name)}</li>`)
        .join('');
      const more = mine.length > MAX_LOG_LINES ? `<li class="muted">… ${plural(mine.length - MAX_LOG_LINES, 'more line')}</li>` : '';
      return `<details class="log" data-track="${esc(t)}"><summary>${esc(t)} <span class="muted">${plural(mine.length, 'line')}</span></summary><ol class="lines">${lines}${more}</ol></details>`;
    })
    .join('\n');
  return { id: 'logs', title: 'Logs', body: blocks };
}

// ---- Page ------------------------------------------------------------------

const STYLE = `
:root{--fg:#1f2328;--muted:#656d76;--line:#d0d7de;--bg2:#f6f8fa;--good:#1a7f37;--bad:#cf222e;--warn:#9a6700;--accent:#0969da}
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:var(--fg);margin:0 auto;max-width:1280px;padding:16px 24px 48px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 10px;padding-bottom:4px;border-bottom:1px solid var(--line)}
h3{font-size:15px;margin:18px 0 6px}h4{font-size:13px;margin:12px 0 6px;color:var(--muted);text-transform:uppercase;letter-spacing:.04em}
code,pre,.hash{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12px}
pre{background:var(--bg2);padding:8px;overflow:auto;max-height:400px;border-radius:4px}
header{display:flex;gap:18px;align-items:flex-start;padding:14px 16px;border-radius:6px;border:1px solid var(--line);border-left:8px solid var(--good)}
header.fail{border-left-color:var(--bad)}
.badge{font-weight:700;font-size:20px;padding:6px 14px;border-radius:4px;color:#fff;background:var(--good);-webkit-print-color-adjust:exact;print-color-adjust:exact}
header.fail .badge{background:var(--bad)}
.desc{margin:0 0 8px;color:var(--muted);max-width:90ch}
.facts{display:flex;flex-wrap:wrap;gap:4px 24px;margin:0}.facts div{display:flex;gap:6px}.facts dt{color:var(--muted)}.facts dd{margin:0;font-weight:600}
nav{margin:12px 0 0;font-size:13px}nav a{color:var(--accent);margin-right:14px;text-decoration:none}
table{border-collapse:collapse;width:100%;margin:4px 0 8px;font-size:13px}
th,td{border:1px solid var(--line);padding:4px 8px;text-align:left;vertical-align:top}
th{background:var(--bg2);font-weight:600}tbody tr:nth-child(even){background:#fbfcfd}
.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.name{font-weight:600;word-break:break-word}
tr.verdict td.result{font-weight:700;width:4.5em}tr.verdict.pass td.result{color:var(--good)}tr.verdict.fail td.result{color:var(--bad)}tr.verdict.fail{background:#ffebe9}
tr.attempt.breach{background:#ffebe9}tr.attempt.breach td.breaches{color:var(--bad);font-weight:700}
.good{color:var(--good);font-weight:600}.bad{color:var(--bad);font-weight:600}.muted{color:var(--muted);font-weight:400}
.error{color:var(--bad);font-size:12px;word-break:break-word}
.status-returned{color:var(--good)}.status-threw,.status-killed,.status-out-of-memory{color:var(--warn)}
.chip{display:inline-block;padding:0 6px;margin:1px 0;border-radius:10px;background:var(--bg2);border:1px solid var(--line);font-size:12px;white-space:nowrap}
.chip-ok{border-color:#8ddb9f;background:#dafbe1}.chip-breach{border-color:var(--bad);background:#ffebe9;color:var(--bad)}
.domain-detail{margin:6px 0 14px;padding-left:12px;border-left:3px solid var(--line)}
details{margin:6px 0}summary{cursor:pointer;color:var(--accent)}
.hint{color:var(--muted);font-size:13px;max-width:110ch}.warning{color:var(--warn);font-weight:600}
.controls{display:flex;flex-wrap:wrap;gap:14px;margin:6px 0 8px;font-size:13px}.toggle{display:inline-flex;gap:5px;align-items:center;cursor:pointer}
.svg-wrap{border:1px solid var(--line);border-radius:4px;overflow:hidden}
svg.timeline{display:block;font-size:11px}
.lane-bg{fill:#fff}.lane-bg.odd{fill:#f6f8fa}
.lane-label{fill:var(--fg);font-weight:600}.lane-label .group{fill:var(--muted);font-weight:400;font-size:9px;text-transform:uppercase}
.grid{stroke:#d8dee4;stroke-width:1}.tick{fill:var(--muted);text-anchor:middle;font-size:10px}
.ev.syscall{fill:#54aeff}.ev.syscall.ok{fill:#2da44e}.ev.syscall.err{fill:#e5534b}
.ev.packet{fill:#8c959f;opacity:.55}.ev.fault{fill:#cf222e}
.ev.transition{fill:#8250df;stroke:#fff;stroke-width:1}
.ev.lifecycle{fill:#1f2328;stroke:#1f2328;stroke-width:1.5}.key .ev.lifecycle{stroke:none}
.ev.log{fill:#bf8700}
.ev:hover{stroke:#000;stroke-width:1.5}
.hide-syscall .ev.syscall,.hide-packet .ev.packet,.hide-transition .ev.transition,.hide-fault .ev.fault,.hide-log .ev.log,.hide-lifecycle .ev.lifecycle{display:none}
.conns{list-style:none;padding:0;margin:0}.conn{margin:0 0 10px}
.conn-name{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12px;font-weight:600;margin-bottom:3px;word-break:break-all}
.seq{list-style:none;display:flex;flex-wrap:wrap;align-items:flex-start;gap:2px;padding:0;margin:0}
.state{display:flex;flex-direction:column;align-items:center;position:relative;margin-left:20px}.state:first-child{margin-left:0}
.state+.state::before{content:"→";color:var(--muted);position:absolute;left:-16px;top:1px}
.state .s{padding:1px 7px;border-radius:4px;font-size:12px;font-weight:600;border:1px solid var(--line);background:var(--bg2)}
.state .t{font-size:10px;color:var(--muted);font-variant-numeric:tabular-nums}
.st-est .s{background:#dafbe1;border-color:#8ddb9f}.st-open .s{background:#ddf4ff;border-color:#80ccff}
.st-close .s{background:#fff8c5;border-color:#d4a72c}.st-closed .s{background:#eaeef2}.gap .s{background:none;border-style:dashed;color:var(--muted)}
.lines{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12px;padding-left:0;list-style:none}.lines .t{color:var(--muted);display:inline-block;min-width:7em}
footer{margin-top:32px;color:var(--muted);font-size:12px}
@media print{
  body{max-width:none;padding:0;font-size:11px}
  nav,.controls,.hint{display:none}
  summary{color:inherit;font-weight:600;list-style:none}
  details::details-content{content-visibility:visible;display:contents}
  section{break-inside:auto}tr,.conn,.domain-detail h3,header{break-inside:avoid}h2,h3,h4{break-after:avoid}
  .svg-wrap{border:none}
  *{-webkit-print-color-adjust:exact;print-color-adjust:exact}
}
`;

// Kind toggles: hide a kind's marks by a class on the SVG (the CSS does the rest).
const SCRIPT = `
(function () {
  var svg = document.getElementById('timeline-svg');
  var boxes = document.querySelectorAll('#kinds input[data-kind]');
  for (var i = 0; i < boxes.length; i++) {
    boxes[i].addEventListener('change', function (ev) {
      var box = ev.target;
      if (svg) svg.classList.toggle('hide-' + box.getAttribute('data-kind'), !box.checked);
    });
  }
  // Printing shows every section: open the closed details first.
  window.addEventListener('beforeprint', function () {
    var d = document.querySelectorAll('details:not([open])');
    for (var j = 0; j < d.length; j++) d[j].setAttribute('open', '');
  });
})();
`;

const sha256 = (text: string) => `'sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}'`;
const CSP = `default-src 'none'; style-src ${sha256(STYLE)}; script-src ${sha256(SCRIPT)}; base-uri 'none'; form-action 'none'`;

export function renderHtmlReport(report: ScenarioReport): string {
  const { events, tracks } = placedTimeline(report);
  const sections = [
    verdictSection(report),
    domainSection(report),
    kernelSection(report),
    linkSection(report),
    timelineSection(report, tracks, events),
    transitionSection(events),
    logSection(tracks, events),
  ].filter((s): s is Section => s !== undefined);
  const nav = sections.map((s) => `<a href="#${s.id}">${s.title}</a>`).join('');
  const body = sections.map((s) => `<section id="${s.id}"><h2>${s.title}</h2>\n${s.body}</section>`).join('\n');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${CSP}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="@moat/sim">
<title>${esc(`${report.passed ? 'PASS' : 'FAIL'} ${report.scenario} (seed ${report.seed}): Moat report`)}</title>
<style>${STYLE}</style>
</head>
<body>
${header(report)}
<nav>${nav}</nav>
${body}
<footer>Moat scenario report: ${esc(report.scenario)}, seed ${esc(report.seed)}. The JSON report holds the same data in full.</footer>
<script>${SCRIPT}</script>
</body>
</html>
`;
}
