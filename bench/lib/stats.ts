// Statistics of latency samples: nearest-rank percentiles, and added latency (relay minus baseline)
// with bootstrap intervals from a seeded PRNG so that a rerun on the same samples gives the same interval.

export interface LatencyStats {
  count: number;
  mean: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

export const sorted = (xs: readonly number[]): Float64Array => Float64Array.from(xs).sort();

/** Nearest-rank percentile of an ascending array (q in 0..1). */
export function quantile(s: Float64Array, q: number): number {
  if (s.length === 0) return Number.NaN;
  const i = Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1));
  return s[i]!;
}

export function stats(xs: readonly number[]): LatencyStats {
  const s = sorted(xs);
  let sum = 0;
  for (const x of s) sum += x;
  return {
    count: s.length,
    mean: s.length ? sum / s.length : Number.NaN,
    p50: quantile(s, 0.5),
    p90: quantile(s, 0.9),
    p99: quantile(s, 0.99),
    max: s.length ? s[s.length - 1]! : Number.NaN,
  };
}

/** mulberry32: a seeded PRNG so the bootstrap is repeatable. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface AddedLatency {
  /** quantile(relay) - quantile(direct), in ms. */
  p50: number;
  p90: number;
  p99: number;
  mean: number;
  /** 95% bootstrap intervals of the p50 and p99 differences. */
  p50ci: [number, number];
  p99ci: [number, number];
  /** Median of the per-pair differences (request i through the relay minus its direct neighbour). */
  pairedMedian: number;
}

/**
 * Added latency as the difference of the two latency distributions' percentiles. The requests are
 * not the same requests, so "p99 of the differences" is not defined; p99(relay) - p99(direct) is what
 * a client sees change. The bootstrap (resampling each side, 400 times) gives the interval.
 */
export function added(direct: readonly number[], relay: readonly number[], pairs: boolean): AddedLatency {
  const d = stats(direct);
  const r = stats(relay);
  const rnd = prng(42);
  const resample = (xs: readonly number[]) => {
    const out = new Float64Array(xs.length);
    for (let i = 0; i < xs.length; i++) out[i] = xs[Math.floor(rnd() * xs.length)]!;
    return out.sort();
  };
  const d50: number[] = [];
  const d99: number[] = [];
  for (let i = 0; i < 400; i++) {
    const a = resample(direct);
    const b = resample(relay);
    d50.push(quantile(b, 0.5) - quantile(a, 0.5));
    d99.push(quantile(b, 0.99) - quantile(a, 0.99));
  }
  const s50 = sorted(d50);
  const s99 = sorted(d99);
  let pairedMedian = Number.NaN;
  if (pairs) {
    const n = Math.min(direct.length, relay.length);
    const diffs: number[] = [];
    for (let i = 0; i < n; i++) diffs.push(relay[i]! - direct[i]!);
    pairedMedian = quantile(sorted(diffs), 0.5);
  }
  return {
    p50: r.p50 - d.p50,
    p90: r.p90 - d.p90,
    p99: r.p99 - d.p99,
    mean: r.mean - d.mean,
    p50ci: [quantile(s50, 0.025), quantile(s50, 0.975)],
    p99ci: [quantile(s99, 0.025), quantile(s99, 0.975)],
    pairedMedian,
  };
}
