import type { Logger } from 'pino';
import type { RequestRecord, RequestRecorder } from '../core/accounting.ts';
import { DEFAULT_REQUEST_LOG_OPTIONS, type RequestLogOptions, sampledIn } from './request-log.ts';

/**
 * The access log: one structured line per finished request (pino, message `request`), sampled
 * like the request log (errors and slow requests always, the rest at KUBERELAY_LOG_SAMPLE_RATE).
 * Fields are documented in README.md ("Access log"); the key is its id, never the secret.
 */

export type AccessLogOptions = Pick<RequestLogOptions, 'sampleRate' | 'slowMs'>;

/** KUBERELAY_ACCESS_LOG (`on`, the default, or `off`) and the request log's sampling settings. */
export function accessLogFromEnv(env: NodeJS.ProcessEnv = process.env): AccessLogOptions | false {
  const on = env.KUBERELAY_ACCESS_LOG || 'on';
  if (on !== 'on' && on !== 'off')
    throw new Error(`KUBERELAY_ACCESS_LOG="${on}" is not valid: use on or off`);
  if (on === 'off') return false;
  const num = (name: string, def: number, max = Number.POSITIVE_INFINITY) => {
    const v = env[name];
    if (v === undefined || v === '') return def;
    const n = Number(v);
    if (!Number.isFinite(n) || n < 0 || n > max) throw new Error(`${name}="${v}" is not valid`);
    return n;
  };
  return {
    sampleRate: num('KUBERELAY_LOG_SAMPLE_RATE', DEFAULT_REQUEST_LOG_OPTIONS.sampleRate, 1),
    slowMs: num('KUBERELAY_LOG_SLOW_MS', DEFAULT_REQUEST_LOG_OPTIONS.slowMs),
  };
}

/**
 * The logger for access lines: the relay's, without its redaction. An access line is built here
 * from fixed fields (accessLine), none of them a secret, and the redaction's wildcard paths
 * would otherwise walk every one of them on every request.
 */
export function accessLogger(log: Logger): Logger {
  return log.child({}, { redact: [] });
}

export class AccessLog implements RequestRecorder {
  readonly #log: () => Logger;
  readonly #o: AccessLogOptions;
  readonly #random: () => number;

  /** `log` is read per line: the relay's logger exists only once its app is built. */
  constructor(log: () => Logger, o: AccessLogOptions, random = Math.random) {
    this.#log = log;
    this.#o = o;
    this.#random = random;
  }

  record(r: RequestRecord): void {
    if (!sampledIn(r, this.#o, this.#random)) return;
    this.#log().info(accessLine(r), 'request');
  }
}

export function accessLine(r: RequestRecord) {
  return {
    requestId: r.requestId,
    traceId: r.traceId,
    keyId: r.keyId,
    route: r.route,
    model: r.model,
    channel: r.channel,
    attempts: r.attempts,
    status: r.status,
    stream: r.stream,
    tokens: {
      prompt: r.promptTokens,
      completion: r.completionTokens,
      cached: r.cachedTokens,
      cacheWrite: r.cacheWriteTokens,
      reasoning: r.reasoningTokens,
    },
    usageSource: r.usageSource,
    cost: r.cost,
    latencyMs: round(r.durationMs),
    ttftMs: r.ttftMs === undefined ? undefined : round(r.ttftMs),
    errorCode: r.errorCode,
  };
}

const round = (ms: number) => Math.round(ms * 1000) / 1000;
