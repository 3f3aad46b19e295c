/**
 * Calendar periods in UTC, the one home for their keys and boundaries: key budgets, the stores'
 * spend counters and the usage rollups all bucket by these, so their figures line up across pods
 * and with the database.
 */

export const PERIODS = ['day', 'month'] as const;
export type Period = (typeof PERIODS)[number];

const DAY_MS = 86_400_000;
let dayStart = Number.NaN;
let dayKey = '';
let monthKey = '';

/** `YYYY-MM-DD` (day) or `YYYY-MM` (month) of an epoch ms. */
export function periodKey(period: Period, at: number): string {
  // Called on every accounted request: format a date only when the UTC day changes.
  if (!(at >= dayStart && at < dayStart + DAY_MS)) {
    dayStart = at - (((at % DAY_MS) + DAY_MS) % DAY_MS);
    const iso = new Date(dayStart).toISOString();
    dayKey = iso.slice(0, 10);
    monthKey = iso.slice(0, 7);
  }
  return period === 'day' ? dayKey : monthKey;
}

/** First instant (UTC) of the period containing `at`. */
export function periodStart(period: Period, at: number): Date {
  const d = new Date(at);
  return period === 'day'
    ? new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate()))
    : new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1));
}

/** Next period boundary after `at` (when a spent budget is available again). */
export function periodEnd(period: Period, at: number): Date {
  const s = periodStart(period, at);
  return period === 'day'
    ? new Date(s.getTime() + DAY_MS)
    : new Date(Date.UTC(s.getUTCFullYear(), s.getUTCMonth() + 1, 1));
}

/** `YYYY-MM-DD` of the day the period containing `at` begins on (the rollups' first row). */
export function periodFirstDay(period: Period, at: number): string {
  return periodKey('day', periodStart(period, at).getTime());
}
