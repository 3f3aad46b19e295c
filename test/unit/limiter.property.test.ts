import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type Algorithm, type LimitCheck, windowShape } from '../../core/ratelimit/limiter.ts';
import { MemoryLimiter } from '../../core/ratelimit/memory-limiter.ts';
import { type Admission, overAdmission } from '../helpers/admissions.ts';

// The in-process limiter on an injected clock that starts anywhere (not on a window or slot
// boundary), under random arrival patterns: it never admits more than its limit (see
// test/helpers/admissions.ts for the invariant per algorithm), and it does not refuse what the
// limit clearly leaves room for.

const ALGORITHMS: Algorithm[] = ['sliding-window', 'fixed-window', 'token-bucket'];

const scenario = fc.record({
  algorithm: fc.constantFrom(...ALGORITHMS),
  kind: fc.constantFrom('requests' as const, 'tokens' as const),
  amount: fc.integer({ min: 1, max: 30 }),
  perMs: fc.integer({ min: 20, max: 200_000 }),
  start: fc.integer({ min: 0, max: 4_000_000_000_000 }),
  // Bursts: a gap (in thousandths of `per`) then several requests at the same instant.
  arrivals: fc.array(
    fc.record({
      gap: fc.integer({ min: 0, max: 700 }),
      burst: fc.integer({ min: 1, max: 8 }),
      reserve: fc.integer({ min: 1, max: 30 }),
    }),
    { minLength: 1, maxLength: 60 },
  ),
});

describe('MemoryLimiter never over-admits (property)', () => {
  it('in no window are more than the limit admitted, from any start, for every algorithm', async () => {
    await fc.assert(
      fc.asyncProperty(scenario, async (s) => {
        let now = s.start;
        const limiter = new MemoryLimiter({ now: () => now });
        const admitted: Admission[] = [];
        const shape = windowShape(s.algorithm, s.perMs);
        try {
          for (const a of s.arrivals) {
            now += Math.floor((a.gap * s.perMs) / 1000);
            const reserve = s.kind === 'tokens' ? Math.min(a.reserve, s.amount) : 1;
            const c: LimitCheck = {
              key: 'k',
              kind: s.kind,
              algorithm: s.algorithm,
              amount: s.amount,
              perMs: s.perMs,
              reserve,
              shadow: false,
            };
            for (let i = 0; i < a.burst; i++) {
              const room = roomFor(s.algorithm, s.amount, s.perMs, shape.slotMs, admitted, now, reserve);
              const d = await limiter.check([c]);
              if (room) expect(d.allowed, 'refused although the limit had room').toBe(true);
              if (d.allowed) admitted.push({ from: now, to: now, amount: reserve });
            }
          }
        } finally {
          await limiter.close();
        }
        expect(overAdmission(s.algorithm, s.amount, s.perMs, admitted)).toBeUndefined();
      }),
      { numRuns: 300 },
    );
  });
});

/**
 * Whether a request clearly fits: nothing that could still count leaves it without room. A
 * sliding window counts admissions for `per` after the end of their slot, so up to one slot more.
 */
function roomFor(
  algorithm: Algorithm,
  amount: number,
  perMs: number,
  slotMs: number,
  admitted: readonly Admission[],
  now: number,
  reserve: number,
): boolean {
  const since = (from: number) =>
    admitted.filter((a) => a.from > from && a.from <= now).reduce((n, a) => n + a.amount, 0);
  if (algorithm === 'token-bucket') return since(now - perMs) === 0;
  const used =
    algorithm === 'sliding-window' ? since(now - perMs - slotMs) : since(Math.floor(now / perMs) * perMs - 1);
  return used < amount && used + reserve <= amount;
}
