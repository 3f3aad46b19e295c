import { Cluster, Redis, type RedisOptions } from 'ioredis';
import { DEFAULT_PREFIX, type KeyLayout, keyLayout } from './keys.ts';

/**
 * One Redis deployment as the relay sees it: a command client, a subscriber client (pub/sub needs
 * its own connection), the key layout, and a health view that callers consult before touching
 * the network. Built for failure: no offline queue (a command while Redis is away fails at once
 * instead of piling up), no retries of in-flight commands, a command timeout, and a short circuit
 * breaker after repeated timeouts so a hung Redis costs a request nothing instead of the timeout.
 *
 * REDIS_URL forms:
 *   redis://[user:pass@]host:6379[/db]                 one server
 *   rediss://...                                       the same over TLS
 *   redis+sentinel://[user:pass@]h1:26379,h2:26379/mymaster[/db][?sentinelPassword=...&sentinelUsername=...]
 *   redis+cluster://[user:pass@]h1:6379,h2:6379         Redis Cluster (seed nodes)
 *   rediss+sentinel://, rediss+cluster://              with TLS
 */

export type RedisClient = Redis | Cluster;

export interface RedisTarget {
  mode: 'standalone' | 'sentinel' | 'cluster';
  tls: boolean;
  nodes: { host: string; port: number }[];
  username?: string;
  password?: string;
  db?: number;
  /** Sentinel: the monitored master's name. */
  masterName?: string;
  sentinelUsername?: string;
  sentinelPassword?: string;
}

const URL_RE =
  /^(rediss?)(?:\+(sentinel|cluster))?:\/\/(?:([^:@/]*)(?::([^@/]*))?@)?([^/?#]+)(\/[^?#]*)?(?:\?([^#]*))?$/;

/** Parses REDIS_URL; throws an Error naming the accepted forms when it is not one of them. */
export function parseRedisUrl(url: string): RedisTarget {
  const m = URL_RE.exec(url.trim());
  if (!m) {
    throw new Error(
      `REDIS_URL "${redactUrl(url)}" is not redis://host:port[/db], rediss://..., redis+sentinel://h1:port,h2:port/master or redis+cluster://h1:port,h2:port`,
    );
  }
  const [, scheme, kind, user, pass, hostList, path, query] = m;
  const mode = kind === 'sentinel' ? 'sentinel' : kind === 'cluster' ? 'cluster' : 'standalone';
  const defaultPort = mode === 'sentinel' ? 26379 : 6379;
  const nodes = hostList!.split(',').map((h) => parseHostPort(h, defaultPort, url));
  if (mode === 'standalone' && nodes.length !== 1) {
    throw new Error('REDIS_URL: a redis:// URL names one server; use redis+sentinel:// or redis+cluster://');
  }
  const target: RedisTarget = { mode, tls: scheme === 'rediss', nodes };
  if (user) target.username = decodeURIComponent(user);
  if (pass) target.password = decodeURIComponent(pass);
  const segments = (path ?? '').split('/').filter((s) => s !== '');
  if (mode === 'sentinel') {
    if (!segments[0]) throw new Error('REDIS_URL: redis+sentinel:// needs the master name as its path');
    target.masterName = decodeURIComponent(segments.shift()!);
  }
  if (segments[0] !== undefined) {
    if (mode === 'cluster') throw new Error('REDIS_URL: Redis Cluster has no databases; drop the /db');
    const db = Number(segments[0]);
    if (!Number.isInteger(db) || db < 0)
      throw new Error(`REDIS_URL: database "${segments[0]}" is not a number`);
    target.db = db;
  }
  const params = new URLSearchParams(query ?? '');
  const sp = params.get('sentinelPassword');
  const su = params.get('sentinelUsername');
  if (sp !== null) target.sentinelPassword = sp;
  if (su !== null) target.sentinelUsername = su;
  return target;
}

function parseHostPort(s: string, defaultPort: number, url: string): { host: string; port: number } {
  const m = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(s);
  if (!m) throw new Error(`REDIS_URL "${redactUrl(url)}": bad host "${s}"`);
  return { host: m[1]!.replace(/^\[|\]$/g, ''), port: m[2] ? Number(m[2]) : defaultPort };
}

/** The URL with its password masked, for logs and errors. */
export function redactUrl(url: string): string {
  return url.replace(/(\/\/[^:@/]*:)[^@/]*@/, '$1***@').replace(/(sentinelPassword=)[^&]*/, '$1***');
}

export interface MinimalLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface ConnectionOptions {
  url: string;
  prefix?: string;
  /** A command slower than this fails (default 500 ms); the request path then uses its fallback. */
  commandTimeoutMs?: number;
  /** Shown in CLIENT LIST. */
  name?: string;
  log?: MinimalLogger;
  /** Lua scripts to define on the command client, by command name. */
  scripts?: Record<string, string>;
}

export class RedisUnavailableError extends Error {
  readonly code = 'KR_REDIS_UNAVAILABLE';
  constructor(reason: string) {
    super(`redis unavailable: ${reason}`);
    this.name = 'RedisUnavailableError';
  }
}

// After this many timeouts in a row, commands fail at once for BREAKER_MS, then one is let through.
const BREAKER_TIMEOUTS = 2;
const BREAKER_MS = 1000;
const DEFAULT_COMMAND_TIMEOUT_MS = 500;
const BACKSTOP_MS = 5000;
/** A deadline timer this late means the event loop was busy around it, not that Redis was. */
const LOOP_LAG_MS = 10;

/**
 * Rejects with "Command timed out" when `p` has not settled `ms` after the call, counting only
 * time in which the reply could have been read. A busy event loop runs timers before it reads
 * sockets: a plain timer (ioredis' commandTimeout) then declares a reply that is already waiting
 * on the socket timed out, and the limiter fails open on it (a 100/min limit admitted 103 under
 * load). So the deadline, once due, waits one turn of the loop (its I/O phase) before rejecting,
 * and a timer that fired late because the loop was busy starts its wait again, once: a Redis that
 * does not answer still fails within 2 x `ms` plus the loop's lag.
 */
export function withDeadline<T>(p: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let done = false;
    let rearmed = false;
    let timer: NodeJS.Timeout;
    const fail = () => {
      if (done) return;
      done = true;
      reject(new Error('Command timed out'));
    };
    const arm = (at: number) => {
      timer = setTimeout(() => {
        if (!rearmed && performance.now() - at - ms > LOOP_LAG_MS) {
          rearmed = true;
          arm(performance.now());
        } else setImmediate(fail);
      }, ms);
      timer.unref();
    };
    arm(performance.now());
    p.then(
      (v) => {
        done = true;
        clearTimeout(timer);
        resolve(v);
      },
      (err) => {
        done = true;
        clearTimeout(timer);
        reject(err);
      },
    );
  });
}

