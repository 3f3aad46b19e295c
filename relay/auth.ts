import type { FastifyRequest } from 'fastify';
import { LRUCache } from 'lru-cache';
import { type KeyLookup, type KeyRecord, keyProblem } from '../core/keys/api-key.ts';
import { hashesEqual, hashSecret, isWellFormedSecret } from '../core/keys/secret.ts';
import { periodEnd } from '../core/period.ts';
import type { BudgetTracker } from './budget.ts';
import type { DatabaseHealth } from './db-health.ts';
import { RelayError } from './errors.ts';
import type { Authenticator, ClientIdentity } from './identity.ts';
import type { RelayMetrics } from './metrics.ts';

/**
 * Client keys on the request path. A key is read from the database once and then served from an
 * in-process LRU cache (SHA-256 of the secret -> key), so a request costs one hash and one map
 * lookup. Changes reach every process within a second without any broker: each process polls the
 * database every `pollMs` for keys whose `updated_at` (set by the database clock, see the
 * migration) moved, and drops them from its cache; a `KeyEvents` bus (Redis) makes it immediate.
 * Expiry and grace periods are checked per request against the cached times, so they need no
 * propagation at all. While the database is unreachable, cached keys keep working past their TTL
 * and unknown keys get a 503 rather than a wrong 401.
 */

export interface KeyAuthOptions {
  /** How long a cached key is used without re-reading it (the poll invalidates sooner). */
  cacheTtlMs: number;
  cacheMax: number;
  pollMs: number;
  /** A lookup slower than this fails the request with 503 instead of holding it. */
  lookupTimeoutMs: number;
}

export const DEFAULT_KEY_AUTH_OPTIONS: KeyAuthOptions = {
  cacheTtlMs: 5_000,
  cacheMax: 10_000,
  pollMs: 500,
  lookupTimeoutMs: 2_000,
};

/** Optional cross-process notification of key changes (the Redis store can provide it). */
export interface KeyEvents {
  publishKeyChange(keyId: string): Promise<void>;
  onKeyChange(listener: (keyId: string) => void): () => void;
}

export function isKeyEvents(x: unknown): x is KeyEvents {
  const o = x as Partial<KeyEvents> | null;
  return typeof o?.publishKeyChange === 'function' && typeof o.onKeyChange === 'function';
}

interface Known {
  record: KeyRecord;
  identity: ClientIdentity;
  loadedAt: number;
}
interface Unknown {
  record: null;
  loadedAt: number;
}
type Entry = Known | Unknown;

// Commits can land after rows with later timestamps were seen; re-reading a short window
// catches them.
const POLL_OVERLAP_MS = 5_000;

const HOW_TO =
  'send it as `Authorization: Bearer <key>` or `x-api-key`; keys are created with `kuberelay keys create --name NAME`';

export class KeyAuthenticator implements Authenticator {
  readonly #keys: KeyLookup;
  readonly #budgets: BudgetTracker | undefined;
  readonly #metrics: RelayMetrics;
  // The two counters every request touches, bound once (a labelled inc() hashes its labels).
  readonly #ok: { inc(): void };
  readonly #hit: { inc(): void };
  readonly #health: DatabaseHealth;
  readonly #o: KeyAuthOptions;
  readonly #cache: LRUCache<string, Entry>;
  readonly #loading = new Map<string, Promise<Entry>>();
  /** Database time of the last successful poll; null until one succeeded. */
  #polledAt: number | null = null;
  #timer: NodeJS.Timeout | undefined;
  #polling: Promise<void> | undefined;
  readonly #seen = new Map<string, number>();
  /**
   * Bumped by every invalidation. A lookup that was in flight meanwhile may have read the row from
   * before the change: its answer serves that one request but is not cached.
   */
  #epoch = 0;
  #unsubscribe: (() => void) | undefined;

