import type { FastifyRequest } from 'fastify';
import {
  type AccountingSink,
  type RequestRecord,
  type RequestRecorder,
  type UsageIncrement,
  usageKeyOf,
  usageRowKey,
  usageRowOf,
} from '../core/accounting.ts';
import { addTokens, NO_TOKENS } from '../core/usage.ts';
import type { DatabaseHealth } from './db-health.ts';
import type { RelayError } from './errors.ts';
import type { RelayMetrics } from './metrics.ts';
import { traceIdOf } from './tracing.ts';

/**
 * Takes every finished request off the request path and writes it to the database in batches:
 * - usage rollups: every request, summed in memory per (day, key, channel, model), one upsert
 *   statement per flush;
 * - request-log rows: errors and slow requests always, the rest sampled, into a bounded buffer.
 * `record()` never waits and never throws. A full buffer drops rows and counts them; a failed
 * write keeps its rows (up to the bound) and is retried on the next tick, so a database that comes
 * back gets the backlog without a restart.
 */

export interface RequestLogOptions {
  /** Share of successful, fast requests that get a log row (0..1). */
  sampleRate: number;
  /** Requests slower than this are always logged. */
  slowMs: number;
  batchSize: number;
  flushIntervalMs: number;
  /** Most log rows held while the database is slow or down. */
  maxBuffer: number;
  /** Most distinct pending usage rows (day x key x channel x model) held likewise. */
  maxUsageRows: number;
  random?: () => number;
}

export const DEFAULT_REQUEST_LOG_OPTIONS: RequestLogOptions = {
  sampleRate: 1,
  slowMs: 1000,
  batchSize: 500,
  flushIntervalMs: 1000,
  maxBuffer: 10_000,
  maxUsageRows: 50_000,
};

export class RequestLogWriter implements RequestRecorder {
  readonly #sink: AccountingSink;
  readonly #metrics: RelayMetrics;
  readonly #health: DatabaseHealth;
  readonly #o: RequestLogOptions;
  readonly #random: () => number;
  #buffer: RequestRecord[] = [];
  #usage = new Map<string, UsageIncrement>();
  #timer: NodeJS.Timeout | undefined;
  #flushing: Promise<void> | undefined;
  /** Records so far, and how many of them the running flush covers. */
  #recorded = 0;
  #flushCovers = 0;
  /** After a failed write, no early flush before this (the timer still retries). */
  #quietUntil = 0;

  constructor(sink: AccountingSink, metrics: RelayMetrics, health: DatabaseHealth, o: RequestLogOptions) {
    this.#sink = sink;
    this.#metrics = metrics;
    this.#health = health;
    this.#o = o;
    this.#random = o.random ?? Math.random;
  }

  start() {
    this.#timer = setInterval(() => void this.#flushShared(), this.#o.flushIntervalMs);
    this.#timer.unref();
  }

  record(r: RequestRecord): void {
    this.#recorded++;
    this.#addUsage(r);
    if (!sampledIn(r, this.#o, this.#random)) {
      this.#metrics.requestLogsSampledOut.inc();
      return;
    }
    if (this.#buffer.length >= this.#o.maxBuffer) {
      this.#metrics.requestLogsDropped.inc({ reason: 'buffer_full' });
      return;
    }
    this.#buffer.push(r);
    this.#metrics.requestLogsBuffered.set(this.#buffer.length);
    if (this.#buffer.length >= this.#o.batchSize && Date.now() >= this.#quietUntil) void this.#flushShared();
  }

  get buffered(): number {
    return this.#buffer.length;
  }

  /**
   * Writes everything recorded before the call. One flush runs at a time: a caller joins the
   * running one when it began after the caller's last record, else waits for it and joins or
   * starts the next (the running one took its usage snapshot before those records arrived).
   */
  async flush(): Promise<void> {
    const upTo = this.#recorded;
    while (this.#flushing && this.#flushCovers < upTo) await this.#flushing;
    return this.#flushShared();
  }

  /** The running flush, or a new one: for the timer and batch triggers, which need no more. */
  #flushShared(): Promise<void> {
    if (!this.#flushing) {
      this.#flushCovers = this.#recorded;
      this.#flushing = this.#flushOnce().finally(() => {
        this.#flushing = undefined;
      });
    }
    return this.#flushing;
  }

