import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type Algorithm,
  type CheckOutcome,
  type LimitCheck,
  oldestSlot,
  slotExpires,
  windowAdmits,
  windowShape,
} from '../../core/ratelimit/limiter.ts';
import { MemoryLimiter } from '../../core/ratelimit/memory-limiter.ts';

// The embedded limiter's windows against a plain reference: every slot kept in a list, the live
// ones summed afresh on every check. Checks, charges, refunds and sweeps in any order, on a clock
// that starts anywhere and moves by any amount (not on a slot's boundary), with integer and
// fractional amounts (cost): each outcome (allowed, remaining, reset) is the reference's.

type Op =
  | { op: 'check'; reserve: number; gap: number }
  | { op: 'settle'; delta: number; gap: number }
  | { op: 'sweep'; gap: number };

class Reference {
  readonly slots: { slot: number; v: number }[] = [];
  readonly algorithm: Algorithm;
  readonly amount: number;
  readonly perMs: number;
  constructor(algorithm: Algorithm, amount: number, perMs: number) {
    this.algorithm = algorithm;
    this.amount = amount;
    this.perMs = perMs;
  }
  get shape() {
    return windowShape(this.algorithm, this.perMs);
  }
  live(now: number) {
    const oldest = oldestSlot(this.shape, now);
    return this.slots.filter((s) => s.slot >= oldest);
  }
  check(reserve: number, now: number): CheckOutcome {
    const shape = this.shape;
    const cur = Math.floor(now / shape.slotMs);
    const live = this.live(now);
    const used = live.reduce((a, s) => a + s.v, 0);
    if (windowAdmits(used, reserve, this.amount)) {
      return {
        allowed: true,
        remaining: this.amount - used - reserve,
        resetMs: slotExpires(shape, cur) - now,
      };
    }
    let resetMs = slotExpires(shape, cur) - now;
    let left = used;
    for (const s of [...live].sort((a, b) => a.slot - b.slot)) {
      left -= s.v;
      if (windowAdmits(left, reserve, this.amount)) {
        resetMs = slotExpires(shape, s.slot) - now;
        break;
      }
    }
    return { allowed: false, remaining: Math.max(0, this.amount - used), resetMs };
  }
  add(slot: number, v: number) {
    const s = this.slots.find((x) => x.slot === slot);
    if (s) s.v += v;
    else this.slots.push({ slot, v });
  }
}

const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({
    op: fc.constant('check' as const),
    reserve: fc.integer({ min: 0, max: 12 }),
    gap: fc.nat({ max: 400 }),
  }),
  fc.record({
    op: fc.constant('settle' as const),
    delta: fc.integer({ min: -12, max: 12 }),
    gap: fc.nat({ max: 400 }),
  }),
  fc.record({ op: fc.constant('sweep' as const), gap: fc.nat({ max: 400 }) }),
);

describe('MemoryLimiter windows (property)', () => {
  it('give the outcomes of summing every live slot afresh, for checks, charges, refunds and sweeps', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom<Algorithm>('sliding-window', 'fixed-window'),
        fc.constantFrom('requests' as const, 'tokens' as const, 'cost' as const),
        fc.integer({ min: 1, max: 40 }),
        fc.integer({ min: 20, max: 5_000 }),
        fc.integer({ min: 0, max: 4_000_000_000_000 }),
        fc.array(op, { minLength: 1, maxLength: 80 }),
        async (algorithm, kind, amount, perMs, start, ops) => {
          let now = start;
          const limiter = new MemoryLimiter({ now: () => now, sweepMs: 1 << 30 });
          const ref = new Reference(algorithm, amount, perMs);
          // Fractional amounts for cost, as real prices are.
          const scale = kind === 'cost' ? 0.37 : 1;
          let last: { at: number; reserve: number } | undefined;
          try {
            for (const o of ops) {
              now += Math.floor((o.gap * perMs) / 1000);
              if (o.op === 'sweep') {
                limiter.sweep();
                continue;
              }
              if (o.op === 'check') {
                const reserve = o.reserve * scale;
                const c: LimitCheck = { key: 'k', kind, algorithm, amount, perMs, reserve, shadow: false };
                const d = await limiter.check([c]);
                expect(d.outcomes[0]).toEqual(ref.check(reserve, now));
                if (d.allowed) {
                  if (reserve > 0) ref.add(Math.floor(now / ref.shape.slotMs), reserve);
                  last = { at: d.at, reserve };
                }
                continue;
              }
              if (!last) continue;
              const delta = o.delta * scale;
              const c: LimitCheck = {
                key: 'k',
                kind,
                algorithm,
                amount,
                perMs,
                reserve: last.reserve,
                shadow: false,
              };
              await limiter.settle({ at: last.at, ticket: '' }, [{ check: c, delta }]);
              const shape = ref.shape;
              if (delta > 0) ref.add(Math.floor(now / shape.slotMs), delta);
              else if (delta < 0) {
                const slot = Math.floor(last.at / shape.slotMs);
                const s = ref.slots.find((x) => x.slot === slot);
                if (s && slot >= oldestSlot(shape, now)) s.v = Math.max(0, s.v + delta);
              }
            }
          } finally {
            await limiter.close();
          }
        },
      ),
      { numRuns: 400 },
    );
  });
});
