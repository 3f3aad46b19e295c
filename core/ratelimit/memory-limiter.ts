import { PermitSets } from '../permits.ts';
import {
  type CheckOutcome,
  type LimitCheck,
  type LimitDecision,
  type Limiter,
  oldestSlot,
  type SettleItem,
  slotExpires,
  type WindowShape,
  windowAdmits,
  windowShape,
} from './limiter.ts';

/**
 * The embedded limiter: one process, no Redis. Same rules as the Lua script of redis/limiter.ts
 * (a contract test runs both). Idle buckets are swept once a minute so per-client buckets do not
 * accumulate.
 */

interface Window extends WindowShape {
  /** slot index -> amount taken in it */
  taken: Map<number, number>;
  /** The sum of `taken`'s values (kept only while every value is an integer: then it is exact). */
  used: number;
  integral: boolean;
  /** No slot in `taken` is older than this (a lower bound): until it expires, nothing has. */
  floor: number;
}

interface Bucket {
  tokens: number;
  ts: number;
  /** Full after this (for the sweep). */
  fullAt: number;
}

export class MemoryLimiter implements Limiter {
  readonly kind = 'memory' as const;
  readonly #windows = new Map<string, Window>();
  readonly #buckets = new Map<string, Bucket>();
  readonly #permits = new PermitSets(); // held by tickets until settle
  readonly #now: () => number;
  readonly #sweep: NodeJS.Timeout;
  // Tickets only name permits within this process: a counter, not a random UUID per request.
  #tickets = 0;
  // Window shapes by algorithm and length, built once instead of per check.
  readonly #shapes = {
    'sliding-window': new Map<number, WindowShape>(),
    'fixed-window': new Map<number, WindowShape>(),
  };
  // #evaluate's second result (the level a commit needs), so it returns no tuple per check; and
  // those levels for one check() call, reused (checkNow never waits, so calls do not overlap).
  #level = 0;
  readonly #levels: number[] = [];

  constructor(opts: { now?: () => number; sweepMs?: number } = {}) {
    this.#now = opts.now ?? Date.now;
    this.#sweep = setInterval(() => this.sweep(), opts.sweepMs ?? 60_000);
    this.#sweep.unref();
  }

  async check(checks: readonly LimitCheck[]): Promise<LimitDecision> {
    return this.checkNow(checks);
  }

  /** check(), answered at once: nothing here waits. */
  checkNow(checks: readonly LimitCheck[]): LimitDecision {
    const now = this.#now();
    const ticket = `t${++this.#tickets}`;
    const outcomes: CheckOutcome[] = [];
    const levels = this.#levels;
    let allowed = true;
    for (let i = 0; i < checks.length; i++) {
      const c = checks[i]!;
      const o = this.#evaluate(c, now);
      outcomes.push(o);
      levels[i] = this.#level;
      if (!o.allowed && !c.shadow) allowed = false;
    }
    if (allowed) {
      for (let i = 0; i < checks.length; i++) {
        if (outcomes[i]!.allowed) this.#take(checks[i]!, now, ticket, levels[i]!);
      }
    }
    return { allowed, outcomes, at: now, ticket };
  }

  async settle(d: Pick<LimitDecision, 'at' | 'ticket'>, items: readonly SettleItem[]): Promise<void> {
    this.settleNow(d, items);
  }

  /** settle(), done at once. */
  settleNow(d: Pick<LimitDecision, 'at' | 'ticket'>, items: readonly SettleItem[]): void {
    const now = this.#now();
    for (const { check: c, delta } of items) {
      if (c.kind === 'concurrent') {
        this.#permits.drop(c.key, d.ticket);
      } else if (c.algorithm === 'token-bucket') {
        const level = this.#bucketLevel(c, now);
        this.#setBucket(c, Math.min(c.amount, level - delta), now);
      } else if (delta > 0) {
        this.#add(c, Math.floor(now / this.#shape(c).slotMs), delta);
      } else if (delta < 0) {
        // A refund goes back into the slot it was reserved in, while that slot still counts.
        const shape = this.#shape(c);
        const slot = Math.floor(d.at / shape.slotMs);
        const w = this.#windows.get(c.key);
        const v = w?.taken.get(slot);
        if (w && v !== undefined && slot >= oldestSlot(shape, now)) {
          const next = Math.max(0, v + delta);
          w.taken.set(slot, next);
          w.used += next - v;
          if (!Number.isInteger(next)) w.integral = false;
        }
      }
    }
  }

  async close(): Promise<void> {
    clearInterval(this.#sweep);
  }

  /** Buckets held in memory (windows, token buckets, permit sets). */
  get size(): number {
    return this.#windows.size + this.#buckets.size + this.#permits.size;
  }

  /** Drops windows and buckets that no longer hold anything. */
  sweep() {
    const now = this.#now();
    for (const [key, w] of this.#windows) {
      this.#expire(w, oldestSlot(w, now));
      if (w.taken.size === 0) this.#windows.delete(key);
    }
    for (const [key, b] of this.#buckets) if (b.fullAt <= now) this.#buckets.delete(key);
  }

  /** The outcome; sets #level to the level a commit needs (bucket tokens after refill). */
  #evaluate(c: LimitCheck, now: number): CheckOutcome {
    this.#level = 0;
    if (c.kind === 'concurrent') {
      const used = this.#permits.held(c.key);
      const ok = used + c.reserve <= c.amount;
      // In-process permits have no expiry to wait for: suggest a short retry.
      return {
        allowed: ok,
        remaining: Math.max(0, c.amount - used - (ok ? c.reserve : 0)),
        resetMs: ok ? 0 : 1000,
      };
    }
    if (c.algorithm === 'token-bucket') {
      const tokens = this.#bucketLevel(c, now);
      this.#level = tokens;
      const ok = tokens > 0 && tokens >= c.reserve;
      if (ok) {
        const left = tokens - c.reserve;
        return {
          allowed: true,
          remaining: left,
          resetMs: Math.ceil(((c.amount - left) * c.perMs) / c.amount),
        };
      }
      // Until the level reaches the reserve (or rises above zero when nothing is reserved).
      const resetMs =
        c.reserve > 0
          ? Math.ceil(((c.reserve - tokens) * c.perMs) / c.amount)
          : Math.ceil((-tokens * c.perMs) / c.amount) + 1;
      return { allowed: false, remaining: Math.max(0, tokens), resetMs };
    }
    const shape = this.#shape(c);
    const cur = Math.floor(now / shape.slotMs);
    const oldest = oldestSlot(shape, now);
    const win = this.#windows.get(c.key);
    const w = win?.taken;
    let used = 0;
    if (win) {
      // Sum the slots only when one may have expired or a sum of fractions would not be exact.
      if (win.integral && oldest <= win.floor) used = win.used;
      else used = this.#expire(win, oldest);
    }
    if (windowAdmits(used, c.reserve, c.amount)) {
      return {
        allowed: true,
        remaining: c.amount - used - c.reserve,
        resetMs: slotExpires(shape, cur) - now,
      };
    }
    // Rejected: the request fits once enough of the oldest slots have expired.
    const live = [...(w ?? [])].sort((a, b) => a[0] - b[0]);
    let resetMs = slotExpires(shape, cur) - now;
    let left = used;
    for (const [slot, v] of live) {
      left -= v;
      if (windowAdmits(left, c.reserve, c.amount)) {
        resetMs = slotExpires(shape, slot) - now;
        break;
      }
    }
    return { allowed: false, remaining: Math.max(0, c.amount - used), resetMs };
  }

  #shape(c: LimitCheck): WindowShape {
    const shapes = this.#shapes[c.algorithm as 'sliding-window' | 'fixed-window'];
    let shape = shapes.get(c.perMs);
    if (!shape) {
      shape = windowShape(c.algorithm, c.perMs);
      shapes.set(c.perMs, shape);
    }
    return shape;
  }

  #take(c: LimitCheck, now: number, ticket: string, level: number) {
    if (c.kind === 'concurrent') {
      this.#permits.put(c.key, ticket);
    } else if (c.algorithm === 'token-bucket') {
      this.#setBucket(c, level - c.reserve, now);
    } else if (c.reserve > 0) {
      this.#add(c, Math.floor(now / this.#shape(c).slotMs), c.reserve);
    }
  }

  #bucketLevel(c: LimitCheck, now: number): number {
    const b = this.#buckets.get(c.key);
    if (!b) return c.amount;
    return Math.min(c.amount, b.tokens + (Math.max(0, now - b.ts) * c.amount) / c.perMs);
  }

  #setBucket(c: LimitCheck, tokens: number, now: number) {
    const fullAt = now + Math.ceil(((c.amount - tokens) * c.perMs) / c.amount);
    this.#buckets.set(c.key, { tokens, ts: now, fullAt });
  }

  #add(c: LimitCheck, slot: number, v: number) {
    let w = this.#windows.get(c.key);
    if (!w) {
      const { slotMs, lagMs } = this.#shape(c);
      w = { slotMs, lagMs, taken: new Map(), used: 0, integral: true, floor: slot };
      this.#windows.set(c.key, w);
    }
    const next = (w.taken.get(slot) ?? 0) + v;
    w.taken.set(slot, next);
    w.used += v;
    if (!Number.isInteger(next)) w.integral = false;
    if (slot < w.floor) w.floor = slot;
  }

  /** Drops the slots older than `oldest`; returns the sum of the rest (and keeps it, with the floor). */
  #expire(w: Window, oldest: number): number {
    let used = 0;
    let floor = Number.POSITIVE_INFINITY;
    let integral = true;
    for (const [slot, v] of w.taken) {
      if (slot < oldest) w.taken.delete(slot);
      else {
        used += v;
        if (slot < floor) floor = slot;
        if (!Number.isInteger(v)) integral = false;
      }
    }
    w.used = used;
    w.floor = floor;
    w.integral = integral;
    return used;
  }
}
