/**
 * Channel health as a small circuit breaker, kept pure so the in-process store and the Redis
 * script implement the same rules (a shared contract test checks both):
 * - `failureThreshold` consecutive failures open the breaker for `durationMs`;
 * - after a cooldown the channel is on probation: its next failure re-opens it at once, each
 *   repeat doubling the duration up to `maxDurationMs`;
 * - any success closes it and forgets the streak;
 * - an upstream `Retry-After` cools the channel down for that long (capped), whatever the count.
 */

export interface CooldownPolicy {
  failureThreshold: number;
  durationMs: number;
  maxDurationMs: number;
}

export interface ChannelHealth {
  consecutiveFailures: number;
  /** Epoch ms until which the channel gets no traffic; 0 when not cooling down. */
  cooldownUntil: number;
  /** How many cooldowns in a row without a success in between (drives the backoff). */
  streak: number;
}

export const HEALTHY: ChannelHealth = Object.freeze({ consecutiveFailures: 0, cooldownUntil: 0, streak: 0 });

export function cooldownDuration(policy: CooldownPolicy, streak: number): number {
  return Math.min(policy.durationMs * 2 ** Math.min(streak, 30), policy.maxDurationMs);
}

export function afterFailure(
  h: ChannelHealth,
  policy: CooldownPolicy,
  now: number,
  retryAfterMs?: number,
): ChannelHealth {
  // Failures of requests that started before the cooldown began say nothing new.
  if (h.cooldownUntil > now) return h;
  const failures = h.consecutiveFailures + 1;
  if (failures >= policy.failureThreshold || h.streak > 0) {
    const d = Math.max(cooldownDuration(policy, h.streak), Math.min(retryAfterMs ?? 0, policy.maxDurationMs));
    return { consecutiveFailures: failures, cooldownUntil: now + d, streak: h.streak + 1 };
  }
  if (retryAfterMs !== undefined && retryAfterMs > 0) {
    return {
      consecutiveFailures: failures,
      cooldownUntil: now + Math.min(retryAfterMs, policy.maxDurationMs),
      streak: h.streak,
    };
  }
  return { consecutiveFailures: failures, cooldownUntil: 0, streak: h.streak };
}

export function afterSuccess(_h: ChannelHealth): ChannelHealth {
  return HEALTHY;
}
