/**
 * Channel health as a small circuit breaker, kept pure so the in-process store and the Redis
 * script implement the same rules (a shared contract test checks both):
 * - `failureThreshold` consecutive failures open the breaker for `durationMs`;
 * - after a cooldown the channel is on probation: its next failure re-opens it at once, each
 *   repeat doubling the duration up to `maxDurationMs`;
 * - a success closes it and forgets the streak, except that it never ends a cooldown that began
 *   after the request was sent (that request says nothing about what came after) and never
 *   shortens an upstream `Retry-After` rest;
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
  /** Epoch ms when the current cooldown began; 0 when none. */
  cooldownSince: number;
  /** Epoch ms until which the upstream asked for rest (`Retry-After`); 0 when it did not. */
  restUntil: number;
}

export const HEALTHY: ChannelHealth = Object.freeze({
  consecutiveFailures: 0,
  cooldownUntil: 0,
  streak: 0,
  cooldownSince: 0,
  restUntil: 0,
});

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
  const rest =
    retryAfterMs !== undefined && retryAfterMs > 0 ? Math.min(retryAfterMs, policy.maxDurationMs) : 0;
  const restUntil = rest > 0 ? now + rest : 0;
  if (failures >= policy.failureThreshold || h.streak > 0) {
    const d = Math.max(cooldownDuration(policy, h.streak), rest);
    return {
      consecutiveFailures: failures,
      cooldownUntil: now + d,
      streak: h.streak + 1,
      cooldownSince: now,
      restUntil,
    };
  }
  if (rest > 0) {
    return {
      consecutiveFailures: failures,
      cooldownUntil: restUntil,
      streak: h.streak,
      cooldownSince: now,
      restUntil,
    };
  }
  return {
    consecutiveFailures: failures,
    cooldownUntil: 0,
    streak: h.streak,
    cooldownSince: 0,
    restUntil: 0,
  };
}

/** A request sent at `sentAt` succeeded (it completed at `now`). */
export function afterSuccess(h: ChannelHealth, sentAt: number, now: number): ChannelHealth {
  if (h.cooldownUntil > now) {
    if (h.cooldownSince > sentAt) return h;
    if (h.restUntil > now) {
      return {
        consecutiveFailures: 0,
        cooldownUntil: h.restUntil,
        streak: 0,
        cooldownSince: h.cooldownSince,
        restUntil: h.restUntil,
      };
    }
  }
  return HEALTHY;
}
