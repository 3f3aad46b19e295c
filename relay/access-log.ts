import pino, { type Logger } from 'pino';
import type { RequestRecord, RequestRecorder } from '../core/accounting.ts';
import { DEFAULT_REQUEST_LOG_OPTIONS, type RequestLogOptions, sampledIn } from './request-log.ts';

/**
 * The access log: one structured line per finished request (pino's format, message `request`), sampled
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

/** Where access lines go: the relay's log destination, in its logger's envelope. */
export interface AccessLogOutput {
  /** Whether the relay's logger writes info lines (LOG_LEVEL). */
  enabled(): boolean;
  /** What the logger writes after `time`: its bindings (`,"pid":7,"hostname":"relay-0"`). */
  readonly bindings: string;
  write(line: string): void;
}

/**
 * Access lines written to `dest` (the relay's log destination) as `log` would write them: its
 * level decides, its bindings are the envelope. Not through `log.info`: pino's generic
 * serialisation (a merged object, a key loop, safe-stable-stringify for `tokens`) cost more
 * than the relay's own work on a request; an access line has fixed fields, none of them a
 * secret (so no redaction either), and accessLineJson writes them directly.
 */
export function accessLogOutput(log: Logger, dest: { write(line: string): unknown }): AccessLogOutput {
  return {
    enabled: () => log.isLevelEnabled('info'),
    bindings: (log as unknown as Record<symbol, string>)[pino.symbols.chindingsSym] ?? '',
    write: (line) => {
      dest.write(line);
    },
  };
}

export class AccessLog implements RequestRecorder {
  readonly #out: () => AccessLogOutput;
  readonly #o: AccessLogOptions;
  readonly #random: () => number;

  /** `out` is read per line: the relay's logger exists only once its app is built. */
  constructor(out: () => AccessLogOutput, o: AccessLogOptions, random = Math.random) {
    this.#out = out;
    this.#o = o;
    this.#random = random;
  }

  record(r: RequestRecord): void {
    if (!sampledIn(r, this.#o, this.#random)) return;
    const out = this.#out();
    if (out.enabled()) out.write(accessLineJson(r, Date.now(), out.bindings));
  }
}

/**
 * The access line as pino writes `info(fields, 'request')`: level, time, the logger's bindings,
 * the fields in this order (undefined ones left out, non-finite numbers as null), `msg`, newline.
 * Strings go through JSON.stringify, as pino's own escaping does for anything it must escape.
 */
export function accessLineJson(r: RequestRecord, time: number, bindings: string): string {
  let s = `{"level":30,"time":${time}${bindings},"requestId":${str(r.requestId)}`;
  if (r.traceId !== undefined) s += `,"traceId":${str(r.traceId)}`;
  if (r.keyId !== undefined) s += `,"keyId":${str(r.keyId)}`;
  s += `,"route":${str(r.route)},"model":${str(r.model)}`;
  if (r.channel !== undefined) s += `,"channel":${str(r.channel)}`;
  s += `,"attempts":${num(r.attempts)},"status":${num(r.status)},"stream":${r.stream}`;
  s += `,"tokens":{"prompt":${num(r.promptTokens)},"completion":${num(r.completionTokens)}`;
  s += `,"cached":${num(r.cachedTokens)},"cacheWrite":${num(r.cacheWriteTokens)}`;
  s += `,"reasoning":${num(r.reasoningTokens)}}`;
  if (r.usageSource !== undefined) s += `,"usageSource":${str(r.usageSource)}`;
  s += `,"cost":${num(r.cost)},"latencyMs":${num(round(r.durationMs))}`;
  if (r.ttftMs !== undefined) s += `,"ttftMs":${num(round(r.ttftMs))}`;
  if (r.errorCode !== undefined) s += `,"errorCode":${str(r.errorCode)}`;
  return `${s},"msg":"request"}\n`;
}

/**
 * A JSON string literal, as JSON.stringify writes it. Short strings with nothing to escape (ids,
 * routes, model names: nearly all) are quoted as they are, which costs less than a call to it.
 */
function str(s: string): string {
  if (s.length > 64) return JSON.stringify(s);
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c === 0x22 || c === 0x5c || (c >= 0xd800 && c <= 0xdfff)) return JSON.stringify(s);
  }
  return `"${s}"`;
}
/** A number as JSON.stringify writes it (`${n}` is the same text for finite numbers). */
const num = (n: number) => (Number.isFinite(n) ? n : null);
const round = (ms: number) => Math.round(ms * 1000) / 1000;
