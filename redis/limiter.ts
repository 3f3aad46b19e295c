import { randomUUID } from 'node:crypto';
import {
  type CheckOutcome,
  DEFAULT_PERMIT_TTL_MS,
  type LimitCheck,
  type LimitDecision,
  type Limiter,
  type SettleItem,
  SLIDING_SLOTS,
} from '../core/ratelimit/limiter.ts';
import type { RedisConnection } from './connection.ts';
import { LeaseKeeper } from './lease-keeper.ts';

/**
 * The fleet-wide limiter: one Lua script decides every check of a request in one round trip
 * (redis/lua.ts LIMIT_CHECK), so concurrent requests on any number of pods are serialised by
 * Redis and a request limit admits exactly its amount. All bucket keys share the `{rl}` hash tag:
 * on Redis Cluster they live on one shard, which is what lets one script see them all.
 * Concurrent permits are renewed while the request runs and expire with a dead pod.
 * The clock is Redis TIME: every pod's windows and permit expiries line up whatever its own
 * clock says. `clock` replaces it in the contract tests, which run both limiters on one fake clock.
 */
export class RedisLimiter implements Limiter {
  readonly kind = 'redis' as const;
  readonly #conn: RedisConnection;
  readonly #keeper: LeaseKeeper;

  constructor(opts: { connection: RedisConnection; clock?: () => number; permitTtlMs?: number }) {
    this.#conn = opts.connection;
    this.#keeper = new LeaseKeeper(this.#conn, opts.permitTtlMs ?? DEFAULT_PERMIT_TTL_MS, opts.clock);
  }

  async check(checks: readonly LimitCheck[]): Promise<LimitDecision> {
    const ticket = randomUUID();
    const keys: string[] = [];
    const args: (string | number)[] = [this.#keeper.now(), ticket, this.#keeper.ttlMs, SLIDING_SLOTS];
    for (const c of checks) {
      keys.push(this.#conn.keys.limit(c.key));
      args.push(c.kind, c.algorithm, c.amount, c.perMs, c.reserve, c.shadow ? 1 : 0);
    }
    const r = (await this.#conn.script('krLimitCheck', keys, args)) as (number | string)[];
    const outcomes: CheckOutcome[] = [];
    for (let i = 0; i < checks.length; i++) {
      outcomes.push({
        allowed: r[2 + i * 3] === 1,
        remaining: Number(r[3 + i * 3]),
        resetMs: Number(r[4 + i * 3]),
      });
    }
    const allowed = r[0] === 1;
    if (allowed) {
      checks.forEach((c, i) => {
        // Held until settle; renewed meanwhile. No deadline: settle always follows the request.
        if (c.kind === 'concurrent' && outcomes[i]!.allowed) {
          this.#keeper.add(keys[i]!, ticket, Number.POSITIVE_INFINITY);
        }
      });
    }
    return { allowed, outcomes, at: Number(r[1]), ticket };
  }

  async settle(d: Pick<LimitDecision, 'at' | 'ticket'>, items: readonly SettleItem[]): Promise<void> {
    if (items.length === 0) return;
    const script = (list: readonly SettleItem[]) => {
      const keys: string[] = [];
      const args: (string | number)[] = [this.#keeper.now(), d.ticket, d.at, SLIDING_SLOTS];
      for (const { check: c, delta } of list) {
        keys.push(this.#conn.keys.limit(c.key));
        args.push(c.kind, c.algorithm, c.amount, c.perMs, delta);
      }
      return this.#conn.script('krLimitSettle', keys, args);
    };
    const permits = items.filter((i) => i.check.kind === 'concurrent');
    if (permits.length === 0) return void (await script(items));
    // Freeing a permit is idempotent (a ZREM), so the keeper retries it until Redis hears it;
    // token and cost corrections are not, so they are sent once.
    const key = permits.map((i) => this.#conn.keys.limit(i.check.key)).join('\0');
    for (const i of permits) this.#keeper.remove(this.#conn.keys.limit(i.check.key), d.ticket);
    const others = items.filter((i) => i.check.kind !== 'concurrent');
    await Promise.all([
      this.#keeper.release(key, d.ticket, () => script(permits)),
      others.length > 0 ? script(others) : undefined,
    ]);
  }

  async close(): Promise<void> {
    this.#keeper.stop();
  }
}