export class RedisConnection {
  readonly client: RedisClient;
  readonly subscriber: RedisClient;
  readonly keys: KeyLayout;
  readonly target: RedisTarget;
  /** Why Redis was last unusable (readiness detail). */
  lastError: string | undefined;
  log: MinimalLogger | undefined;
  #ready = false;
  #timeouts = 0;
  #openUntil = 0;
  #closed = false;
  readonly #timeoutMs: number;
  readonly #url: string;
  readonly #resync = new Set<() => void>();
  readonly #messages = new Set<(message: string) => void>();
  readonly #errors = new Set<(op: string) => void>();

  constructor(opts: ConnectionOptions) {
    this.#url = redactUrl(opts.url);
    this.target = parseRedisUrl(opts.url);
    this.keys = keyLayout(opts.prefix ?? DEFAULT_PREFIX);
    this.log = opts.log;
    this.#timeoutMs = opts.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS;
    const base = clientOptions(this.target, opts);
    this.client = createClient(this.target, base);
    this.subscriber = createClient(this.target, { ...base, connectionName: `${base.connectionName}:sub` });
    for (const [name, lua] of Object.entries(opts.scripts ?? {})) this.client.defineCommand(name, { lua });

    this.client.on('ready', () => {
      this.#timeouts = 0;
      this.#openUntil = 0;
      if (!this.#ready) {
        this.#ready = true;
        this.lastError = undefined;
        this.log?.info({ redis: this.#url }, 'redis connected');
      }
      this.#emitResync();
    });
    this.client.on('close', () => this.#down('connection closed'));
    this.client.on('error', (err: Error) => {
      this.lastError = err.message;
    });
    // ioredis emits errors on the subscriber too; unhandled they would crash the process.
    this.subscriber.on('error', () => {});
    this.subscriber.on('ready', () => {
      (this.subscriber as Redis).subscribe(this.keys.events()).catch(() => {});
      this.#emitResync();
    });
    this.subscriber.on('message', (_channel: string, message: string) => {
      for (const h of this.#messages) h(message);
    });
  }

  /** Connected and answering in time (kuberelay_redis_up, readiness detail). */
  get up(): boolean {
    return this.#ready && Date.now() >= this.#openUntil;
  }

  /** Resolves true once connected, false after `timeoutMs` (the relay starts degraded then). */
  waitReady(timeoutMs: number): Promise<boolean> {
    if (this.#ready) return Promise.resolve(true);
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.client.off('ready', ok);
        resolve(false);
      }, timeoutMs);
      const ok = () => {
        clearTimeout(t);
        resolve(true);
      };
      this.client.once('ready', ok);
    });
  }

  /**
   * Runs a command through the health gate: fails at once while Redis is known to be away, counts
   * timeouts for the breaker, reports failures to listeners (metrics).
   */
  async run<T>(op: string, fn: (c: RedisClient) => Promise<T>): Promise<T> {
    if (!this.#ready) {
      this.#error(op);
      throw new RedisUnavailableError(this.lastError ?? 'not connected');
    }
    if (Date.now() < this.#openUntil) {
      this.#error(op);
      throw new RedisUnavailableError('commands are timing out');
    }
    try {
      const r = await withDeadline(fn(this.client), this.#timeoutMs);
      this.#timeouts = 0;
      return r;
    } catch (err) {
      this.#error(op);
      const msg = (err as Error).message ?? String(err);
      if (/timed out/i.test(msg) && ++this.#timeouts >= BREAKER_TIMEOUTS) {
        if (Date.now() >= this.#openUntil) {
          this.log?.warn({ redis: this.#url, timeouts: this.#timeouts }, 'redis is not answering in time');
        }
        this.lastError = 'commands are timing out';
        this.#openUntil = Date.now() + BREAKER_MS;
      }
      throw err;
    }
  }

  /** Calls a script defined through `opts.scripts` (EVALSHA, falling back to EVAL after a restart). */
  script(name: string, keys: readonly string[], args: readonly (string | number)[]): Promise<unknown> {
    return this.run(name, (c) => {
      const fn = (c as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>)[name]!;
      return fn.call(c, keys.length, ...keys, ...args);
    });
  }

  publish(message: string): Promise<unknown> {
    return this.run('publish', (c) => c.publish(this.keys.events(), message));
  }

  /** Messages on the events channel (from every pod, this one included). */
  onMessage(handler: (message: string) => void): () => void {
    this.#messages.add(handler);
    return () => this.#messages.delete(handler);
  }

  /** Called when either connection (re)connects: local views should be re-read from Redis. */
  onResync(listener: () => void): () => void {
    this.#resync.add(listener);
    return () => this.#resync.delete(listener);
  }

  onCommandError(listener: (op: string) => void): () => void {
    this.#errors.add(listener);
    return () => this.#errors.delete(listener);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#resync.clear();
    this.#messages.clear();
    await Promise.allSettled([quit(this.client), quit(this.subscriber)]);
  }

  #down(reason: string) {
    if (!this.#ready) return;
    this.#ready = false;
    this.lastError ??= reason;
    if (!this.#closed) this.log?.warn({ redis: this.#url, reason: this.lastError }, 'redis unreachable');
  }

  #error(op: string) {
    for (const l of this.#errors) l(op);
  }

  #emitResync() {
    for (const l of this.#resync) {
      try {
        l();
      } catch {
        // a listener's problem is not the connection's
      }
    }
  }
}

async function quit(c: RedisClient) {
  try {
    await Promise.race([c.quit(), new Promise((r) => setTimeout(r, 500))]);
  } catch {
    // already gone
  }
  c.disconnect();
}

function clientOptions(t: RedisTarget, opts: ConnectionOptions): RedisOptions {
  return {
    // Fail fast instead of buffering without bound while Redis is away; the callers have fallbacks.
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    // A backstop for callers that use the client directly; `run` applies the real deadline.
    // (ioredis' own timer has the busy-loop flaw withDeadline avoids, hence its wide margin).
    commandTimeout: Math.max(BACKSTOP_MS, 10 * (opts.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS)),
    connectTimeout: 2000,
    // Reconnect for ever, backing off to 2 s, with jitter so a fleet does not reconnect in step.
    retryStrategy: (n) => Math.min(50 * 2 ** Math.min(n, 6), 2000) + Math.floor(Math.random() * 100),
    connectionName: opts.name ?? 'kuberelay',
    keepAlive: 10_000,
    enableAutoPipelining: true,
    username: t.username,
    password: t.password,
    db: t.db,
    tls: t.tls ? {} : undefined,
  };
}

function createClient(t: RedisTarget, o: RedisOptions): RedisClient {
  if (t.mode === 'cluster') {
    const { retryStrategy, ...redisOptions } = o;
    return new Cluster(t.nodes, {
      enableOfflineQueue: false,
      clusterRetryStrategy: (n) => retryStrategy!(n) ?? 2000,
      redisOptions,
    });
  }
  if (t.mode === 'sentinel') {
    return new Redis({
      ...o,
      sentinels: t.nodes,
      name: t.masterName,
      role: 'master',
      sentinelUsername: t.sentinelUsername,
      sentinelPassword: t.sentinelPassword,
      enableTLSForSentinelMode: t.tls,
      sentinelRetryStrategy: (n) => Math.min(100 * n, 2000),
      failoverDetector: true,
    });
  }
  return new Redis({ ...o, host: t.nodes[0]!.host, port: t.nodes[0]!.port });
}
