/**
 * The timing loops, shared by Moat's domain programs and by the baselines so
 * that both sides of every ratio are measured by the same code. Latencies are
 * in microseconds; throughputs in completed calls per second.
 */
import { epochMs, waitForBell } from './doorbell.js';

/** Times `call` once per iteration after `warmup` untimed calls (JIT, caches, thread wake-up). */
export function timeSync(warmup: number, iterations: number, call: () => unknown): Float64Array {
  for (let i = 0; i < warmup; i++) call();
  const samples = new Float64Array(iterations);
  for (let i = 0; i < iterations; i++) {
    const t = performance.now();
    call();
    samples[i] = (performance.now() - t) * 1000;
  }
  return samples;
}

/** The same, awaiting each call before starting the next (one call in flight). */
export async function timeAsync(warmup: number, iterations: number, call: () => Promise<unknown>): Promise<Float64Array> {
  for (let i = 0; i < warmup; i++) await call();
  const samples = new Float64Array(iterations);
  for (let i = 0; i < iterations; i++) {
    const t = performance.now();
    await call();
    samples[i] = (performance.now() - t) * 1000;
  }
  return samples;
}

/** Completes `total` calls keeping `depth` of them in flight; returns calls per second. */
export async function inFlight(depth: number, total: number, call: () => Promise<unknown>): Promise<number> {
  let started = 0;
  const lane = async () => {
    while (started < total) {
      started++;
      await call();
    }
  };
  const t = performance.now();
  await Promise.all(Array.from({ length: Math.min(depth, total) }, lane));
  return total / ((performance.now() - t) / 1000);
}

export interface ThroughputPlan {
  depth: number;
  /** Calls per trial. */
  calls: number;
  /** Measured trials, after one untimed warm-up trial. */
  trials: number;
}

/** One warm-up trial, then `trials` timed ones: calls per second of each. */
export async function throughput(plan: ThroughputPlan, call: () => Promise<unknown>): Promise<number[]> {
  await inFlight(plan.depth, plan.calls, call);
  const rates: number[] = [];
  for (let i = 0; i < plan.trials; i++) rates.push(await inFlight(plan.depth, plan.calls, call));
  return rates;
}

/** One thread's timed trial of a run started by the host's bell: when it began and ended (shared clock, ms) and its calls. */
export interface Span {
  start: number;
  end: number;
  calls: number;
}

/**
 * Many threads at once, each keeping `depth` calls in flight: after one
 * untimed warm-up trial, for each trial the thread says it is `ready` and
 * blocks until the host's bell reaches the trial's number, so that every
 * thread starts together, then completes `calls` calls. The host adds the
 * spans up (`aggregateRate`).
 */
export async function togetherTrials(plan: ThroughputPlan, bell: SharedArrayBuffer, ready: (trial: number) => void, call: () => Promise<unknown>): Promise<Span[]> {
  await inFlight(plan.depth, plan.calls, call);
  const spans: Span[] = [];
  for (let trial = 1; trial <= plan.trials; trial++) {
    ready(trial);
    waitForBell(bell, trial);
    const start = epochMs();
    await inFlight(plan.depth, plan.calls, call);
    spans.push({ start, end: epochMs(), calls: plan.calls });
  }
  return spans;
}

/** Calls per second of threads run together: all their calls over the time from the first start to the last end. */
export function aggregateRate(spans: Span[]): number {
  const start = Math.min(...spans.map((s) => s.start));
  const end = Math.max(...spans.map((s) => s.end));
  return spans.reduce((a, s) => a + s.calls, 0) / ((end - start) / 1000);
}

/** Per-thread lists of spans, regrouped per trial. */
export function byTrial(perThread: Span[][]): Span[][] {
  const trials = Math.min(...perThread.map((s) => s.length));
  return Array.from({ length: trials }, (_, t) => perThread.map((s) => s[t]!));
}
