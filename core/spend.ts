import { type Period, periodKey } from './period.ts';
import type { TokenCounts } from './usage.ts';

/**
 * Spend, the one home of the concept: what answered requests cost (USD) and used, counted per
 * channel and per key over UTC days and months (period.ts). relay/proxy.ts makes one SpendRecord
 * per answered request and hands it to each keeper of spend:
 * - the state stores' live counters (`StateStore.recordSpend`; fleet-wide with Redis),
 * - the rate limiter's `cost` and `tokens` limits (relay/limits.ts `charge`),
 * - the request log: its rollup rows are spend totals per day (core/accounting.ts UsageIncrement),
 *   written to the database's usage_daily.
 * Budgets and the admin API read the live counter and the rollups together (`spentSoFar`).
 */

export type SpendScope = 'channel' | 'key';

/** What one request adds to spend. */
export interface SpendIncrement extends Pick<TokenCounts, 'promptTokens' | 'completionTokens'> {
  cost: number;
}

/** One request's spend, with the counters it goes to. */
export interface SpendRecord extends SpendIncrement {
  channelId: string;
  /** API key id (never the secret); absent without client auth. */
  keyId?: string;
  model: string;
  /** Epoch ms: picks the day and month. */
  at: number;
}

/** A spend counter: one channel or key over one calendar day or month (UTC). */
export interface SpendTotals extends SpendIncrement {
  requests: number;
}

export const NO_SPEND: Readonly<SpendTotals> = Object.freeze({
  cost: 0,
  requests: 0,
  promptTokens: 0,
  completionTokens: 0,
});

/** The counters a request adds to: its channel's and, with client auth, its key's. */
export function spendScopes(r: Pick<SpendRecord, 'channelId' | 'keyId'>): [SpendScope, string][] {
  return r.keyId
    ? [
        ['channel', r.channelId],
        ['key', r.keyId],
      ]
    : [['channel', r.channelId]];
}

/** Identity of a counter within one store (a store may add its own prefix and layout). */
export function spendCounter(scope: SpendScope, id: string, period: Period, at: number): string {
  return `${scope}:${id}:${periodKey(period, at)}`;
}

/** Counts one request into a counter. */
export function addSpend(t: SpendTotals, r: SpendIncrement) {
  t.cost += r.cost;
  t.requests += 1;
  t.promptTokens += r.promptTokens;
  t.completionTokens += r.completionTokens;
}

/**
 * Spent in a period, from the live counter and the durable rollups: the larger. Neither
 * double-counts the other and each covers the other's blind spot (an in-memory counter restarts
 * from zero; the rollups lag by a flush interval).
 */
export function spentSoFar(live: number, recorded: number): number {
  return Math.max(live, recorded);
}
