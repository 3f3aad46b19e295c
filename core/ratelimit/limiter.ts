/**
 * The rate limiter contract. A request's matching policies become a list of checks (one per limit
 * and bucket); a Limiter decides them all at once, atomically: either every enforcing check
 * admits and all admitting checks are taken, or nothing is taken. `memory-limiter.ts` is the
 * embedded implementation, `redis/limiter.ts` the fleet-wide one (one Lua script per call); both
 * follow the rules written out in this file, and a shared contract test runs against both.
 *
 * Rules per kind (the amount a check takes now is its `reserve`):
 * - requests: reserve 1.
 * - tokens: reserve the request's estimated tokens (prompt estimate + max_tokens); settle charges
 *   the real usage (`delta` = actual - reserve, a refund when negative).
 * - cost: reserve 0 (the price is known only afterwards): admitted while what is already spent is
 *   under the budget; settle charges the real cost.
 * - concurrent: reserve 1 permit, held by the decision's ticket until settle releases it.
 * A check admits when `used < amount && used + reserve <= amount` (windows) or
 * `tokens > 0 && tokens >= reserve` (token bucket).
 */

export type Algorithm = 'sliding-window' | 'fixed-window' | 'token-bucket';
export type LimitKind = 'requests' | 'tokens' | 'cost' | 'concurrent';

/** One limit of one policy, applied to one bucket for one request. */
export interface LimitCheck {
  /** Bucket identity (policy, limit index, algorithm, limitBy value); stores add their prefix. */
  key: string;
  kind: LimitKind;
  algorithm: Algorithm;
  amount: number;
  /** Window length; 0 for concurrent. */
  perMs: number;
  reserve: number;
  /** Counted and reported, never enforced. */
  shadow: boolean;
}

export interface CheckOutcome {
  allowed: boolean;
  /** Quota left after this request (what is left unused when it was rejected). */
  remaining: number;
  /** Rejected: ms until the request would fit. Admitted: ms until the quota is whole again. */
  resetMs: number;
}

export interface LimitDecision {
  /** Every enforcing (non-shadow) check admitted, and every admitting check was taken. */
  allowed: boolean;
  outcomes: CheckOutcome[];
  /** The clock of the reservation: settle refunds into the same window. */
  at: number;
  /** Names the concurrent permits this decision holds. */
  ticket: string;
}

/** Real usage for a taken check: `delta` = actual - reserve (tokens, cost); concurrent: release. */
export interface SettleItem {
  check: LimitCheck;
  delta: number;
}

export interface Limiter {
  readonly kind: 'memory' | 'redis';
  /** Rejects (the caller applies `onRedisUnavailable`) when the shared store cannot answer. */
  check(checks: readonly LimitCheck[]): Promise<LimitDecision>;
  settle(decision: Pick<LimitDecision, 'at' | 'ticket'>, items: readonly SettleItem[]): Promise<void>;
  /** check() and settle() without a promise, on a limiter that never waits (the embedded one). */
  checkNow?(checks: readonly LimitCheck[]): LimitDecision;
  settleNow?(decision: Pick<LimitDecision, 'at' | 'ticket'>, items: readonly SettleItem[]): void;
  close(): Promise<void>;
}

/**
 * A sliding window is kept as this many sub-windows (slots). A request admitted at time t counts
 * until t + per; since only its slot is known, it counts until its slot's end + per, so a window
 * can hold up to one slot (1/20) less than `per` would allow, but never more.
 */
export const SLIDING_SLOTS = 20;

/** How long a concurrent permit lives without renewal (renewed while the request runs). */
export const DEFAULT_PERMIT_TTL_MS = 15_000;

/**
 * Slots are `slotMs` long, aligned to multiples of it on the store's clock. Slot s counts until
 * `(s + 1) * slotMs + lagMs`: a fixed window is one slot of `per` that counts until it ends (lag 0);
 * a sliding window's slots count for `per` after they end.
 */
export interface WindowShape {
  slotMs: number;
  lagMs: number;
}

export function windowShape(algorithm: Algorithm, perMs: number): WindowShape {
  return algorithm === 'sliding-window'
    ? { slotMs: Math.max(1, Math.ceil(perMs / SLIDING_SLOTS)), lagMs: perMs }
    : { slotMs: perMs, lagMs: 0 };
}

/** The oldest slot that still counts at `now`. */
export function oldestSlot(w: WindowShape, now: number): number {
  return Math.floor((now - w.lagMs) / w.slotMs);
}

/** When slot `slot` stops counting. */
export function slotExpires(w: WindowShape, slot: number): number {
  return (slot + 1) * w.slotMs + w.lagMs;
}

/** The admission rule for windows (also used with a token bucket's level as `amount - used`). */
export function windowAdmits(used: number, reserve: number, amount: number): boolean {
  return used < amount && used + reserve <= amount;
}
