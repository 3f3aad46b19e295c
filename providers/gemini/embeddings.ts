// OpenAI embeddings <-> Gemini batchEmbedContents. One string is sent as a batch of one: the answer
// is the same as embedContent's, and one operation keeps one URL (the adapter's url() sees no body).
// Answers of either method are read. Gemini reports no token usage for embeddings, so prompt tokens
// are estimated from the text (core/usage.ts estimateTokens, ~4 characters a token) unless the
// answer carries usageMetadata.
import { estimateTokens } from '../../core/usage.ts';
import { modelResource } from './endpoint.ts';
import { asArray, asObject, count, isObject, type Json } from './json.ts';
import { refuse } from './refuse.ts';

const KNOWN = new Set(['model', 'input', 'encoding_format', 'dimensions', 'user']);

export interface NativeEmbeddings {
  body: Json;
  /** The input texts, for the usage estimate. */
  texts: string[];
}

export function toNativeEmbeddings(body: Json, opts: { upstreamModel: string }): NativeEmbeddings {
  for (const key of Object.keys(body)) {
    if (!KNOWN.has(key) && body[key] !== undefined && body[key] !== null) {
      refuse(key, `'${key}' is not supported by gemini channels.`);
    }
  }
  const format = body['encoding_format'];
  if (format !== undefined && format !== null && format !== 'float' && format !== 'base64') {
    refuse('encoding_format', "'encoding_format' must be float or base64.");
  }
  const dims = body['dimensions'];
  const extra: Json = {};
  if (dims !== undefined && dims !== null) {
    if (typeof dims !== 'number' || !Number.isInteger(dims) || dims < 1) {
      refuse('dimensions', "'dimensions' must be a positive integer.");
    }
    extra['outputDimensionality'] = dims;
  }
  const raw = body['input'];
  const input = typeof raw === 'string' ? [raw] : raw;
  if (!Array.isArray(input) || input.length === 0) {
    refuse('input', "'input' must be a string or a non-empty array of strings.");
  }
  if (!input.every((s) => typeof s === 'string')) {
    refuse('input', 'gemini channels embed text only, not token arrays.');
  }
  const model = modelResource(opts.upstreamModel);
  return {
    body: { requests: input.map((text) => ({ model, content: { parts: [{ text }] }, ...extra })) },
    texts: input,
  };
}

export function fromNativeEmbeddings(
  native: Json,
  opts: { model: string; encodingFormat?: unknown; texts: string[] },
): Json {
  const vectors = isObject(native['embedding']) ? [native['embedding']] : asArray(native['embeddings']);
  const base64 = opts.encodingFormat === 'base64';
  const data = vectors.map((v, index) => {
    const values = asArray(asObject(v)?.['values']).map(Number);
    return { object: 'embedding', index, embedding: base64 ? toBase64(values) : values };
  });
  const reported = asObject(native['usageMetadata'])?.['promptTokenCount'];
  const tokens =
    reported !== undefined
      ? count(reported)
      : opts.texts.reduce((sum, t) => sum + estimateTokens(t.length), 0);
  return { object: 'list', data, model: opts.model, usage: { prompt_tokens: tokens, total_tokens: tokens } };
}

/** As OpenAI's base64 encoding_format: little-endian float32s. */
function toBase64(values: number[]): string {
  const f = new Float32Array(values);
  return Buffer.from(f.buffer, f.byteOffset, f.byteLength).toString('base64');
}
