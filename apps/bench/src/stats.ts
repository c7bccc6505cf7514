/** Order statistics of a run's samples: medians resist the outliers a busy machine produces. */

export interface Summary {
  median: number;
  p99: number;
  samples: number;
}

/** The value below which a fraction `q` of the samples lie (nearest rank). */
export function quantile(samples: ArrayLike<number>, q: number): number {
  if (samples.length === 0) return NaN;
  const sorted = Float64Array.from(samples).sort();
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[rank]!;
}

export const median = (samples: ArrayLike<number>): number => quantile(samples, 0.5);

export function summarize(samples: ArrayLike<number>): Summary {
  return { median: median(samples), p99: quantile(samples, 0.99), samples: samples.length };
}
