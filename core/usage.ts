import type { ModelPricing } from './config/relay-config.ts';

/**
 * Tokens used, by one request or summed over many: the one usage record. The other usage shapes
 * are made of it: a request's usage (below), its log record and rollup row (accounting.ts), the
 * spend counters (spend.ts).
 */
export interface TokenCounts {
  promptTokens: number;
  completionTokens: number;
  /** Prompt tokens read from the provider's cache (part of promptTokens). */
  cachedTokens: number;
  /** Prompt tokens written to the provider's cache. */
  cacheWriteTokens: number;
  /** Completion tokens spent on reasoning (part of completionTokens). */
  reasoningTokens: number;
}

export const NO_TOKENS: Readonly<TokenCounts> = Object.freeze({
  promptTokens: 0,
  completionTokens: 0,
  cachedTokens: 0,
  cacheWriteTokens: 0,
  reasoningTokens: 0,
});

/** Adds `more` into `sum`. */
export function addTokens(sum: TokenCounts, more: Readonly<TokenCounts>) {
  sum.promptTokens += more.promptTokens;
  sum.completionTokens += more.completionTokens;
  sum.cachedTokens += more.cachedTokens;
  sum.cacheWriteTokens += more.cacheWriteTokens;
  sum.reasoningTokens += more.reasoningTokens;
}

/** Token usage of one request, normalised from the provider's `usage` object. */
export interface Usage extends TokenCounts {
  /** True when the relay estimated it (no usage from upstream, e.g. a client that left mid-stream). */
  estimated: boolean;
  /** Seconds of audio the upstream reported (transcription `usage: {type: "duration"}`). */
  seconds?: number;
  /** Characters of input (text to speech). */
  characters?: number;
}

const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : 0);
const obj = (v: unknown) =>
  v !== null && typeof v === 'object' ? (v as Record<string, unknown>) : undefined;

/**
 * OpenAI's `usage` (chat, completions, embeddings; `input_tokens`/`output_tokens` for images and
 * Responses), with the cache-write counts OpenAI-compatible providers add
 * (`prompt_tokens_details.cache_write_tokens`, Anthropic's `cache_creation_input_tokens`).
 */
export function usageFromOpenAI(u: unknown): Usage | undefined {
  const o = obj(u);
  if (!o) return undefined;
  // Audio billed by duration (whisper-1): `{"type": "duration", "seconds": 9}`.
  if (o.type === 'duration') return { ...NO_TOKENS, seconds: num(o.seconds), estimated: false };
  const input = obj(o.prompt_tokens_details ?? o.input_tokens_details);
  const output = obj(o.completion_tokens_details ?? o.output_tokens_details);
  // Rerank (vLLM, Jina) reports only `total_tokens`: all of it is input.
  const inputOnly = o.completion_tokens === undefined && o.output_tokens === undefined;
  return {
    promptTokens: num(o.prompt_tokens ?? o.input_tokens ?? (inputOnly ? o.total_tokens : undefined)),
    completionTokens: num(o.completion_tokens ?? o.output_tokens),
    cachedTokens: num(input?.cached_tokens ?? o.cache_read_input_tokens),
    cacheWriteTokens: num(input?.cache_write_tokens ?? o.cache_creation_input_tokens),
    reasoningTokens: num(output?.reasoning_tokens),
    estimated: false,
  };
}

/** What the relay bills when the upstream reported nothing: the prompt at 4 bytes a token. */
export function estimatedUsage(requestBytes: number, completionTokens: number): Usage {
  return {
    promptTokens: estimateTokens(requestBytes),
    completionTokens,
    cachedTokens: 0,
    cacheWriteTokens: 0,
    reasoningTokens: 0,
    estimated: true,
  };
}

/**
 * USD for one request: prompt tokens read from and written to the provider's cache (both counted
 * in promptTokens) at their own prices, plus per-request, per-character (of speech input) and
 * per-second: of audio when the upstream reported its duration, else of the request's time.
 */
export function costOf(usage: Usage, p: ModelPricing, durationMs: number): number {
  const cached = Math.min(usage.cachedTokens, usage.promptTokens);
  const written = Math.min(usage.cacheWriteTokens, usage.promptTokens - cached);
  return (
    ((usage.promptTokens - cached - written) * p.inputPer1M +
      cached * p.cachedInputPer1M +
      written * (p.cacheWritePer1M ?? p.inputPer1M) +
      usage.completionTokens * p.outputPer1M) /
      1e6 +
    p.perRequest +
    (p.perCharacter ?? 0) * (usage.characters ?? 0) +
    p.perSecond * (usage.seconds ?? durationMs / 1000)
  );
}

