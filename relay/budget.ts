import { LRUCache } from 'lru-cache';
import type { Budget } from '../core/keys/api-key.ts';
import { periodKey, periodStart } from '../core/period.ts';
import { spentSoFar } from '../core/spend.ts';
import type { StateStore } from '../core/state/store.ts';
import type { DatabaseHealth } from './db-health.ts';

/**
 * What a key has spent in its budget period, from two sources:
 * - the state store's spend counters: current to the request (fleet-wide with Redis, this process
 *   only in memory), but an in-memory store starts from zero after a restart;
 * - the database's usage rollups: durable and fleet-wide, but behind by up to a flush interval,
 *   and read here at most every `refreshMs` per key.
 * The larger of the two is the answer (core/spend.ts spentSoFar). Budgets are checked before a request and charged after it, so
 * concurrent requests can overshoot by what they cost.
 * A database read never holds a request longer than `readTimeoutMs`: past it (or while the
 * database is known to be down) the live counter alone decides, which fails open by what the
 * rollups know beyond it; the read still fills the cache when it answers.
 */
export interface KeySpendSource {
  keySpendSince(keyId: string, from: Date): Promise<number>;
}

export class BudgetTracker {
  readonly #store: StateStore;
  readonly #rollups: KeySpendSource;
  readonly #health: DatabaseHealth;
  readonly #refreshMs: number;
  readonly #readTimeoutMs: number;
  /** First reads in flight, one per key and period. */
  readonly #loading = new Map<string, Promise<void>>();
  readonly #db = new LRUCache<string, { value: number; at: number; refreshing?: Promise<void> }>({
    max: 10_000,
  });

  constructor(
    store: StateStore,
    rollups: KeySpendSource,
    health: DatabaseHealth,
    opts: { refreshMs?: number; readTimeoutMs?: number } = {},
  ) {
    this.#store = store;
    this.#rollups = rollups;
    this.#health = health;
    this.#refreshMs = opts.refreshMs ?? 2000;
    this.#readTimeoutMs = opts.readTimeoutMs ?? 1000;
  }

  async spent(keyId: string, budget: Budget, now = Date.now()): Promise<number> {
    const [live, durable] = await Promise.all([
      this.#store.spend('key', keyId, budget.period, now).catch(() => 0),
      this.#durable(keyId, budget, now),
    ]);
    return spentSoFar(live, durable);
  }

  async #durable(keyId: string, budget: Budget, now: number): Promise<number> {
    const cacheKey = `${keyId}\n${periodKey(budget.period, now)}`;
    const hit = this.#db.get(cacheKey);
    if (hit && (now - hit.at < this.#refreshMs || hit.refreshing || !this.#health.up)) return hit.value;
    // Never wait on a database known to be down: the live counter alone decides meanwhile.
    if (!hit && !this.#health.up) return 0;
    const pending = this.#loading.get(cacheKey);
    if (pending) return this.#within(pending, cacheKey);
    const load = this.#rollups.keySpendSince(keyId, periodStart(budget.period, now)).then(
      (value) => {
        this.#health.ok();
        this.#db.set(cacheKey, { value, at: Date.now() });
      },
      (err) => {
        this.#health.failed('spend', err);
        if (hit) hit.refreshing = undefined;
      },
    );
    // Known value: refresh in the background. First read: wait for it, within the deadline
    // (0 if the database fails or is too slow).
    if (hit) {
      hit.refreshing = load;
      return hit.value;
    }
    this.#loading.set(cacheKey, load);
    void load.finally(() => this.#loading.delete(cacheKey));
    return this.#within(load, cacheKey);
  }

  async #within(load: Promise<void>, cacheKey: string): Promise<number> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((resolve) => {
      timer = setTimeout(() => resolve('late'), this.#readTimeoutMs);
    });
    try {
      if ((await Promise.race([load, late])) === 'late') {
        this.#health.failed('spend', new Error(`budget read took over ${this.#readTimeoutMs} ms`));
      }
    } finally {
      clearTimeout(timer);
    }
    return this.#db.get(cacheKey)?.value ?? 0;
  }
}
