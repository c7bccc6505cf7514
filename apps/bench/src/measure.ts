/**
 * The timing loops, shared by Moat's domain programs and by the baselines so
 * that both sides of every ratio are measured by the same code. Latencies are
 * in microseconds; throughputs in completed calls per second.
 */

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
