import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PERIODS, periodEnd, periodFirstDay, periodKey, periodStart } from '../../core/period.ts';

describe('periodKey', () => {
  it('gives UTC day and month buckets, across day, month and year boundaries in any order', () => {
    const times = [
      '2026-11-22T23:59:59.999Z',
      '2026-11-23T00:00:00.000Z',
      '2026-11-30T12:00:00.000Z',
      '2026-12-01T00:00:00.000Z',
      '2026-11-22T00:00:00.000Z',
      '2027-01-01T00:00:00.001Z',
      '1970-01-01T00:00:00.000Z',
    ];
    for (const t of [...times, ...times.reverse()]) {
      const at = Date.parse(t);
      expect(periodKey('day', at)).toBe(t.slice(0, 10));
      expect(periodKey('month', at)).toBe(t.slice(0, 7));
    }
  });

  it('keys, starts and ends agree: an instant lies in [start, end) of its period, whose key it shares (property)', () => {
    const instant = fc.integer({
      min: Date.parse('1971-01-01T00:00:00Z'),
      max: Date.parse('2100-01-01T00:00:00Z'),
    });
    fc.assert(
      fc.property(instant, fc.constantFrom(...PERIODS), (at, period) => {
        const start = periodStart(period, at).getTime();
        const end = periodEnd(period, at).getTime();
        expect(start).toBeLessThanOrEqual(at);
        expect(at).toBeLessThan(end);
        expect(periodKey(period, start)).toBe(periodKey(period, at));
        expect(periodKey(period, end)).not.toBe(periodKey(period, at));
        expect(periodKey(period, end - 1)).toBe(periodKey(period, at));
        expect(periodFirstDay(period, at)).toBe(new Date(start).toISOString().slice(0, 10));
        expect(periodKey(period, at)).toBe(new Date(at).toISOString().slice(0, period === 'day' ? 10 : 7));
      }),
    );
  });
});
