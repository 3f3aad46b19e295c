import { randomUUID } from 'node:crypto';
import { afterFailure, afterSuccess, type ChannelHealth, type CooldownPolicy, HEALTHY } from '../cooldown.ts';
import { PERIODS, type Period } from '../period.ts';
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

/** The embedded store: one process, no Redis. Same contract as the Redis store. */
export class MemoryStore implements StateStore {
  readonly kind = 'memory' as const;
  readonly #health = new Map<string, ChannelHealth>();
  readonly #permits = new PermitSets(); // by channel
  readonly #usage = new Map<string, SpendTotals>(); // by spendCounter
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
    const now = this.#now();
    const id = randomUUID();
    return this.#permits.tryTake(channelId, max, id, now + leaseMs, now) ? { channelId, id } : null;
  }

  async release(lease: Lease): Promise<void> {
    if (this.#permits.drop(lease.channelId, lease.id)) {
      for (const l of this.#releaseListeners) l(lease.channelId);
    }
  }

  onRelease(listener: (channelId: string) => void): () => void {
    this.#releaseListeners.add(listener);
    return () => this.#releaseListeners.delete(listener);
  }

  async recordSpend(r: SpendRecord): Promise<void> {
    for (const period of PERIODS) {
      for (const [scope, id] of spendScopes(r)) this.#add(spendCounter(scope, id, period, r.at), r);
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

  #add(key: string, r: SpendRecord) {
    const u = this.#usage.get(key) ?? { ...NO_SPEND };
    addSpend(u, r);
    this.#usage.set(key, u);
  }
}