  constructor(deps: {
    keys: KeyLookup;
    budgets?: BudgetTracker;
    metrics: RelayMetrics;
    health: DatabaseHealth;
    events?: KeyEvents;
    options?: Partial<KeyAuthOptions>;
  }) {
    this.#keys = deps.keys;
    this.#budgets = deps.budgets;
    this.#metrics = deps.metrics;
    this.#ok = deps.metrics.auth.labels({ result: 'ok' });
    this.#hit = deps.metrics.authCache.labels({ result: 'hit' });
    this.#health = deps.health;
    this.#o = { ...DEFAULT_KEY_AUTH_OPTIONS, ...deps.options };
    this.#cache = new LRUCache({ max: this.#o.cacheMax });
    this.#unsubscribe = deps.events?.onKeyChange((id) => this.invalidateKey(id));
  }

  async start() {
    await this.poll();
    this.#timer = setInterval(() => void this.poll(), this.#o.pollMs);
    this.#timer.unref();
  }

  stop() {
    clearInterval(this.#timer);
    this.#unsubscribe?.();
  }

  /** Runs before the body is read (headers only); the model a key may use is checked after it. */
  async authenticate(req: FastifyRequest): Promise<ClientIdentity> {
    return this.identify(req);
  }

  /**
   * authenticate's answer, given at once (no promise, no extra tick) for a cached key without a
   * budget, the common case; a promise when the key must be read or its budget checked. A
   * refusal is thrown (or rejected) as the RelayError.
   */
  identify(req: FastifyRequest): ClientIdentity | Promise<ClientIdentity> {
    const secret = presentedSecret(req);
    if (secret === undefined)
      throw this.#reject(401, 'missing', 'invalid_api_key', `missing API key: ${HOW_TO}`);
    if (!isWellFormedSecret(secret)) {
      throw this.#reject(401, 'invalid', 'invalid_api_key', `invalid API key: ${HOW_TO}`);
    }
    const hash = hashSecret(secret);
    const cached = this.#fresh(hash);
    if (cached) return this.#admit(cached, hash);
    return this.#lookup(hash).then((entry) => this.#admit(entry, hash));
  }

  #admit(entry: Entry, hash: string): ClientIdentity | Promise<ClientIdentity> {
    if (entry.record === null || !hashesEqual(entry.record.secretHash, hash)) {
      throw this.#reject(401, 'invalid', 'invalid_api_key', `invalid API key: ${HOW_TO}`);
    }
    const { record, identity } = entry;
    const now = Date.now();
    const problem = keyProblem(record, now);
    if (problem)
      throw this.#reject(401, problem.code.slice('api_key_'.length), problem.code, problem.message);
    if (record.budget && this.#budgets) return this.#withinBudget(record, identity, now);
    this.#ok.inc();
    return identity;
  }

  async #withinBudget(record: KeyRecord, identity: ClientIdentity, now: number): Promise<ClientIdentity> {
    const budget = record.budget!;
    const spent = await this.#budgets!.spent(record.id, budget, now);
    if (spent >= budget.amount) {
      this.#metrics.auth.inc({ result: 'budget_exhausted' });
      const resets = periodEnd(budget.period, now);
      throw new RelayError(
        429,
        'insufficient_quota',
        'insufficient_quota',
        `API key ${record.id} has used its budget of $${budget.amount} per ${budget.period} ($${spent.toFixed(6)} spent); it renews at ${resets.toISOString()}`,
        {
          headers: {
            'retry-after': String(Math.max(1, Math.ceil((resets.getTime() - now) / 1000))),
            // The official SDKs retry 429s unless told not to; waiting will not help here.
            'x-should-retry': 'false',
          },
        },
      );
    }
    this.#ok.inc();
    return identity;
  }

  /** Forget a key now (after a change made through this process, or announced by another). */
  invalidateKey(keyId: string) {
    this.#epoch++;
    for (const [hash, e] of this.#cache.entries()) {
      if (e.record?.id === keyId) this.#cache.delete(hash);
    }
  }

