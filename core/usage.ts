import type { ModelPricing } from './config/relay-config.ts';

/** Token usage of one request, normalised from the provider's `usage` object. */
export interface Usage {
  promptTokens: number;
  completionTokens: number;
  cachedTokens: number;
  /** True when the relay estimated it (no usage from upstream, e.g. a client that left mid-stream). */
  estimated: boolean;
}

const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : 0);

/** OpenAI's `usage` (chat, completions, embeddings; `input_tokens` for images). */
export function usageFromOpenAI(u: unknown): Usage | undefined {
  if (!u || typeof u !== 'object') return undefined;
  const o = u as Record<string, unknown>;
  const details = (o.prompt_tokens_details ?? o.input_tokens_details) as Record<string, unknown> | undefined;
  return {
    promptTokens: num(o.prompt_tokens ?? o.input_tokens),
    completionTokens: num(o.completion_tokens ?? o.output_tokens),
    cachedTokens: num(details?.cached_tokens),
    estimated: false,
  };
}

/** USD for one request: cached prompt tokens at their own price, plus per-request and per-second. */
export function costOf(usage: Usage, p: ModelPricing, durationMs: number): number {
  const cached = Math.min(usage.cachedTokens, usage.promptTokens);
  return (
    ((usage.promptTokens - cached) * p.inputPer1M +
      cached * p.cachedInputPer1M +
      usage.completionTokens * p.outputPer1M) /
      1e6 +
    p.perRequest +
    (p.perSecond * durationMs) / 1000
  );
}

/** A rough token count for text the relay saw but the upstream never accounted (≈4 chars/token). */
export function estimateTokens(chars: number): number {
  return Math.ceil(chars / 4);
}

const USAGE_KEY = Buffer.from('"usage":');
const OPEN = 0x7b; // {
const CLOSE = 0x7d; // }
const QUOTE = 0x22; // "
const BACKSLASH = 0x5c; // \

/**
 * Usage from a JSON response body without parsing all of it: OpenAI-style bodies end with their
 * top-level `"usage": {...}`, and embeddings or long completions make a full JSON.parse the
 * costliest step of accounting. Only that object is parsed; anything unexpected falls back to a
 * full parse.
 */
export function usageFromJsonBody(body: Buffer): Usage | undefined {
  const at = body.lastIndexOf(USAGE_KEY);
  if (at >= 0) {
    let i = at + USAGE_KEY.length;
    while (i < body.length && (body[i] === 0x20 || body[i] === 0x0a || body[i] === 0x0d || body[i] === 0x09))
      i++;
    if (body[i] === OPEN) {
      const end = matchingBrace(body, i);
      if (end > 0) {
        try {
          return usageFromOpenAI(JSON.parse(body.toString('utf8', i, end + 1)));
        } catch {
          // fall through to the full parse
        }
      }
    }
  }
  try {
    return usageFromOpenAI((JSON.parse(body.toString('utf8')) as { usage?: unknown }).usage);
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
