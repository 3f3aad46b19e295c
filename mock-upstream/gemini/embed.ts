// embedContent and batchEmbedContents for the mock: deterministic unit vectors (content.ts).
import { DEFAULT_EMBEDDING_DIMENSIONS, embeddingVector, MAX_EMBEDDING_DIMENSIONS } from '../content.ts';

type Json = Record<string, unknown>;

const obj = (v: unknown): Json | undefined =>
  typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Json) : undefined;

/** One EmbedContentRequest -> its embedding, or a 400 message. */
function embedOne(r: Json | undefined, at: string): Json | string {
  const parts = obj(r?.['content'])?.['parts'];
  if (!Array.isArray(parts) || parts.length === 0) return `* ${at}content: contents is not specified`;
  const text = parts.map((p) => String(obj(p)?.['text'] ?? '')).join('');
  const d = r?.['outputDimensionality'];
  if (
    d !== undefined &&
    (typeof d !== 'number' || !Number.isInteger(d) || d < 1 || d > MAX_EMBEDDING_DIMENSIONS)
  ) {
    return `* ${at}output_dimensionality: must be between 1 and ${MAX_EMBEDDING_DIMENSIONS}`;
  }
  const dims = typeof d === 'number' ? d : DEFAULT_EMBEDDING_DIMENSIONS;
  return { values: Array.from(embeddingVector(text, dims)) };
}

export function embedContent(b: Json): string | { error: string } {
  const e = embedOne(b, 'EmbedContentRequest.');
  return typeof e === 'string' ? { error: e } : JSON.stringify({ embedding: e });
}

export function batchEmbedContents(b: Json, model: string): string | { error: string } {
  const requests = b['requests'];
  if (!Array.isArray(requests) || requests.length === 0) {
    return { error: '* BatchEmbedContentsRequest.requests: requests is not specified' };
  }
  const embeddings: Json[] = [];
  for (const [i, r] of requests.entries()) {
    // As Gemini: every request names the model of the URL.
    if (obj(r)?.['model'] !== `models/${model}`) {
      return {
        error: `* BatchEmbedContentsRequest.requests[${i}].model: model must match the URL (models/${model})`,
      };
    }
    const e = embedOne(obj(r), `BatchEmbedContentsRequest.requests[${i}].`);
    if (typeof e === 'string') return { error: e };
    embeddings.push(e);
  }
  return JSON.stringify({ embeddings });
}