  /** One poll for keys changed since the last one (runs every `pollMs`; callers share one in flight). */
  poll(): Promise<void> {
    this.#polling ??= this.#pollOnce().finally(() => {
      this.#polling = undefined;
    });
    return this.#polling;
  }

  async #pollOnce(): Promise<void> {
    try {
      const since = this.#polledAt === null ? null : this.#polledAt - POLL_OVERLAP_MS;
      const { now, changed } = await this.#keys.changedSince(since);
      this.#health.ok();
      if (this.#polledAt === null) {
        // Anything cached before the first poll could predate changes the poll will not show.
        this.#cache.clear();
        this.#epoch++;
      }
      this.#polledAt = now;
      for (const c of changed) {
        if (this.#seen.get(c.id) === c.updatedAt) continue; // seen in an earlier, overlapping poll
        this.#seen.set(c.id, c.updatedAt);
        for (const h of c.hashes) this.#cache.delete(h);
        this.invalidateKey(c.id);
      }
      for (const [id, at] of this.#seen) if (at < now - 2 * POLL_OVERLAP_MS) this.#seen.delete(id);
    } catch (err) {
      this.#health.failed('key_poll', err);
    }
  }

  /** The cached entry while it is fresh (a hit), else undefined. */
  #fresh(hash: string): Entry | undefined {
    const cached = this.#cache.get(hash);
    if (!cached || Date.now() - cached.loadedAt >= this.#o.cacheTtlMs) return undefined;
    this.#hit.inc();
    return cached;
  }

  /** A key that is not cached fresh: stale while the database is away, else read (one read per hash at a time). */
  async #lookup(hash: string): Promise<Entry> {
    const cached = this.#cache.get(hash);
    if (cached && !this.#health.up) {
      this.#metrics.authCache.inc({ result: 'stale' });
      return cached;
    }
    this.#metrics.authCache.inc({ result: 'miss' });
    let loading = this.#loading.get(hash);
    if (!loading) {
      loading = this.#load(hash).finally(() => this.#loading.delete(hash));
      this.#loading.set(hash, loading);
    }
    try {
      return await loading;
    } catch (err) {
      this.#health.failed('key_lookup', err);
      if (cached) return cached;
      this.#metrics.auth.inc({ result: 'unavailable' });
      throw new RelayError(
        503,
        'server_error',
        'auth_unavailable',
        'cannot check the API key right now: the key database is unreachable; retry shortly',
        { headers: { 'retry-after': '1' } },
      );
    }
  }

  async #load(hash: string): Promise<Entry> {
    const epoch = this.#epoch;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error('key lookup timed out')), this.#o.lookupTimeoutMs);
    });
    try {
      const record = await Promise.race([this.#keys.findBySecretHash(hash), timeout]);
      this.#health.ok();
      const entry: Entry = record
        ? {
            record,
            loadedAt: Date.now(),
            identity: Object.freeze({
              keyId: record.id,
              keyName: record.name,
              labels: Object.freeze({ ...record.labels }),
              models: record.models.length > 0 ? Object.freeze([...record.models]) : undefined,
            }),
          }
        : { record: null, loadedAt: Date.now() };
      if (epoch === this.#epoch) this.#cache.set(hash, entry);
      return entry;
    } finally {
      clearTimeout(timer);
    }
  }

  #reject(status: 401, result: string, code: string, message: string): RelayError {
    this.#metrics.auth.inc({ result });
    return new RelayError(status, 'authentication_error', code, message);
  }
}

/** The key from `Authorization: Bearer <key>`, else `x-api-key`. */
function presentedSecret(req: FastifyRequest): string | undefined {
  const auth = req.headers.authorization;
  if (typeof auth === 'string' && auth.length > 7 && auth.slice(0, 7).toLowerCase() === 'bearer ') {
    return auth.slice(7).trim();
  }
  const x = req.headers['x-api-key'];
  return typeof x === 'string' && x !== '' ? x.trim() : undefined;
}
