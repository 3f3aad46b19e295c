import { afterFailure, afterSuccess, type ChannelHealth, type CooldownPolicy, HEALTHY } from '../cooldown.ts';
import { type Period, periodKey } from '../period.ts';
import { PermitSets } from '../permits.ts';
import {
  addSpend,
  NO_SPEND,
  type SpendRecord,
  type SpendScope,
  type SpendTotals,
  spendCounter,
  spendScopes,
} from '../spend.ts';
import type { CooldownListener, Lease, StateStore } from './store.ts';

/** One counter's live day and month (what recordSpend adds to without building their names). */
interface CurrentSpend {
  day: string;
  dayTotals: SpendTotals;
  month: string;
  monthTotals: SpendTotals;
}

const RESOLVED = Promise.resolve();

/** The embedded store: one process, no Redis. Same contract as the Redis store. */
export class MemoryStore implements StateStore {
  readonly kind = 'memory' as const;
  readonly #health = new Map<string, ChannelHealth>();
  readonly #permits = new PermitSets(); // by channel
  readonly #usage = new Map<string, SpendTotals>(); // by spendCounter
  // scope -> id -> the totals of its current day and month (also in #usage): found per request by
  // the id alone, instead of two counter names built and hashed per scope.
  readonly #current = { channel: new Map<string, CurrentSpend>(), key: new Map<string, CurrentSpend>() };
  // Lease ids only name permits within this process: a counter, not a random UUID per permit.
  #leases = 0;
  readonly #cooldownListeners = new Set<CooldownListener>();
  readonly #releaseListeners = new Set<(channelId: string) => void>();
  readonly #now: () => number;

  constructor(opts: { now?: () => number } = {}) {
    this.#now = opts.now ?? Date.now;
  }

  cooldownUntil(channelId: string): number {
    return this.#health.get(channelId)?.cooldownUntil ?? 0;
  }

  async recordFailure(
    channelId: string,
    policy: CooldownPolicy,
    retryAfterMs?: number,
  ): Promise<ChannelHealth> {
    const before = this.#health.get(channelId) ?? HEALTHY;
    const after = afterFailure(before, policy, this.#now(), retryAfterMs);
    this.#health.set(channelId, after);
    if (after.cooldownUntil !== before.cooldownUntil) {
      for (const l of this.#cooldownListeners) l(channelId, after.cooldownUntil);
    }
    return after;
  }

  async recordSuccess(channelId: string, sentAt?: number): Promise<void> {
    const before = this.#health.get(channelId);
    if (!before) return;
    const now = this.#now();
    const after = afterSuccess(before, sentAt ?? now, now);
    if (after === before) return;
    if (after === HEALTHY) this.#health.delete(channelId);
    else this.#health.set(channelId, after);
    if (before.cooldownUntil > now && after.cooldownUntil !== before.cooldownUntil) {
      for (const l of this.#cooldownListeners) l(channelId, after.cooldownUntil);
    }
  }

  async resetChannel(channelId: string): Promise<void> {
    const had = this.cooldownUntil(channelId) > this.#now();
    this.#health.delete(channelId);
    if (had) for (const l of this.#cooldownListeners) l(channelId, 0);
  }

  async channelHealth(channelId: string): Promise<ChannelHealth> {
    return this.#health.get(channelId) ?? HEALTHY;
  }

  onCooldownChange(listener: CooldownListener): () => void {
    this.#cooldownListeners.add(listener);
    return () => this.#cooldownListeners.delete(listener);
  }

  async tryAcquire(channelId: string, max: number, leaseMs: number): Promise<Lease | null> {
    return this.tryAcquireNow(channelId, max, leaseMs);
  }

  tryAcquireNow(channelId: string, max: number, leaseMs: number): Lease | null {
    const now = this.#now();
    if (this.#permits.held(channelId, now) >= max) return null;
    const id = `l${++this.#leases}`;
    this.#permits.put(channelId, id, now + leaseMs);
    return { channelId, id };
  }

  // Not async: nothing to wait for, so no promise per call beyond the shared resolved one.
  release(lease: Lease): Promise<void> {
    try {
      if (this.#permits.drop(lease.channelId, lease.id)) {
        for (const l of this.#releaseListeners) l(lease.channelId);
      }
    } catch (err) {
      return Promise.reject(err);
    }
    return RESOLVED;
  }

  onRelease(listener: (channelId: string) => void): () => void {
    this.#releaseListeners.add(listener);
    return () => this.#releaseListeners.delete(listener);
  }

  async recordSpend(r: SpendRecord): Promise<void> {
    const day = periodKey('day', r.at);
    const month = periodKey('month', r.at);
    for (const [scope, id] of spendScopes(r)) {
      const c = this.#currentSpend(scope, id, day, month, r.at);
      addSpend(c.dayTotals, r);
      addSpend(c.monthTotals, r);
    }
  }

  async spend(scope: SpendScope, id: string, period: Period, at = this.#now()): Promise<number> {
    return (await this.usage(scope, id, period, at)).cost;
  }

  async usage(scope: SpendScope, id: string, period: Period, at = this.#now()): Promise<SpendTotals> {
    return { ...(this.#usage.get(spendCounter(scope, id, period, at)) ?? NO_SPEND) };
  }

  async ping(): Promise<boolean> {
    return true;
  }

  async close(): Promise<void> {
    this.#cooldownListeners.clear();
    this.#releaseListeners.clear();
  }

  /** The counters of `scope`/`id` for the day and month of `at` (periodKey's strings, compared as such). */
  #currentSpend(scope: SpendScope, id: string, day: string, month: string, at: number): CurrentSpend {
    const byId = this.#current[scope];
    let c = byId.get(id);
    if (c === undefined) {
      c = {
        day,
        dayTotals: this.#totals(spendCounter(scope, id, 'day', at)),
        month,
        monthTotals: this.#totals(spendCounter(scope, id, 'month', at)),
      };
      byId.set(id, c);
      return c;
    }
    if (c.day !== day) {
      c.day = day;
      c.dayTotals = this.#totals(spendCounter(scope, id, 'day', at));
    }
    if (c.month !== month) {
      c.month = month;
      c.monthTotals = this.#totals(spendCounter(scope, id, 'month', at));
    }
    return c;
  }

  #totals(counter: string): SpendTotals {
    let u = this.#usage.get(counter);
    if (u === undefined) {
      u = { ...NO_SPEND };
      this.#usage.set(counter, u);
    }
    return u;
  }
}
