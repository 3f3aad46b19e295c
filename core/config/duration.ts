import parse from 'parse-duration';
import { z } from 'zod';

/**
 * Durations are Go-style strings (`500ms`, `30s`, `1m30s`, `1h`), which the API server's CEL
 * `duration()` understands, or a whole number of days (`30d`) where a field reaches past a day
 * (RateLimitPolicy `per`). The patterns below are the ones the CRDs use, so the API server and
 * zod accept exactly the same strings; the arithmetic is parse-duration's.
 */
export const DURATION_PATTERN = '^([0-9]{1,7}(h|ms|m|s))+$';
export const DURATION_DAYS_PATTERN = '^([0-9]{1,7}d|([0-9]{1,7}(h|ms|m|s))+)$';
const DAY_MS = 86_400_000;
const anyDurationRe = new RegExp(DURATION_DAYS_PATTERN);

export function parseDuration(value: string): number {
  const ms = tryParseDuration(value);
  if (ms === undefined) throw new Error(`invalid duration "${value}"`);
  return ms;
}

/** Like parseDuration, but undefined for a malformed value (zod reports the shape separately). */
export function tryParseDuration(value: string): number | undefined {
  if (!anyDurationRe.test(value)) return undefined;
  const ms = parse(value);
  return ms === null || !Number.isFinite(ms) ? undefined : ms;
}

/** A zod duration field bounded to [min, max]; days are allowed only where max reaches a day. */
export function duration(min: string, max: string) {
  const lo = parseDuration(min);
  const hi = parseDuration(max);
  const withDays = hi > DAY_MS;
  return z
    .string()
    .max(32)
    .regex(new RegExp(withDays ? DURATION_DAYS_PATTERN : DURATION_PATTERN), {
      message: withDays
        ? 'must be a duration such as 30s, 5m, 36h or 30d'
        : 'must be a duration such as 500ms, 30s, 5m or 1h',
    })
    .refine((v) => {
      const ms = tryParseDuration(v);
      return ms === undefined || (ms >= lo && ms <= hi);
    }, `must be between ${min} and ${max}`);
}
