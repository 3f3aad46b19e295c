// POST /v1/embeddings: deterministic vectors (float or base64), usage in prompt tokens.
import type { ServerResponse } from 'node:http';
import type { MockRequest } from '../api.ts';
import {
  DEFAULT_EMBEDDING_DIMENSIONS,
  embeddingInputs,
  embeddingVector,
  inputTokens,
  MAX_EMBEDDING_DIMENSIONS,
  vectorBase64,
} from '../content.ts';
import type { Json, MockHttp } from '../http.ts';
import { ACCOUNT_HEADERS, badRequest } from './errors.ts';

export function embeddings(m: MockHttp, res: ServerResponse, r: MockRequest, model?: string) {
  const b = r.body as Json;
  const input = b['input'];
  if (input === undefined || input === null)
    return badRequest(m, res, "Missing required parameter: 'input'.");
  const dimsParam = b['dimensions'];
  let dims = DEFAULT_EMBEDDING_DIMENSIONS;
  if (dimsParam !== undefined) {
    if (
      typeof dimsParam !== 'number' ||
      !Number.isInteger(dimsParam) ||
      dimsParam < 1 ||
      dimsParam > MAX_EMBEDDING_DIMENSIONS
    ) {
      return badRequest(m, res, `'dimensions' must be an integer between 1 and ${MAX_EMBEDDING_DIMENSIONS}.`);
    }
    dims = dimsParam;
  }
  const base64 = b['encoding_format'] === 'base64';
  const data = embeddingInputs(input).map((item, index) => {
    const v = embeddingVector(item, dims);
    return { object: 'embedding', index, embedding: base64 ? vectorBase64(v) : Array.from(v) };
  });
  const tokens = inputTokens(input);
  const answer = {
    object: 'list',
    data,
    model: model ?? b['model'],
    usage: { prompt_tokens: tokens, total_tokens: tokens },
  };
  m.sendJson(res, 200, JSON.stringify(answer), ACCOUNT_HEADERS);
}
