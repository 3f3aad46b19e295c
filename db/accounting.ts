import type { AccountingSink, RequestRecord, UsageIncrement } from '../core/accounting.ts';
import { periodKey } from '../core/period.ts';
import type { Prisma, PrismaClient } from './generated/client.ts';

/** Request logs and daily usage rollups in the database, plus the queries the admin API serves. */

export type UsageDimension = 'day' | 'keyId' | 'channel' | 'model';

export interface UsageQuery {
  keyId?: string;
  channel?: string;
  model?: string;
  /** Inclusive UTC days, `YYYY-MM-DD`. */
  from?: string;
  to?: string;
  groupBy: UsageDimension[];
}

export interface UsageRow {
  day?: string;
  keyId?: string;
  channel?: string;
  model?: string;
  requests: number;
  errors: number;
  promptTokens: number;
  completionTokens: number;
  cachedTokens: number;
  cost: number;
}

export interface LogQuery {
  keyId?: string;
  channel?: string;
  model?: string;
  /** Only failed requests (status >= 400). */
  errors?: boolean;
  limit: number;
}

export class PrismaAccounting implements AccountingSink {
  readonly #db: PrismaClient;

  constructor(db: PrismaClient) {
    this.#db = db;
  }

  // Both writes are one statement over column arrays (unnest): the parameter count stays at one
  // per column whatever the batch size, and it is ~30x faster than createMany's per-row plan.

  async writeLogs(records: readonly RequestRecord[]): Promise<void> {
    if (records.length === 0) return;
    const col = <T>(f: (r: RequestRecord) => T) => records.map(f);
    await this.#db.$executeRaw`
      INSERT INTO request_logs (request_id, at, key_id, route, model, channel, status, duration_ms, attempts,
                                stream, prompt_tokens, completion_tokens, cached_tokens, cost, error_code,
                                cache_write_tokens, reasoning_tokens, usage_source)
      SELECT * FROM unnest(
        ${col((r) => r.requestId)}::text[], ${col((r) => new Date(r.at))}::timestamptz[],
        ${col((r) => r.keyId ?? null)}::text[], ${col((r) => r.route)}::text[], ${col((r) => r.model)}::text[],
        ${col((r) => r.channel ?? null)}::text[], ${col((r) => r.status)}::int[],
        ${col((r) => Math.round(r.durationMs))}::int[], ${col((r) => r.attempts)}::int[],
        ${col((r) => r.stream)}::bool[], ${col((r) => r.promptTokens)}::int[],
        ${col((r) => r.completionTokens)}::int[], ${col((r) => r.cachedTokens)}::int[],
        ${col((r) => r.cost)}::numeric[], ${col((r) => r.errorCode ?? null)}::text[],
        ${col((r) => r.cacheWriteTokens ?? 0)}::int[], ${col((r) => r.reasoningTokens ?? 0)}::int[],
        ${col((r) => r.usageSource ?? null)}::text[])`;
  }

  /** An atomic increment per row, safe with many relays flushing at once. */
  async addUsage(increments: readonly UsageIncrement[]): Promise<void> {
    if (increments.length === 0) return;
    const col = <T>(f: (u: UsageIncrement) => T) => increments.map(f);
    await this.#db.$executeRaw`
      INSERT INTO usage_daily AS u (day, key_id, channel, model, requests, errors, prompt_tokens,
                                    completion_tokens, cached_tokens, cost, cache_write_tokens, reasoning_tokens)
      SELECT * FROM unnest(
        ${col((u) => u.day)}::date[], ${col((u) => u.keyId)}::text[], ${col((u) => u.channel)}::text[],
        ${col((u) => u.model)}::text[], ${col((u) => u.requests)}::bigint[], ${col((u) => u.errors)}::bigint[],
        ${col((u) => u.promptTokens)}::bigint[], ${col((u) => u.completionTokens)}::bigint[],
        ${col((u) => u.cachedTokens)}::bigint[], ${col((u) => u.cost)}::numeric[],
        ${col((u) => u.cacheWriteTokens)}::bigint[], ${col((u) => u.reasoningTokens)}::bigint[])
      ON CONFLICT (day, key_id, channel, model) DO UPDATE SET
        requests = u.requests + excluded.requests,
        errors = u.errors + excluded.errors,
        prompt_tokens = u.prompt_tokens + excluded.prompt_tokens,
        completion_tokens = u.completion_tokens + excluded.completion_tokens,
        cached_tokens = u.cached_tokens + excluded.cached_tokens,
        cache_write_tokens = u.cache_write_tokens + excluded.cache_write_tokens,
        reasoning_tokens = u.reasoning_tokens + excluded.reasoning_tokens,
        cost = u.cost + excluded.cost`;
  }

  async usage(q: UsageQuery): Promise<UsageRow[]> {
    const where: Prisma.UsageDailyWhereInput = {
      keyId: q.keyId,
      channel: q.channel,
      model: q.model,
      day: { gte: q.from ? new Date(q.from) : undefined, lte: q.to ? new Date(q.to) : undefined },
    };
    const sum = {
      requests: true,
      errors: true,
      promptTokens: true,
      completionTokens: true,
      cachedTokens: true,
      cost: true,
    } as const;
    const by = q.groupBy.length > 0 ? q.groupBy : (['keyId'] as UsageDimension[]);
    // Prisma's groupBy types need `by` as a literal tuple; the dimensions here are chosen at runtime.
    const rows = (await this.#db.usageDaily.groupBy({ by, where, _sum: sum } as never)) as unknown as Array<
      Partial<Record<UsageDimension, unknown>> & { _sum: Record<keyof typeof sum, unknown> }
    >;
    const result = rows.map((r) => {
      const s = r._sum;
      const out: UsageRow = {
        requests: Number(s.requests ?? 0),
        errors: Number(s.errors ?? 0),
        promptTokens: Number(s.promptTokens ?? 0),
        completionTokens: Number(s.completionTokens ?? 0),
        cachedTokens: Number(s.cachedTokens ?? 0),
        cost: Number(s.cost ?? 0),
      };
      if (by.includes('day')) out.day = periodKey('day', (r.day as Date).getTime());
      if (by.includes('keyId')) out.keyId = r.keyId as string;
      if (by.includes('channel')) out.channel = r.channel as string;
      if (by.includes('model')) out.model = r.model as string;
      return out;
    });
    const sortKey = (r: UsageRow) => by.map((d) => String(r[d] ?? '')).join('\n');
    return result.sort((a, b) => sortKey(a).localeCompare(sortKey(b)));
  }

  /** USD a key spent from `from` (a UTC day) on, per the rollups. */
  async keySpendSince(keyId: string, from: Date): Promise<number> {
    const r = await this.#db.usageDaily.aggregate({
      where: { keyId, day: { gte: from } },
      _sum: { cost: true },
    });
    return Number(r._sum.cost ?? 0);
  }

  async recentLogs(q: LogQuery) {
    const rows = await this.#db.requestLog.findMany({
      where: {
        keyId: q.keyId,
        channel: q.channel,
        model: q.model,
        status: q.errors ? { gte: 400 } : undefined,
      },
      orderBy: { id: 'desc' },
      take: q.limit,
    });
    return rows.map((r) => ({ ...r, id: r.id.toString(), cost: Number(r.cost), at: r.at.toISOString() }));
  }

  /** Deletes request logs older than `before`; returns how many. */
  async pruneLogs(before: Date): Promise<number> {
    return (await this.#db.requestLog.deleteMany({ where: { at: { lt: before } } })).count;
  }
}
