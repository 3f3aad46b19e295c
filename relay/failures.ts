import type { Candidate } from '../core/selection.ts';
import { RelayError } from './errors.ts';
import type { ProxyDeps } from './proxy-deps.ts';
import type { ChannelRuntime } from './runtime.ts';
import type { FailureReason } from './upstream-fault.ts';

/** One attempt's failure on the upstream's side: what the channel's health and the client see. */
export interface Failure {
  reason: FailureReason;
  channel: string;
  status?: number;
  retryAfterMs?: number;
  /** What went wrong, for the client's error and the channel's lastError. */
  message?: string;
}

/**
 * Counts a failure against the channel: metrics, pod stats, the cooldown counter. Resolves to
 * whether this failure put the channel into cooldown (false when the store could not say).
 */
export function failed(
  deps: ProxyDeps,
  ch: ChannelRuntime,
  f: Failure,
  willFailover: boolean,
): Promise<boolean> {
  const id = ch.config.id;
  deps.metrics.upstreamErrors.inc({ channel: id, reason: f.reason });
  if (willFailover) deps.metrics.failovers.inc({ channel: id, reason: f.reason });
  deps.stats?.failure(id, f.reason, failureMessage(f));
  const wasCooling = deps.store.cooldownUntil(id) > Date.now();
  return deps.store
    .recordFailure(id, ch.config.cooldown, f.retryAfterMs)
    .then((h) => {
      if (wasCooling || h.cooldownUntil <= Date.now()) return false;
      deps.metrics.cooldowns.inc({ channel: id });
      deps.log.warn(
        { channel: id, until: new Date(h.cooldownUntil).toISOString(), reason: f.reason },
        'channel cooling down',
      );
      return true;
    })
    .catch((err) => {
      deps.log.warn({ err }, 'state store: recordFailure failed');
      return false;
    });
}

export function failureMessage(f: Failure): string {
  if (f.message !== undefined) return f.message;
  if (f.status !== undefined) return `the upstream answered ${f.status}`;
  if (f.reason === 'stream') return 'the response stream broke off';
  return `the upstream could not be reached (${f.reason})`;
}

export function noChannel(deps: ProxyDeps, model: string, all: Candidate[], now: number): RelayError {
  const until = Math.min(...all.map((c) => deps.store.cooldownUntil(c.channel.id)).filter((u) => u > now));
  const headers: Record<string, string> = {};
  if (Number.isFinite(until)) headers['retry-after'] = String(Math.max(1, Math.ceil((until - now) / 1000)));
  return new RelayError(
    503,
    'server_error',
    'no_channel_available',
    `no channel is available for model '${model}': every channel serving it is cooling down`,
    { headers },
  );
}

/** The client's error once every candidate failed or was busy. */
export function exhausted(
  deps: ProxyDeps,
  model: string,
  last: Failure | undefined,
  busy: number,
  attempts: number,
  all: Candidate[],
  now: number,
): RelayError {
  const headers: Record<string, string> = { 'x-kuberelay-attempts': String(attempts) };
  if (!last) {
    if (busy > 0) {
      return new RelayError(
        503,
        'server_error',
        'channel_busy',
        `every channel for model '${model}' is at its concurrency limit and its queue is full or timed out`,
        { headers: { ...headers, 'retry-after': '1' } },
      );
    }
    return noChannel(deps, model, all, now);
  }
  const tried = `${attempts} attempt${attempts === 1 ? '' : 's'}`;
  if (last.status === 429) {
    const retry = last.retryAfterMs !== undefined ? Math.max(1, Math.ceil(last.retryAfterMs / 1000)) : 1;
    return new RelayError(
      429,
      'rate_limit_error',
      'upstream_rate_limited',
      `upstream rate limit reached for model '${model}' (${tried}, last channel ${last.channel})`,
      { headers: { ...headers, 'retry-after': String(retry) } },
    );
  }
  if (last.reason === 'timeout' || last.reason === 'first_token' || last.status === 408) {
    return new RelayError(
      504,
      'upstream_error',
      'upstream_timeout',
      `${last.reason === 'first_token' ? 'no first token came in time' : 'the upstream timed out'} for model '${model}' (${tried}, last channel ${last.channel})`,
      { headers },
    );
  }
  const what =
    last.status === 401 || last.status === 403
      ? 'the upstream refused the channel credential'
      : failureMessage(last);
  return new RelayError(
    502,
    'upstream_error',
    'upstream_error',
    `${what} for model '${model}' (${tried}, last channel ${last.channel})`,
    { headers },
  );
}
