import { describe, expect, it } from 'vitest';
import { periodKey } from '../../core/state/store.ts';

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
});
