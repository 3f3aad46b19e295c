import type { Algorithm } from '../../core/ratelimit/limiter.ts';

/**
 * The rate-limit invariant, checked on what a limiter admitted. Each admission is known to have
 * been decided at some time within [from, to] (exact for an in-process clock; send and response
 * times for a request through a relay, whose limiter runs on Redis TIME). A violation is only
 * reported when it is certain whatever the exact times were:
 * - sliding-window: no span shorter than `per` holds more than `amount`;
 * - fixed-window: no aligned window of `per` holds more than `amount`;
 * - token-bucket: no span of length d holds more than `amount + d * amount / per`.
 */
export interface Admission {
  from: number;
  to: number;
  /** What it took (1 for a request). */
  amount: number;
}

export interface Violation {
  algorithm: Algorithm;
  taken: number;
  allowed: number;
  admissions: Admission[];
}

export function overAdmission(
  algorithm: Algorithm,
  amount: number,
  perMs: number,
  admitted: readonly Admission[],
): Violation | undefined {
  if (algorithm === 'fixed-window') {
    const windows = new Map<number, Admission[]>();
    for (const a of admitted) {
      const w = Math.floor(a.from / perMs);
      if (Math.floor(a.to / perMs) !== w) continue; // may belong to either window
      windows.set(w, [...(windows.get(w) ?? []), a]);
    }
    for (const group of windows.values()) {
      const taken = sum(group);
      if (taken > amount) return { algorithm, taken, allowed: amount, admissions: group };
    }
    return undefined;
  }
  // Every admission decided within [start, to] for the group that starts no earlier than `start`.
  for (const first of admitted) {
    const start = first.from;
    const later = admitted.filter((a) => a.from >= start).sort((a, b) => a.to - b.to);
    let taken = 0;
    for (let k = 0; k < later.length; k++) {
      const span = later[k]!.to - start;
      taken += later[k]!.amount;
      if (algorithm === 'sliding-window' && span >= perMs) break;
      const allowed = algorithm === 'sliding-window' ? amount : amount + (span * amount) / perMs;
      if (taken > allowed + 1e-9) return { algorithm, taken, allowed, admissions: later.slice(0, k + 1) };
    }
  }
  return undefined;
}

function sum(xs: readonly Admission[]): number {
  return xs.reduce((n, a) => n + a.amount, 0);
}
