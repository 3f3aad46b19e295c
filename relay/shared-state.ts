import { hostname } from 'node:os';
import type { Limiter } from '../core/ratelimit/limiter.ts';
import { MemoryLimiter } from '../core/ratelimit/memory-limiter.ts';
import { MemoryStore } from '../core/state/memory-store.ts';
import type { StateStore } from '../core/state/store.ts';
import type { RedisConnection } from '../redis/connection.ts';

/**
 * Where the relay keeps what its replicas share: Redis when REDIS_URL is set (cooldowns, permits,
 * rate limits, usage counters, pod reports), otherwise the in-process store and limiter (one
 * instance, same interfaces).
 */

export interface SharedStateOptions {
  redisUrl?: string;
  /** Key prefix, so fleets can share a Redis (default `kr:`). */
  prefix?: string;
  /** A Redis command slower than this counts as failed (default 500 ms). */
  commandTimeoutMs?: number;
  /** Concurrency permits live this long without renewal (default 15 s). */
  permitTtlMs?: number;
  /** Pod reports every this often (default 5 s). */
  reportIntervalMs?: number;
  /** Re-read channel health this often, the safety net behind pub/sub (default 5 s). */
  refreshMs?: number;
  pod: string;
}

export interface SharedState {
  store: StateStore;
  limiter: Limiter;
  /** Set with REDIS_URL. */
  connection: RedisConnection | undefined;
  pod: string;
  reportIntervalMs: number;
}

/**
 * REDIS_URL, KUBERELAY_REDIS_PREFIX, KUBERELAY_REDIS_TIMEOUT_MS, KUBERELAY_PERMIT_TTL_MS,
 * KUBERELAY_REPORT_INTERVAL_MS, KUBERELAY_STATE_REFRESH_MS, POD_NAME.
 */
export function sharedStateFromEnv(env: NodeJS.ProcessEnv = process.env): SharedStateOptions {
  const num = (name: string) => {
    const v = env[name];
    if (v === undefined || v === '') return undefined;
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} must be a positive number of milliseconds`);
    return n;
  };
  return {
    redisUrl: env.REDIS_URL || undefined,
    prefix: env.KUBERELAY_REDIS_PREFIX || undefined,
    commandTimeoutMs: num('KUBERELAY_REDIS_TIMEOUT_MS'),
    permitTtlMs: num('KUBERELAY_PERMIT_TTL_MS'),
    reportIntervalMs: num('KUBERELAY_REPORT_INTERVAL_MS'),
    refreshMs: num('KUBERELAY_STATE_REFRESH_MS'),
    pod: podName(env),
  };
}

/** POD_NAME (the chart sets it from the downward API), else the hostname (a pod's name in Kubernetes). */
export function podName(env: NodeJS.ProcessEnv = process.env): string {
  if (env.POD_NAME) return env.POD_NAME;
  // Outside Kubernetes several relays may share a host: tell them apart.
  return env.KUBERNETES_SERVICE_HOST ? hostname() : `${hostname()}-${process.pid}`;
}

/**
 * Opens the shared state. With Redis it waits briefly for the first connection, then starts
 * anyway: a relay that cannot reach Redis serves degraded rather than not at all, and connects
 * when Redis appears.
 */
export async function openSharedState(opts: SharedStateOptions = { pod: podName() }): Promise<SharedState> {
  const reportIntervalMs = opts.reportIntervalMs ?? 5000;
  if (!opts.redisUrl) {
    return {
      store: new MemoryStore(),
      limiter: new MemoryLimiter(),
      connection: undefined,
      pod: opts.pod,
      reportIntervalMs,
    };
  }
  // Loaded only with REDIS_URL: ioredis and the scripts are ~4 MB of a relay that does not use them.
  const [{ RedisConnection }, { RedisLimiter }, { SCRIPTS }, { RedisStore }] = await Promise.all([
    import('../redis/connection.ts'),
    import('../redis/limiter.ts'),
    import('../redis/lua.ts'),
    import('../redis/state-store.ts'),
  ]);
  const connection = new RedisConnection({
    url: opts.redisUrl,
    prefix: opts.prefix,
    commandTimeoutMs: opts.commandTimeoutMs,
    name: `kuberelay:${opts.pod}`,
    scripts: SCRIPTS,
  });
  await connection.waitReady(3000);
  return {
    store: new RedisStore({ connection, permitTtlMs: opts.permitTtlMs, refreshMs: opts.refreshMs }),
    limiter: new RedisLimiter({ connection, permitTtlMs: opts.permitTtlMs }),
    connection,
    pod: opts.pod,
    reportIntervalMs,
  };
}
