import { randomUUID } from 'node:crypto';
import {
  afterFailure,
  afterSuccess,
  type ChannelHealth,
  type CooldownPolicy,
  HEALTHY,
} from '../core/cooldown.ts';
import { type Period, periodKey } from '../core/period.ts';
import { PermitSets } from '../core/permits.ts';
import { type SpendRecord, type SpendScope, type SpendTotals, spendScopes } from '../core/spend.ts';
import type { CooldownListener, Lease, SharedBackendStatus, StateStore } from '../core/state/store.ts';
import { type RedisConnection, RedisUnavailableError } from './connection.ts';
import { LeaseKeeper } from './lease-keeper.ts';

/**
 * The fleet-wide store: every relay pod shares channel health, concurrency permits and usage
 * counters through Redis (key layout: redis/keys.ts, scripts: redis/lua.ts).
 *
 * The request path never waits for Redis to learn about cooldowns: each pod keeps a local view
 * (`cooldownUntil` is a Map lookup), updated from the scripts' answers, from the pub/sub events
 * every health change publishes, and by a periodic re-read as a safety net. The view also says
 * whether a channel has anything to forget, so `recordSuccess` costs no round trip on a healthy
 * channel.
 *
 * When Redis is away: health changes are applied to the local view (this pod still cools a
 * failing channel down by itself, and keeps that cooldown once Redis is back); permits fall back
 * to a per-pod gate with the same maxConcurrent (the fleet may then run pods x maxConcurrent until
 * Redis answers again); usage counters are not written for that time (Prometheus and the request
 * log still have them).
 */

export interface RedisStoreOptions {
  connection: RedisConnection;
  /** Replaces the clock for tests: the pod's for cooldowns, Redis TIME for permits. */
  now?: () => number;
  /** Re-read every known channel's health this often (default 5 s). */
  refreshMs?: number;
  /** A permit lives this long without renewal (default 15 s). */
  permitTtlMs?: number;
  /** A failure record is forgotten after this long without changes (default 1 day). */
  healthTtlMs?: number;
}

interface View extends ChannelHealth {
  /** Version of the Redis state this came from (µs); 0 when unknown. */
  v: number;
  /** Set by this pod alone while Redis was away. */
  local?: boolean;
}

const UNKNOWN: View = Object.freeze({ ...HEALTHY, v: 0 });
const healthOf = (v: View): ChannelHealth => ({
  consecutiveFailures: v.consecutiveFailures,
  cooldownUntil: v.cooldownUntil,
  streak: v.streak,
  cooldownSince: v.cooldownSince,
  restUntil: v.restUntil,
});
const DAY_TTL_MS = 40 * 24 * 3600_000;
const MONTH_TTL_MS = 400 * 24 * 3600_000;
const LOCAL_LEASE = 'local:';
// A change this pod makes before Redis confirms it sorts after the state it was based on (so a late
// echo of that state cannot undo it) and before Redis's next version (which grows by >= 1).
const LOCAL_STEP = 0.5;

export class RedisStore implements StateStore {
  readonly kind = 'redis' as const;
  readonly connection: RedisConnection;
  readonly #now: () => number;
  readonly #healthTtlMs: number;
  readonly #view = new Map<string, View>();
  readonly #keeper: LeaseKeeper;
  readonly #leaseMax = new Map<string, number>(); // lease id -> max, for the release event
  readonly #localLeases = new PermitSets(); // by channel
  readonly #cooldownListeners = new Set<CooldownListener>();
  readonly #releaseListeners = new Set<(channelId: string) => void>();
  readonly #keyListeners = new Set<(keyId: string) => void>();
  readonly #refresh: NodeJS.Timeout;
  readonly #unsubscribe: (() => void)[];
  #refreshing = false;