/** A rough token count for text the relay saw but the upstream never accounted (≈4 chars/token). */
export function estimateTokens(chars: number): number {
  return Math.ceil(chars / 4);
}

/** Bytes of a response body's end kept for usage: the usage object is small and comes last. */
export const USAGE_TAIL_BYTES = 64 * 1024;

/**
 * Keeps the last `limit` bytes of a body streaming past (plus at most one chunk), so usage can be
 * read from bodies of any size in bounded memory.
 */
export class BodyTail {
  readonly #limit: number;
  // Most answers come in one chunk: it is held alone, the list is made for a second one.
  #first: Buffer | undefined;
  #chunks: Buffer[] | undefined;
  #held = 0;
  /** Bytes seen in total. */
  size = 0;

  constructor(limit = USAGE_TAIL_BYTES) {
    this.#limit = limit;
  }

  push(chunk: Buffer) {
    this.size += chunk.length;
    this.#held += chunk.length;
    if (this.#chunks === undefined) {
      if (this.#first === undefined) {
        this.#first = chunk;
        return;
      }
      this.#chunks = [this.#first];
      this.#first = undefined;
    }
    const chunks = this.#chunks;
    chunks.push(chunk);
    while (chunks.length > 1 && this.#held - chunks[0]!.length >= this.#limit) {
      this.#held -= chunks.shift()!.length;
    }
  }

  /** The kept bytes, and whether they are the whole body. */
  bytes(): { tail: Buffer; whole: boolean } {
    const chunks = this.#chunks;
    const tail =
      chunks === undefined
        ? (this.#first ?? Buffer.alloc(0))
        : chunks.length === 1
          ? chunks[0]!
          : Buffer.concat(chunks);
    return { tail, whole: this.#held === this.size };
  }
}

const USAGE_KEY = Buffer.from('"usage"');
const OPEN = 0x7b; // {
const CLOSE = 0x7d; // }
const QUOTE = 0x22; // "
const BACKSLASH = 0x5c; // \
const COLON = 0x3a; // :

const isSpace = (c: number | undefined) => c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;

/**
 * Usage from the end of a JSON response body without parsing all of it: OpenAI-style bodies end
 * with their top-level `"usage": {...}` (any spacing), and embeddings or images make a full
 * JSON.parse the costliest step of accounting, so only that object is parsed. When `whole` (the
 * buffer is the entire body), anything unexpected falls back to a full parse.
 */
export function usageFromJsonBody(
  body: Buffer,
  whole = true,
  read: (usage: unknown) => Usage | undefined = usageFromOpenAI,
): Usage | undefined {
  for (
    let at = body.lastIndexOf(USAGE_KEY);
    at >= 0;
    at = at > 0 ? body.lastIndexOf(USAGE_KEY, at - 1) : -1
  ) {
    if (at > 0 && body[at - 1] === BACKSLASH) continue; // inside a string
    let i = at + USAGE_KEY.length;
    while (isSpace(body[i])) i++;
    if (body[i] !== COLON) continue;
    i++;
    while (isSpace(body[i])) i++;
    if (body[i] !== OPEN) continue;
    const end = matchingBrace(body, i);
    if (end < 0) continue;
    try {
      return read(JSON.parse(body.toString('utf8', i, end + 1)));
    } catch {
      break;
    }
  }
  if (!whole) return undefined;
  try {
    return read((JSON.parse(body.toString('utf8')) as { usage?: unknown }).usage);
  } catch {
    return undefined;
  }
}

/** Index of the brace closing the object that opens at `start`, skipping strings; -1 if none. */
function matchingBrace(b: Buffer, start: number): number {
  let depth = 0;
  let inString = false;
  for (let i = start; i < b.length; i++) {
    const c = b[i];
    if (inString) {
      if (c === BACKSLASH) i++;
      else if (c === QUOTE) inString = false;
    } else if (c === QUOTE) inString = true;
    else if (c === OPEN) depth++;
    else if (c === CLOSE && --depth === 0) return i;
  }
  return -1;
}
