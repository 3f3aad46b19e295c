// Deterministic content for the mock upstream. Everything here is either precomputed once at module
// load or linear in the request size, so the mock stays a cheap benchmark baseline.
//
// Token model: one whitespace-separated word is one token, both for prompts and for completions.

/** Upper bound on generated completion tokens (max_tokens above this is clamped). */
export const MAX_COMPLETION_TOKENS = 4096;
/** Completion tokens when the request sets no max_tokens / max_completion_tokens. */
export const DEFAULT_COMPLETION_TOKENS = 8;
/** Embedding dimension when the request sets no `dimensions`. */
export const DEFAULT_EMBEDDING_DIMENSIONS = 8;
export const MAX_EMBEDDING_DIMENSIONS = 4096;

const WORDS = ['This', 'is', 'a', 'mock', 'response', 'from', 'the', 'kuberelay', 'mock', 'upstream.'];

// FULL_TEXT holds MAX_COMPLETION_TOKENS words; the text for n tokens is a prefix of it.
const OFFSETS = new Uint32Array(MAX_COMPLETION_TOKENS + 1);
const FULL_TEXT = (() => {
  let text = '';
  for (let i = 0; i < MAX_COMPLETION_TOKENS; i++) {
    text += (i === 0 ? '' : ' ') + WORDS[i % WORDS.length];
    OFFSETS[i + 1] = text.length;
  }
  return text;
})();

// JSON string literals (quotes included) of each streamed piece: the first word has no leading
// space, later ones do, so concatenating the streamed deltas yields exactly completionText(n).
const FIRST_PIECE_JSON = JSON.stringify(WORDS[0]);
const PIECES_JSON = WORDS.map((w) => JSON.stringify(' ' + w));

/** The deterministic completion text of `n` tokens (n is clamped to [0, MAX_COMPLETION_TOKENS]). */
export function completionText(n: number): string {
  const k = n < 0 ? 0 : Math.min(n, MAX_COMPLETION_TOKENS);
  return FULL_TEXT.slice(0, OFFSETS[k]);
}

/** JSON string literal of the i-th streamed token piece (i from 0). */
export function pieceJson(i: number): string {
  return i === 0 ? FIRST_PIECE_JSON : PIECES_JSON[i % WORDS.length]!;
}

/** Number of whitespace-separated words in `s`. */
export function countWords(s: string): number {
  let n = 0;
  let inWord = false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    const space = c === 32 || (c >= 9 && c <= 13) || c === 0xa0 || c === 0x2028 || c === 0x2029;
    if (space) inWord = false;
    else if (!inWord) {
      inWord = true;
      n++;
    }
  }
  return n;
}

/** Words in a message `content`: a string, or an array of parts (`{type:'text', text}` counted). */
function contentWords(content: unknown): number {
  if (typeof content === 'string') return countWords(content);
  if (Array.isArray(content)) {
    let n = 0;
    for (const part of content) {
      if (typeof part === 'string') n += countWords(part);
      else if (part && typeof part === 'object' && typeof (part as { text?: unknown }).text === 'string') {
        n += countWords((part as { text: string }).text);
      }
    }
    return n;
  }
  return 0;
}

/** prompt_tokens of a chat request: words across all message contents, at least 1. */
export function chatPromptTokens(messages: unknown): number {
  let n = 0;
  if (Array.isArray(messages)) {
    for (const m of messages) {
      if (m && typeof m === 'object') n += contentWords((m as { content?: unknown }).content);
    }
  }
  return Math.max(n, 1);
}

/**
 * Tokens of a legacy-completions prompt or an embeddings input: a string, an array of strings, an
 * array of token ids, or an array of token-id arrays (each id is one token). At least 1.
 */
export function inputTokens(input: unknown): number {
  let n = 0;
  if (typeof input === 'string') n = countWords(input);
  else if (Array.isArray(input)) {
    for (const item of input) {
      if (typeof item === 'string') n += countWords(item);
      else if (typeof item === 'number') n += 1;
      else if (Array.isArray(item)) n += item.length;
    }
  }
  return Math.max(n, 1);
}

/** completion_tokens for a request: max_completion_tokens / max_tokens (clamped), else the default. */
export function completionTokens(body: Record<string, unknown>): number {
  const requested = body['max_completion_tokens'] ?? body['max_tokens'];
  if (typeof requested !== 'number' || !Number.isFinite(requested)) return DEFAULT_COMPLETION_TOKENS;
  const n = Math.floor(requested);
  return n < 1 ? 1 : Math.min(n, MAX_COMPLETION_TOKENS);
}

/** The embedding inputs as a list (each element becomes one embedding). */
export function embeddingInputs(input: unknown): unknown[] {
  if (Array.isArray(input)) {
    // An array of token ids is ONE input; an array of strings / token arrays is many.
    if (input.length > 0 && typeof input[0] === 'number') return [input];
    return input;
  }
  return [input];
}

function seedOf(item: unknown): number {
  // FNV-1a over the string form (token-id arrays are joined); deterministic per input.
  const s = typeof item === 'string' ? item : Array.isArray(item) ? item.join(',') : String(item);
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0 || 1;
}

/** A deterministic unit-length vector for `item` (same input, same vector). */
export function embeddingVector(item: unknown, dimensions: number): Float32Array {
  const v = new Float32Array(dimensions);
  let x = seedOf(item);
  let norm = 0;
  for (let i = 0; i < dimensions; i++) {
    // xorshift32
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    const f = ((x >>> 0) / 0xffffffff) * 2 - 1;
    v[i] = f;
    norm += f * f;
  }
  const inv = norm > 0 ? 1 / Math.sqrt(norm) : 0;
  for (let i = 0; i < dimensions; i++) v[i] = v[i]! * inv;
  return v;
}

/** base64 of the little-endian float32 bytes, which is what OpenAI sends for encoding_format=base64. */
export function vectorBase64(v: Float32Array): string {
  return Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64');
}

/** A 1x1 transparent PNG, the "generated image". */
export const PNG_1X1_BASE64 =
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==';
export const PNG_1X1 = Buffer.from(PNG_1X1_BASE64, 'base64');

export const DEFAULT_MODELS = ['gpt-4o-mini', 'gpt-4o', 'text-embedding-3-small', 'dall-e-3'];
