// Fault descriptions for the mock upstream: validation (setFaults / control API) and parsing of the
// per-request `x-mock-*` headers.
import type { IncomingHttpHeaders } from 'node:http';

export interface MockFaults {
  /** Respond with this HTTP status (300-599) and an OpenAI-shaped error body. 2xx means "no fault". */
  status?: number;
  /** Seconds; adds a Retry-After header to a `status` fault response. */
  retryAfter?: number;
  /** Delay before the response headers (also before a reset or a status fault). */
  latencyMs?: number;
  /** Destroy the socket (TCP RST) without sending a response. */
  reset?: boolean;
  /** Streaming: after N content chunks, stop sending but keep the socket open (never end). */
  streamStallAfter?: number;
  /** Streaming: after N content chunks, destroy the socket abruptly. */
  streamDieAfter?: number;
  /**
   * Streaming: one content event of N bytes, sent in 1 MiB writes without its closing blank line,
   * then the stream stalls (an event bigger than any buffer, still arriving).
   */
  streamEventBytes?: number;
  /**
   * Streaming: send the preamble (the role-only first chunk, or a provider's message start) at once,
   * then wait this long before the first content chunk (a slow first token).
   */
  preambleThenStallMs?: number;
  /** Streaming: delay between content chunks (overrides the instance `chunkDelayMs` option). */
  chunkDelayMs?: number;
  /** Answer 200 with an HTML page (a captive portal or CDN error page) instead of the API's answer. */
  html?: boolean;
  /** Streaming: send everything up to `data: [DONE]`, then keep the socket open (never end). */
  holdAfterDone?: boolean;
  /**
   * Streaming: everything up to `data: [DONE]` in one write, then the chunked terminator this many
   * ms later in a write of its own, as servers that send each event as it is yielded do
   * (uvicorn/Starlette, hence vLLM and most Python servers).
   */
  endAfterDoneMs?: number;
  /** Streaming: end SSE lines with CRLF or CR instead of LF (all three are valid SSE). */
  sseLineEnding?: 'lf' | 'crlf' | 'cr';
  /** Streaming: JSON with a space after each `:` and `,` (as other servers format it). */
  spacedJson?: boolean;
  /** Instance faults only: apply to the next N requests, then clear (default: until changed). */
  count?: number;
}

const NUMERIC_KEYS = [
  'status',
  'retryAfter',
  'latencyMs',
  'streamStallAfter',
  'streamDieAfter',
  'streamEventBytes',
  'chunkDelayMs',
  'preambleThenStallMs',
  'endAfterDoneMs',
  'count',
] as const;

const BOOLEAN_KEYS = ['reset', 'html', 'holdAfterDone', 'spacedJson'] as const;

/**
 * Validates a fault description (from setFaults or `PUT /_mock/faults`). Returns a normalized copy, or
 * null when `input` is null/undefined/{} (meaning: clear). Throws a TypeError describing the problem.
 */
export function normalizeFaults(input: unknown): MockFaults | null {
  if (input === null || input === undefined) return null;
  if (typeof input !== 'object' || Array.isArray(input))
    throw new TypeError('faults must be an object or null');
  const src = input as Record<string, unknown>;
  const out: MockFaults = {};
  for (const key of Object.keys(src)) {
    const value = src[key];
    if (value === undefined || value === null) continue;
    if ((BOOLEAN_KEYS as readonly string[]).includes(key)) {
      if (typeof value !== 'boolean') throw new TypeError(`faults.${key} must be a boolean`);
      if (value) out[key as (typeof BOOLEAN_KEYS)[number]] = true;
      continue;
    }
    if (key === 'sseLineEnding') {
      if (value !== 'lf' && value !== 'crlf' && value !== 'cr')
        throw new TypeError('faults.sseLineEnding must be lf, crlf or cr');
      out.sseLineEnding = value;
      continue;
    }
    if (!(NUMERIC_KEYS as readonly string[]).includes(key)) throw new TypeError(`unknown fault "${key}"`);
    if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
      throw new TypeError(`faults.${key} must be a non-negative number`);
    }
    if ((key === 'status' || key === 'count' || key.startsWith('stream')) && !Number.isInteger(value)) {
      throw new TypeError(`faults.${key} must be an integer`);
    }
    if (key === 'status' && (value < 200 || value > 599))
      throw new TypeError('faults.status must be 200-599');
    if (key === 'count' && value < 1) throw new TypeError('faults.count must be >= 1');
    out[key as (typeof NUMERIC_KEYS)[number]] = value;
  }
  return Object.keys(out).length === 0 ? null : out;
}

// Header name -> fault key, for the numeric per-request fault headers.
const NUMERIC_HEADERS: ReadonlyArray<readonly [string, keyof MockFaults]> = [
  ['x-mock-status', 'status'],
  ['x-mock-retry-after', 'retryAfter'],
  ['x-mock-latency-ms', 'latencyMs'],
  ['x-mock-stream-stall-after', 'streamStallAfter'],
  ['x-mock-stream-die-after', 'streamDieAfter'],
  ['x-mock-chunk-delay-ms', 'chunkDelayMs'],
  ['x-mock-preamble-then-stall-ms', 'preambleThenStallMs'],
];

/**
 * Per-request faults from `x-mock-*` headers: undefined when none is present. Throws a TypeError naming
 * the header when a value is invalid.
 */
export function headerFaults(headers: IncomingHttpHeaders): MockFaults | undefined {
  let out: MockFaults | undefined;
  for (const [header, key] of NUMERIC_HEADERS) {
    const raw = headers[header];
    if (raw === undefined) continue;
    const value = Number(Array.isArray(raw) ? raw[0] : raw);
    const integer =
      key !== 'retryAfter' && key !== 'latencyMs' && key !== 'chunkDelayMs' && key !== 'preambleThenStallMs';
    if (
      !Number.isFinite(value) ||
      value < 0 ||
      (integer && !Number.isInteger(value)) ||
      (key === 'status' && (value < 200 || value > 599))
    ) {
      throw new TypeError(`invalid ${header} header: ${String(raw)}`);
    }
    out ??= {};
    (out as Record<string, number>)[key] = value;
  }
  const reset = headers['x-mock-reset'];
  if (reset !== undefined) {
    const v = String(Array.isArray(reset) ? reset[0] : reset).toLowerCase();
    if (v !== '1' && v !== 'true' && v !== '0' && v !== 'false') {
      throw new TypeError(`invalid x-mock-reset header: ${v}`);
    }
    out ??= {};
    out.reset = v === '1' || v === 'true';
  }
  return out;
}
