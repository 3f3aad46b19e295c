import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PermitSets } from '../../core/permits.ts';

describe('PermitSets', () => {
  it('never holds more than max live permits; expired ones stop counting; each returns once (property)', () => {
    const op = fc.oneof(
      fc.record({
        take: fc.constant(true),
        key: fc.constantFrom('a', 'b'),
        ttl: fc.integer({ min: 1, max: 50 }),
      }),
      fc.record({ drop: fc.nat({ max: 30 }) }),
      fc.record({ wait: fc.integer({ min: 0, max: 30 }) }),
    );
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 4 }), fc.array(op, { maxLength: 60 }), (max, ops) => {
        const permits = new PermitSets();
        const live = new Map<string, { key: string; expiry: number }>();
        let now = 1_000;
        let n = 0;
        for (const o of ops) {
          if ('wait' in o) now += o.wait;
          else if ('take' in o) {
            const id = `p${n++}`;
            const held = [...live.values()].filter((p) => p.key === o.key && p.expiry > now).length;
            const ok = permits.tryTake(o.key, max, id, now + o.ttl, now);
            expect(ok).toBe(held < max);
            if (ok) live.set(id, { key: o.key, expiry: now + o.ttl });
          } else {
            const id = [...live.keys()][o.drop % Math.max(1, live.size)];
            if (id === undefined) continue;
            const p = live.get(id)!;
            const dropped = permits.drop(p.key, id);
            // A permit past its expiry may already have been dropped by a count.
            if (p.expiry > now) expect(dropped).toBe(true);
            expect(permits.drop(p.key, id)).toBe(false);
            live.delete(id);
          }
          for (const key of ['a', 'b']) {
            const expected = [...live.values()].filter((p) => p.key === key && p.expiry > now).length;
            expect(permits.held(key, now)).toBe(expected);
            expect(expected).toBeLessThanOrEqual(max);
          }
        }
      }),
    );
  });
});
