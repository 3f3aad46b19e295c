import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { retryDelayMs } from '../../operator/backoff.ts';

describe('reconcile retry backoff', () => {
  const opts = { initialMs: 500, maxMs: 60_000 };

  it('grows exponentially to the cap, each delay jittered within [d/2, d]', () => {
    fc.assert(
      fc.property(fc.nat(200), fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), (n, r) => {
        const d = Math.min(opts.maxMs, opts.initialMs * 2 ** n);
        const delay = retryDelayMs(n, opts, () => r);
        expect(delay).toBeGreaterThanOrEqual(Math.floor(d / 2));
        expect(delay).toBeLessThanOrEqual(d);
      }),
    );
    expect(retryDelayMs(0, opts, () => 0)).toBe(250);
    expect(retryDelayMs(3, opts, () => 0)).toBe(2000);
    expect(retryDelayMs(1000, opts, () => 0.999)).toBeLessThanOrEqual(60_000);
  });

  it('spreads retries: delays of one failure count differ (not a fixed 1 s)', () => {
    const delays = new Set(Array.from({ length: 50 }, () => retryDelayMs(4, opts)));
    expect(delays.size).toBeGreaterThan(10);
    for (const d of delays) expect(d).toBeGreaterThanOrEqual(4000);
  });
});