  /** Final flush, bounded in time; whatever is still unwritten is counted as dropped. */
  async close(timeoutMs = 5000): Promise<void> {
    clearInterval(this.#timer);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      (async () => {
        await this.flush();
        // A batch that arrived during the first flush.
        if (this.#buffer.length > 0 || this.#usage.size > 0) await this.flush();
      })(),
      new Promise((r) => {
        timer = setTimeout(r, timeoutMs);
      }),
    ]);
    clearTimeout(timer);
    if (this.#buffer.length > 0)
      this.#metrics.requestLogsDropped.inc({ reason: 'shutdown' }, this.#buffer.length);
    if (this.#usage.size > 0) this.#metrics.usageDropped.inc(this.#usage.size);
    this.#buffer = [];
    this.#usage.clear();
    this.#metrics.requestLogsBuffered.set(0);
  }

  async #flushOnce(): Promise<void> {
    // Usage first: it is the accounting; log rows are the detail.
    if (this.#usage.size > 0) {
      const pending = [...this.#usage.values()];
      this.#usage = new Map();
      try {
        await this.#sink.addUsage(pending);
        this.#health.ok();
      } catch (err) {
        this.#failed('write_usage', err);
        for (const u of pending) this.#mergeUsage(u);
        return;
      }
    }
    while (this.#buffer.length > 0) {
      const batch = this.#buffer.splice(0, this.#o.batchSize);
      try {
        await this.#sink.writeLogs(batch);
        this.#health.ok();
        this.#metrics.requestLogsWritten.inc(batch.length);
      } catch (err) {
        this.#failed('write_logs', err);
        // Back to the front, oldest first; what no longer fits is dropped and counted.
        this.#buffer = batch.concat(this.#buffer);
        const over = this.#buffer.length - this.#o.maxBuffer;
        if (over > 0) {
          this.#buffer.splice(this.#o.maxBuffer);
          this.#metrics.requestLogsDropped.inc({ reason: 'buffer_full' }, over);
        }
        break;
      } finally {
        this.#metrics.requestLogsBuffered.set(this.#buffer.length);
      }
    }
  }

  #failed(operation: string, err: unknown) {
    this.#health.failed(operation, err);
    this.#quietUntil = Date.now() + this.#o.flushIntervalMs;
  }

  #addUsage(r: RequestRecord) {
    const errors = r.status >= 400 ? 1 : 0;
    // Most requests add to a row that is already pending: no row object for them.
    const u = this.#usage.get(usageKeyOf(r));
    if (u) {
      u.requests++;
      u.errors += errors;
      addTokens(u, r);
      u.cost += r.cost;
      return;
    }
    const row = usageRowOf(r);
    row.requests = 1;
    row.errors = errors;
    addTokens(row, r);
    row.cost = r.cost;
    this.#mergeUsage(row);
  }

  #mergeUsage(p: UsageIncrement) {
    const key = usageRowKey(p);
    const u = this.#usage.get(key);
    if (u) {
      u.requests += p.requests;
      u.errors += p.errors;
      addTokens(u, p);
      u.cost += p.cost;
    } else if (this.#usage.size < this.#o.maxUsageRows) {
      this.#usage.set(key, p);
    } else {
      this.#metrics.usageDropped.inc();
    }
  }
}

/** The record of a request that ended in an error response of the relay's own. */
/** Errors and slow requests always; the rest at `sampleRate` (the request log and the access log). */
export function sampledIn(
  r: RequestRecord,
  o: Pick<RequestLogOptions, 'sampleRate' | 'slowMs'>,
  random: () => number,
): boolean {
  const always = r.status >= 400 || r.errorCode !== undefined || r.durationMs > o.slowMs;
  return always || o.sampleRate >= 1 || random() < o.sampleRate;
}

export function failedRecord(
  req: FastifyRequest,
  route: string,
  model: string,
  e: RelayError,
): RequestRecord {
  return {
    requestId: String(req.id),
    at: Date.now(),
    keyId: req.client?.keyId,
    route,
    model,
    status: e.statusCode,
    durationMs: req.receivedAt ? performance.now() - req.receivedAt : 0,
    attempts: Number(e.headers['x-kuberelay-attempts'] ?? 0),
    stream: (req.body as { stream?: unknown } | undefined)?.stream === true,
    ...NO_TOKENS,
    cost: 0,
    errorCode: e.code,
    traceId: req.trace?.traceId ?? traceIdOf(req.headers.traceparent),
  };
}