  constructor(opts: RedisStoreOptions) {
    this.connection = opts.connection;
    this.#now = opts.now ?? Date.now;
    this.#healthTtlMs = opts.healthTtlMs ?? 24 * 3600_000;
    this.#keeper = new LeaseKeeper(this.connection, opts.permitTtlMs ?? 15_000, opts.now);
    this.#unsubscribe = [
      this.connection.onMessage((m) => this.#onMessage(m)),
      this.connection.onResync(() => void this.refresh()),
    ];
    this.#refresh = setInterval(() => void this.refresh(), opts.refreshMs ?? 5000);
    this.#refresh.unref();
  }

  get shared(): SharedBackendStatus {
    return this.connection;
  }

  // ---- health -------------------------------------------------------------------------------

  cooldownUntil(channelId: string): number {
    const v = this.#view.get(channelId);
    if (v) return v.cooldownUntil;
    this.#view.set(channelId, UNKNOWN); // from now on the refresh keeps it current
    return 0;
  }

  async recordFailure(
    channelId: string,
    policy: CooldownPolicy,
    retryAfterMs?: number,
  ): Promise<ChannelHealth> {
    const now = this.#now();
    const c = this.connection;
    try {
      const r = (await c.script(
        'krHealthFailure',
        [c.keys.health(channelId)],
        [
          now,
          policy.failureThreshold,
          policy.durationMs,
          policy.maxDurationMs,
          retryAfterMs ?? -1,
          this.#healthTtlMs,
          channelId,
          c.keys.events(),
        ],
      )) as number[];
      const h: ChannelHealth = {
        consecutiveFailures: r[0]!,
        cooldownUntil: r[1]!,
        streak: r[2]!,
        cooldownSince: r[5] ?? 0,
        restUntil: r[6] ?? 0,
      };
      this.#apply(channelId, { ...h, v: r[3]! });
      return h;
    } catch {
      const before = this.#view.get(channelId) ?? UNKNOWN;
      const after = afterFailure(before, policy, now, retryAfterMs);
      if (after !== before) this.#set(channelId, { ...after, v: before.v + LOCAL_STEP, local: true });
      return after;
    }
  }

  async recordSuccess(channelId: string, sentAt?: number): Promise<void> {
    const before = this.#view.get(channelId);
    // The local hint: nothing recorded against this channel anywhere in the fleet (that this pod
    // has heard of), so nothing to forget and no round trip.
    if (!before || (before.consecutiveFailures === 0 && before.cooldownUntil === 0 && before.streak === 0)) {
      return;
    }
    const now = this.#now();
    const sent = sentAt ?? now;
    const after = afterSuccess(before, sent, now);
    if (after === before) return; // a cooldown that began after this request was sent
    // Optimistic: further successes skip Redis while this one is on its way.
    this.#set(channelId, { ...after, v: before.v + LOCAL_STEP });
    await this.#forget(channelId, now, sent).catch(() => {});
  }

  async resetChannel(channelId: string): Promise<void> {
    const before = this.#view.get(channelId) ?? UNKNOWN;
    this.#set(channelId, { ...HEALTHY, v: before.v + LOCAL_STEP });
    await this.#forget(channelId, Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER);
  }

  async channelHealth(channelId: string): Promise<ChannelHealth> {
    try {
      const v = await this.#read(channelId);
      this.#apply(channelId, v);
      return healthOf(v);
    } catch {
      const v = this.#view.get(channelId) ?? UNKNOWN;
      return healthOf(v);
    }
  }

  onCooldownChange(listener: CooldownListener): () => void {
    this.#cooldownListeners.add(listener);
    return () => this.#cooldownListeners.delete(listener);
  }

  /** Re-reads the health of every channel this pod has looked at (safety net for lost events). */
  async refresh(): Promise<void> {
    if (this.#refreshing || !this.connection.up || this.#view.size === 0) return;
    this.#refreshing = true;
    try {
      await Promise.all(
        [...this.#view.keys()].map((id) =>
          this.#read(id).then(
            (v) => this.#apply(id, v, true),
            () => {},
          ),
        ),
      );
    } finally {
      this.#refreshing = false;
    }
  }

