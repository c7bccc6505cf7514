/**
 * The event trace of a run: what happened when, on which timeline. The
 * kernel side records it; the Chrome trace and the HTML report draw it.
 */

export type TimelineKind = 'syscall' | 'packet' | 'transition' | 'fault' | 'log' | 'lifecycle';

export interface TimelineEvent {
  /** Microseconds since the run began. */
  ts: number;
  /** Microseconds, for events that last (a syscall from request to reply); absent for instants. */
  dur?: number;
  /** The timeline it belongs on: a domain's name, `kernel:<machine>`, or `link:<name>`. */
  track: string;
  kind: TimelineKind;
  /** e.g. 'recvfrom', 'tcp 10.0.0.1:24681 > 10.0.0.2:24680 [S]', 'ESTABLISHED -> FIN_WAIT_1', 'kill'. */
  name: string;
  args?: Record<string, string | number | boolean>;
}

export interface Timeline {
  events: TimelineEvent[];
  /** Events dropped because the recorder's bound was reached. */
  dropped: number;
  /** SHA-256 (hex) over the run's ordered event log, for replay: equal only for runs whose event order is itself deterministic (see docs/architecture.md, "The event trace"). */
  hash?: string;
}

export const TIMELINE_KINDS: readonly TimelineKind[] = ['syscall', 'packet', 'transition', 'fault', 'log', 'lifecycle'];

export type TrackGroup = 'domain' | 'kernel' | 'link';

/** Which group a track belongs to, and its name without the `kernel:`/`link:` prefix. */
export function trackGroup(track: string): { group: TrackGroup; label: string } {
  if (track.startsWith('kernel:')) return { group: 'kernel', label: track.slice(7) };
  if (track.startsWith('link:')) return { group: 'link', label: track.slice(5) };
  return { group: 'domain', label: track };
}

/**
 * Every track of a report in display order: the report's domains in its
 * order (a domain that recorded nothing still gets its track), other domain
 * tracks, kernels, then links (the report's link order first). Ties keep
 * first appearance, so equal runs draw equally.
 */
export function orderedTracks(domains: readonly string[], events: readonly TimelineEvent[], links: readonly string[] = []): string[] {
  const seen = new Set<string>();
  const byGroup: Record<TrackGroup, string[]> = { domain: [], kernel: [], link: [] };
  const add = (track: string) => {
    if (seen.has(track)) return;
    seen.add(track);
    byGroup[trackGroup(track).group].push(track);
  };
  domains.forEach(add);
  links.forEach((l) => {
    if (events.some((e) => e.track === `link:${l}`)) add(`link:${l}`);
  });
  for (const e of events) add(e.track);
  return [...byGroup.domain, ...byGroup.kernel, ...byGroup.link];
}

/**
 * What the Chrome trace and the HTML report draw of a report: the events a
 * viewer can place (a recorder bug must not make a whole file unreadable, so
 * one without a finite time or a track is left out) and every track in
 * display order (orderedTracks).
 */
export function placedTimeline(report: {
  domains: readonly { name: string }[];
  links?: readonly { name: string }[];
  timeline?: Timeline;
}): { events: TimelineEvent[]; tracks: string[] } {
  const events = (report.timeline?.events ?? []).filter((e) => Number.isFinite(e.ts) && typeof e.track === 'string');
  const tracks = orderedTracks(
    report.domains.map((d) => d.name),
    events,
    (report.links ?? []).map((l) => l.name),
  );
  return { events, tracks };
}

/** Whether an event is drawn as a span (it has a usable duration) rather than an instant. */
export const isSpan = (e: TimelineEvent): e is TimelineEvent & { dur: number } => typeof e.dur === 'number' && Number.isFinite(e.dur);

/**
 * Spreads one track's spans over rows so that no two in a row overlap
 * (a domain using the promise API can have several syscalls pending at
 * once, and trace viewers only accept spans that nest). Greedy interval
 * partitioning by start time: the fewest rows that fit. Returns each
 * span's row, indexed like the input, and the row count.
 */
export function packRows(spans: readonly { ts: number; dur: number }[]): { rows: number[]; count: number } {
  const order = spans.map((_, i) => i).sort((a, b) => spans[a]!.ts - spans[b]!.ts || a - b);
  const ends: number[] = [];
  const rows = new Array<number>(spans.length);
  for (const i of order) {
    const s = spans[i]!;
    const end = s.ts + Math.max(0, s.dur);
    let row = ends.findIndex((e) => e <= s.ts);
    if (row === -1) row = ends.push(end) - 1;
    else ends[row] = end;
    rows[i] = row;
  }
  return { rows, count: Math.max(1, ends.length) };
}

/** When the run's last event ends (or the report's duration, if later), in microseconds. */
export function timelineEnd(events: readonly TimelineEvent[], durationMs = 0): number {
  let end = Number.isFinite(durationMs) ? durationMs * 1000 : 0;
  for (const e of events) if (Number.isFinite(e.ts)) end = Math.max(end, e.ts + (isSpan(e) ? Math.max(0, e.dur) : 0));
  return end;
}

/** Splits a transition's name ('ESTABLISHED -> FIN_WAIT_1') into its two states. */
export function parseTransition(name: string): { from: string; to: string } | undefined {
  const m = /^\s*(\S.*?)\s*(?:->|→)\s*(\S.*?)\s*$/.exec(name);
  return m ? { from: m[1]!, to: m[2]! } : undefined;
}

/**
 * The connection a transition belongs to: its `conn` argument (or
 * `connection`, or `local` and `remote`) if the recorder gave one, else
 * its track.
 */
export function connectionOf(e: TimelineEvent): string {
  const a = e.args ?? {};
  const conn = a.conn ?? a.connection ?? a.tuple;
  if (conn !== undefined) return `${e.track} ${conn}`;
  if (a.local !== undefined && a.remote !== undefined) return `${e.track} ${a.local} > ${a.remote}`;
  if (a.socket !== undefined) return `${e.track} socket ${a.socket}`;
  return e.track;
}
