/**
 * Brings the event traces of several kernels onto one clock: each kernel
 * counts from its own start, so its events move by the gap between that
 * start and the run's, and the machines' events merge in time order.
 */
import { createHash } from 'node:crypto';
import type { KernelTimeline } from '@moat/kernel';
import type { Machine } from './machine.js';
import type { Timeline, TimelineEvent } from './timeline.js';

/**
 * The run's timeline from its machines' kernels (those made with
 * `trace: true`; the others add nothing). `runStartedAtEpochMs` is the
 * run's time zero on the epoch base: `performance.timeOrigin +
 * performance.now()` taken on the host when the run began. Call it before
 * the machines shut down.
 */
export async function collectTimeline(machines: Machine[], runStartedAtEpochMs: number): Promise<Timeline> {
  const traces = await Promise.all(
    machines.map((m) =>
      m.timeline().then(
        (t) => ({ machine: m.name, t }),
        // A kernel that died took its trace with it: say so on its track rather than fail the report.
        (err: Error) => ({ machine: m.name, t: undefined, error: String(err?.message ?? err) }),
      ),
    ),
  );
  const events: TimelineEvent[] = [];
  let dropped = 0;
  for (const trace of traces) {
    const kernelTrack = `kernel:${trace.machine}`;
    if (!trace.t) {
      events.push({ ts: 0, track: kernelTrack, kind: 'lifecycle', name: 'trace lost', args: { error: 'error' in trace ? trace.error : 'unknown' } });
      continue;
    }
    dropped += trace.t.dropped;
    for (const e of rebase(trace.t, runStartedAtEpochMs, kernelTrack)) events.push(e);
  }
  // Stable: equal times keep machine order, then each kernel's recording order
  // (a kernel records a call when it answers it, so its own list is not in time order).
  events.sort((a, b) => a.ts - b.ts);
  // Virtual times repeat with the run (lockstep): then the hash covers them too.
  const virtual = traces.length > 0 && traces.every((trace) => trace.t?.virtual === true);
  return { events, dropped, hash: timelineHash(events, virtual) };
}

function rebase(t: KernelTimeline, runStartedAtEpochMs: number, kernelTrack: string): TimelineEvent[] {
  // A lockstep kernel's clock is virtual and starts with the run: its times stand as they are, and repeat.
  const offsetUs = t.virtual ? 0 : (t.startedAtEpochMs - runStartedAtEpochMs) * 1000;
  return t.events.map((e) => ({
    ...e,
    ts: Math.round((e.ts + offsetUs) * 10) / 10,
    // The host's name for the machine wins over whatever the kernel was told.
    track: e.track.startsWith('kernel:') ? kernelTrack : e.track,
  }));
}

/**
 * SHA-256 over the events' order and content: one line per event of [kind,
 * track, name, args sorted by key], and with `withTimes` (a lockstep run,
 * whose times are virtual) its time and duration first.
 *
 * It is only reproducible where the order is. A kernel serves its domains
 * round-robin as their requests arrive in real time, so how different
 * domains' calls interleave, and timing-dependent results (how many bytes a
 * recv returns, whether a call had to wait), vary from run to run: equal
 * seeds give equal hashes only for runs whose event order is itself
 * deterministic; for the others it tells runs apart, it does not prove
 * them different in substance. A lockstep run (RunOptions.lockstep) fixes
 * the order, so its hash repeats (docs/scenarios.md).
 */
export function timelineHash(events: readonly TimelineEvent[], withTimes = false): string {
  const hash = createHash('sha256');
  for (const e of events) {
    const args = e.args ? Object.keys(e.args).sort().map((k) => [k, e.args![k]]) : [];
    hash.update(JSON.stringify(withTimes ? [e.ts, e.dur ?? null, e.kind, e.track, e.name, args] : [e.kind, e.track, e.name, args]));
    hash.update('\n');
  }
  return hash.digest('hex');
}
