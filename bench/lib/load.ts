// The two ways a benchmark sends requests: one at a time, interleaved across the targets request by
// request (so drift hits every target alike), and closed-loop load (N workers back to back).

import { Errors, type RequestSpec, type Sample, send, type Target } from './requests.ts';

/**
 * The order of round i over n targets, ABBA-style: a rotation that moves every other round, played
 * forwards then backwards, so that every target is as often first, last and next to each other
 * target. For two targets: AB BA BA AB.
 */
export function roundOrder<T>(targets: readonly T[], i: number): T[] {
  const k = Math.floor(i / 2) % targets.length;
  const rotated = [...targets.slice(k), ...targets.slice(0, k)];
  return i % 2 === 0 ? rotated : rotated.reverse();
}

/** Concurrency 1: `warmup` untimed rounds, then `n` rounds; the successful samples per target. */
export async function interleave(
  targets: readonly Target[],
  spec: RequestSpec,
  warmup: number,
  n: number,
): Promise<{ samples: Map<Target, Sample[]>; errors: Map<Target, Errors> }> {
  for (let i = 0; i < warmup; i++) for (const t of targets) await send(t, spec);
  const samples = new Map(targets.map((t) => [t, [] as Sample[]]));
  const errors = new Map(targets.map((t) => [t, new Errors()]));
  for (let i = 0; i < n; i++) {
    for (const t of roundOrder(targets, i)) {
      const s = await send(t, spec);
      errors.get(t)!.add(s);
      if (s.ok) samples.get(t)!.push(s);
    }
  }
  return { samples, errors };
}

export interface LoadAcc {
  /** Latencies of the successful requests, and the relay's x-kuberelay-overhead-ms of each. */
  latencies: number[];
  overheads: number[];
  errors: Errors;
  seconds: number;
}

export const newAcc = (): LoadAcc => ({ latencies: [], overheads: [], errors: new Errors(), seconds: 0 });

/** `concurrency` workers sending back to back until the deadline; returns the seconds it took. */
export async function drive(
  t: Target,
  spec: RequestSpec,
  concurrency: number,
  seconds: number,
  acc: LoadAcc,
): Promise<number> {
  const deadline = performance.now() + seconds * 1000;
  const worker = async () => {
    while (performance.now() < deadline) {
      const s = await send(t, spec);
      acc.errors.add(s);
      if (!s.ok) continue;
      acc.latencies.push(s.totalMs);
      if (s.overheadMs !== undefined) acc.overheads.push(s.overheadMs);
    }
  };
  const start = performance.now();
  await Promise.all(Array.from({ length: concurrency }, worker));
  return (performance.now() - start) / 1000;
}