  /** The success script; `now` and `sentAt` at MAX_SAFE_INTEGER forget everything (a reset). */
  async #forget(channelId: string, now: number, sentAt: number) {
    const c = this.connection;
    await c.script(
      'krHealthSuccess',
      [c.keys.health(channelId)],
      [this.#healthTtlMs, now, sentAt, channelId, c.keys.events()],
    );
  }

  async #read(channelId: string): Promise<View> {
    const h = await this.connection.run('health', (c) =>
      c.hmget(this.connection.keys.health(channelId), 'f', 'u', 's', 'v', 'b', 'r'),
    );
    if (h[3] === null) return UNKNOWN;
    return {
      consecutiveFailures: Number(h[0] ?? 0),
      cooldownUntil: Number(h[1] ?? 0),
      streak: Number(h[2] ?? 0),
      cooldownSince: Number(h[4] ?? 0),
      restUntil: Number(h[5] ?? 0),
      v: Number(h[3]),
    };
  }

  #onMessage(message: string) {
    const parts = message.split('|');
    if (parts[0] === 'h' && parts.length >= 6) {
      const [, id, f, u, s, v, b, r] = parts;
      this.#apply(id!, {
        consecutiveFailures: Number(f),
        cooldownUntil: Number(u),
        streak: Number(s),
        cooldownSince: Number(b ?? 0),
        restUntil: Number(r ?? 0),
        v: Number(v),
      });
    } else if (parts[0] === 'r' && parts[1]) {
      for (const l of this.#releaseListeners) l(parts[1]);
    } else if (parts[0] === 'k' && message.length > 2) {
      const keyId = message.slice(2);
      for (const l of this.#keyListeners) l(keyId);
    }
  }

  /**
   * Takes news from Redis unless it is older than what the view holds. A re-read that finds no
   * record (`authoritative`: expired, reset, or a Redis restart) clears the view. A cooldown this
   * pod set alone while Redis was away stays until it ends.
   */
  #apply(channelId: string, next: View, authoritative = false) {
    const cur = this.#view.get(channelId);
    if (cur && next.v < cur.v && !(authoritative && next.v === 0)) return;
    if (cur?.local && cur.cooldownUntil > this.#now() && next.cooldownUntil < cur.cooldownUntil) {
      this.#set(channelId, { ...next, cooldownUntil: cur.cooldownUntil, local: true });
      return;
    }
    this.#set(channelId, next);
  }

  #set(channelId: string, next: View) {
    const before = this.#view.get(channelId)?.cooldownUntil ?? 0;
    this.#view.set(channelId, next);
    if (before === next.cooldownUntil) return;
    const now = this.#now();
    if (before <= now && next.cooldownUntil <= now) return; // neither side is a cooldown
    for (const l of this.#cooldownListeners) l(channelId, next.cooldownUntil);
  }

  // ---- concurrency permits ------------------------------------------------------------------

  async tryAcquire(channelId: string, max: number, leaseMs: number): Promise<Lease | null> {
    const c = this.connection;
    const id = randomUUID();
    const key = c.keys.leases(channelId);
    const deadline = this.#now() + leaseMs;
    try {
      const ok = await c.script(
        'krLeaseAcquire',
        [key],
        [this.#keeper.now(), max, this.#keeper.lifetime(deadline), id, this.#keeper.ttlMs * 2],
      );
      if (ok !== 1) return null;
    } catch {
      return this.#localAcquire(channelId, max, key, deadline);
    }
    this.#keeper.add(key, id, deadline);
    this.#leaseMax.set(id, max);
    return { channelId, id };
  }

  async release(lease: Lease): Promise<void> {
    const c = this.connection;
    const key = c.keys.leases(lease.channelId);
    if (lease.id.startsWith(LOCAL_LEASE)) {
      if (!this.#localLeases.drop(lease.channelId, lease.id)) return;
      this.#released(lease.channelId);
      // It may have been written to Redis since (see #localAcquire).
      if (!this.#keeper.has(key, lease.id)) return;
    }
    const max = this.#leaseMax.get(lease.id) ?? 1;
    this.#leaseMax.delete(lease.id);
    // If Redis cannot hear it now, the keeper sends it again once Redis answers.
    await this.#keeper.release(key, lease.id, async () => {
      const r = await c.script(
        'krLeaseRelease',
        [key],
        [this.#keeper.now(), max, lease.id, lease.channelId, c.keys.events()],
      );
      if (r === 1) this.#released(lease.channelId); // local waiters need not wait for the event
      return r;
    });
  }

  onRelease(listener: (channelId: string) => void): () => void {
    this.#releaseListeners.add(listener);
    return () => this.#releaseListeners.delete(listener);
  }

  /**
   * Client-key changes (revoke, rotate, edit) for every relay at once: the auth cache drops the
   * key on the event instead of waiting for its database poll (relay/auth.ts KeyEvents).
   */
  async publishKeyChange(keyId: string): Promise<void> {
    await this.connection.publish(`k|${keyId}`);
  }

  onKeyChange(listener: (keyId: string) => void): () => void {
    this.#keyListeners.add(listener);
    return () => this.#keyListeners.delete(listener);
  }

  /**
   * Redis is away: a per-pod gate with the same limit keeps each pod within maxConcurrent. The
   * permit is also handed to the keeper, which writes it to Redis once it is back, so the fleet
   * counts the request for as long as it runs.
   */
  #localAcquire(channelId: string, max: number, key: string, deadline: number): Lease | null {
    const id = `${LOCAL_LEASE}${randomUUID()}`;
    if (!this.#localLeases.tryTake(channelId, max, id)) return null;
    this.#keeper.add(key, id, deadline);
    this.#leaseMax.set(id, max);
    return { channelId, id };
  }

  #released(channelId: string) {
    for (const l of this.#releaseListeners) l(channelId);
  }

  // ---- usage --------------------------------------------------------------------------------

  async recordSpend(r: SpendRecord): Promise<void> {
    const day = periodKey('day', r.at);
    const month = periodKey('month', r.at);
    const args = [
      r.cost,
      Math.round(r.promptTokens),
      Math.round(r.completionTokens),
      DAY_TTL_MS,
      MONTH_TTL_MS,
    ];
    const c = this.connection;
    try {
      await Promise.all(
        spendScopes(r).map(([scope, id]) =>
          c.script('krSpend', [c.keys.spendDay(scope, id, day), c.keys.spendMonth(scope, id, month)], args),
        ),
      );
    } catch (err) {
      // Known outage: counted in the connection's error metric; not worth a log line per request.
      if (!(err instanceof RedisUnavailableError)) throw err;
    }
  }

  async spend(scope: SpendScope, id: string, period: Period, at = this.#now()): Promise<number> {
    return (await this.usage(scope, id, period, at)).cost;
  }

  async usage(scope: SpendScope, id: string, period: Period, at = this.#now()): Promise<SpendTotals> {
    const k = this.connection.keys;
    const bucket = periodKey(period, at);
    const key = period === 'day' ? k.spendDay(scope, id, bucket) : k.spendMonth(scope, id, bucket);
    const [c, r, p, o] = await this.connection.run('usage', (cl) => cl.hmget(key, 'c', 'r', 'p', 'o'));
    return {
      cost: Number(c ?? 0),
      requests: Number(r ?? 0),
      promptTokens: Number(p ?? 0),
      completionTokens: Number(o ?? 0),
    };
  }

  // ---- lifecycle ----------------------------------------------------------------------------

  async ping(): Promise<boolean> {
    return this.connection.up;
  }

  async close(): Promise<void> {
    clearInterval(this.#refresh);
    this.#keeper.stop();
    for (const u of this.#unsubscribe) u();
    this.#cooldownListeners.clear();
    this.#releaseListeners.clear();
    await this.connection.close();
  }
}
