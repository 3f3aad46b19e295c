import { randomUUID } from 'node:crypto';
import { afterFailure, afterSuccess, type ChannelHealth, type CooldownPolicy, HEALTHY } from '../cooldown.ts';
import {
  type CooldownListener,
  type Lease,
  periodKey,
  type SpendPeriod,
  type SpendRecord,
  type SpendScope,
  type StateStore,
} from './store.ts';

/** The embedded store: one process, no Redis. Same contract as the Redis store. */
export class MemoryStore implements StateStore {
  readonly kind = 'memory' as const;
  readonly #health = new Map<string, ChannelHealth>();
  readonly #leases = new Map<string, Map<string, number>>(); // channel -> lease id -> expiry
  readonly #spend = new Map<string, number>();
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

  async recordSuccess(channelId: string): Promise<void> {
    const before = this.#health.get(channelId);
    if (!before) return;
    this.#health.delete(channelId);
    const after = afterSuccess(before);
    if (before.cooldownUntil > this.#now()) {
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
    let held = this.#leases.get(channelId);
    if (!held) {
      held = new Map();
      this.#leases.set(channelId, held);
    }
    for (const [id, expiry] of held) if (expiry <= now) held.delete(id);
    if (held.size >= max) return null;
    const id = randomUUID();
    held.set(id, now + leaseMs);
    return { channelId, id };
  }

  async release(lease: Lease): Promise<void> {
    if (this.#leases.get(lease.channelId)?.delete(lease.id)) {
      for (const l of this.#releaseListeners) l(lease.channelId);
    }
  }

  onRelease(listener: (channelId: string) => void): () => void {
    this.#releaseListeners.add(listener);
    return () => this.#releaseListeners.delete(listener);
  }

  async recordSpend(r: SpendRecord): Promise<void> {
    if (r.cost <= 0) return;
    for (const period of ['day', 'month'] as const) {
      const bucket = periodKey(period, r.at);
      this.#add(`channel:${r.channelId}:${bucket}`, r.cost);
      if (r.keyId) this.#add(`key:${r.keyId}:${bucket}`, r.cost);
    }
  }

  async spend(scope: SpendScope, id: string, period: SpendPeriod, at = this.#now()): Promise<number> {
    return this.#spend.get(`${scope}:${id}:${periodKey(period, at)}`) ?? 0;
  }

  async ping(): Promise<boolean> {
    return true;
  }

  async close(): Promise<void> {
    this.#cooldownListeners.clear();
    this.#releaseListeners.clear();
  }

  #add(key: string, v: number) {
    this.#spend.set(key, (this.#spend.get(key) ?? 0) + v);
  }
}
