import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { loadKube } from '../../kube/client.ts';
import { DEFAULT_LEASE_TIMINGS, LeaderElector, leaseTimings } from '../../operator/leader.ts';

// Regression: with the chart's environment (no KUBERELAY_LEASE_* set) the CLI passes
// `leaseDurationMs: undefined`, which a spread let override the default: the Lease got no
// leaseDurationSeconds and the loop ran every millisecond.
describe('leader election timings', () => {
  it('options given as undefined keep client-go defaults (15 s / 10 s / 2 s)', () => {
    const kube = loadKube(undefined);
    const elector = new LeaderElector(kube.coordination, {
      namespace: 'ns',
      name: 'lease',
      identity: 'me',
      leaseDurationMs: undefined,
      renewDeadlineMs: undefined,
      retryPeriodMs: undefined,
      onStartedLeading: () => {},
      onStoppedLeading: () => {},
    });
    expect(elector.timings).toEqual({
      leaseDurationMs: 15_000,
      renewDeadlineMs: 10_000,
      retryPeriodMs: 2_000,
    });
  });

  it('a shorter lease scales the renew deadline and retry period with it', () => {
    expect(leaseTimings({ leaseDurationMs: 3000 })).toEqual({
      leaseDurationMs: 3000,
      renewDeadlineMs: 2000,
      retryPeriodMs: 400,
    });
  });

  it('refuses timings client-go refuses, naming the values', () => {
    expect(() => leaseTimings({ leaseDurationMs: 5000, renewDeadlineMs: 5000 })).toThrow(
      /lease duration \(5000 ms\) must be greater than the renew deadline \(5000 ms\)/,
    );
    expect(() => leaseTimings({ renewDeadlineMs: 2000, retryPeriodMs: 2000 })).toThrow(
      /1.2 x the retry period/,
    );
  });

  it('whatever subset is set (or garbage), the result is either refused or ordered as client-go requires', () => {
    const opt = fc.option(fc.oneof(fc.integer({ min: -10, max: 120_000 }), fc.constant(Number.NaN)), {
      nil: undefined,
    });
    fc.assert(
      fc.property(opt, opt, opt, (leaseDurationMs, renewDeadlineMs, retryPeriodMs) => {
        let t: ReturnType<typeof leaseTimings>;
        try {
          t = leaseTimings({ leaseDurationMs, renewDeadlineMs, retryPeriodMs });
        } catch {
          return; // refused with a message
        }
        expect(t.leaseDurationMs).toBeGreaterThan(t.renewDeadlineMs);
        expect(t.renewDeadlineMs).toBeGreaterThan(1.2 * t.retryPeriodMs);
        expect(t.retryPeriodMs).toBeGreaterThan(0);
        expect(Number.isFinite(t.leaseDurationMs)).toBe(true);
        if (leaseDurationMs === undefined && renewDeadlineMs === undefined && retryPeriodMs === undefined)
          expect(t).toEqual(DEFAULT_LEASE_TIMINGS);
      }),
    );
  });
});
