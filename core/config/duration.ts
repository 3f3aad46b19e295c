import parse from 'parse-duration';
import { z } from 'zod';

/**
 * Durations are Go/Kubernetes-style strings with an added `d` unit (`500ms`, `30s`, `1m30s`, `3m`,
 * `1h`, `30d`). The shape is checked by a regex (the same one the CRDs use) so that what the API
 * server accepts and what zod accepts never drift; the arithmetic is parse-duration's.
 */
export const DURATION_PATTERN = '^([0-9]{1,7}(ms|s|m|h|d))+$';
const durationRe = new RegExp(DURATION_PATTERN);

export function parseDuration(value: string): number {
  if (!durationRe.test(value)) throw new Error(`invalid duration "${value}"`);
  const ms = parse(value);
  if (ms === null || !Number.isFinite(ms)) throw new Error(`invalid duration "${value}"`);
  return ms;
}

/** Like parseDuration, but undefined for a malformed value (zod reports the shape separately). */
export function tryParseDuration(value: string): number | undefined {
  if (!durationRe.test(value)) return undefined;
  const ms = parse(value);
  return ms === null || !Number.isFinite(ms) ? undefined : ms;
}

/** A zod duration field bounded to [min, max]; the parsed value stays a string in the object. */
export function duration(min = '1ms', max = '365d') {
  const lo = parseDuration(min);
  const hi = parseDuration(max);
  return z
    .string()
    .regex(durationRe, { message: 'must be a duration such as 500ms, 30s, 5m, 1h or 30d' })
    .refine((v) => {
      const ms = tryParseDuration(v);
      return ms === undefined || (ms >= lo && ms <= hi);
    }, `must be between ${min} and ${max}`);
}
