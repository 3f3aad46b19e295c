import { periodKey } from './period.ts';
import type { SpendTotals } from './spend.ts';
import { NO_TOKENS, type TokenCounts } from './usage.ts';

/**
 * What the relay remembers about each request once it is answered: a request-log row (sampled)
 * and a usage rollup increment (every request). Never a prompt, a response or a secret.
 */

export interface RequestRecord extends TokenCounts {
  requestId: string;
  /** Epoch ms when the request finished. */
  at: number;
  /** API key id; undefined without client auth or when auth failed. */
  keyId?: string;
  route: string;
  /** A configured model name, or `other`. */
  model: string;
  /** Serving channel id; undefined when no channel answered. */
  channel?: string;
  status: number;
  durationMs: number;
  attempts: number;
  stream: boolean;
  /** Where the token counts come from: the upstream's usage, or the relay's estimate; absent: none. */
  usageSource?: 'reported' | 'estimated';
  cost: number;
  /** Stable error code (the OpenAI-shaped error's `code`), when the request failed. */
  errorCode?: string;
  /** First streamed token, ms after the request arrived (streams only). */
  ttftMs?: number | undefined;
  /** W3C trace id: the request's span, or the caller's `traceparent` when tracing is off. */
  traceId?: string | undefined;
}

/** Receives every finished request; must never block or throw (it runs on the request path). */
export interface RequestRecorder {
  record(r: RequestRecord): void;
}

/** Every finished request to each recorder (access log, database writer). */
export function fanOut(...recorders: (RequestRecorder | undefined)[]): RequestRecorder | undefined {
  const all = recorders.filter((r) => r !== undefined);
  if (all.length <= 1) return all[0];
  return {
    record(r) {
      for (const x of all) x.record(r);
    },
  };
}

/** Usage of one key on one channel and model during one UTC day, summed. */
export interface UsageIncrement extends TokenCounts, SpendTotals {
  /** `YYYY-MM-DD` (UTC). */
  day: string;
  /** '' without a key, '' without a channel. */
  keyId: string;
  channel: string;
  model: string;
  errors: number;
}

/**
 * Where the writer flushes to (the database). Both calls are batched and may fail; the increments
 * of one `addUsage` call are distinct rows (the writer sums per row before flushing).
 */
export interface AccountingSink {
  writeLogs(records: readonly RequestRecord[]): Promise<void>;
  addUsage(increments: readonly UsageIncrement[]): Promise<void>;
}

/** Identity of a usage rollup row. */
export function usageRowKey(u: Pick<UsageIncrement, 'day' | 'keyId' | 'channel' | 'model'>): string {
  return `${u.day}\n${u.keyId}\n${u.channel}\n${u.model}`;
}

/** usageRowKey of the row a record adds to, without making the row. */
export function usageKeyOf(r: RequestRecord): string {
  return `${periodKey('day', r.at)}\n${r.keyId ?? ''}\n${r.channel ?? ''}\n${r.model}`;
}

/** The empty usage row a record adds to (its UTC day; '' for no key or no channel). */
export function usageRowOf(r: RequestRecord): UsageIncrement {
  return {
    day: periodKey('day', r.at),
    keyId: r.keyId ?? '',
    channel: r.channel ?? '',
    model: r.model,
    requests: 0,
    errors: 0,
    ...NO_TOKENS,
    cost: 0,
  };
}
