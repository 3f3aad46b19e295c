// POST /v1/images/generations: `url` (dall-e-*) or `b64_json` (gpt-image-*, with token usage).
import type { ServerResponse } from 'node:http';
import type { MockRequest } from '../api.ts';
import { inputTokens, PNG_1X1_BASE64 } from '../content.ts';
import type { Json, MockHttp } from '../http.ts';
import { ACCOUNT_HEADERS, badRequest } from './errors.ts';

const MAX_IMAGES = 10;

export function images(m: MockHttp, res: ServerResponse, r: MockRequest, deployment?: string) {
  const b = r.body as Json;
  const prompt = b['prompt'];
  if (typeof prompt !== 'string') return badRequest(m, res, "Missing required parameter: 'prompt'.");
  const model = deployment ?? (typeof b['model'] === 'string' ? b['model'] : 'dall-e-2');
  const nParam = b['n'];
  let n = 1;
  if (nParam !== undefined && nParam !== null) {
    if (typeof nParam !== 'number' || !Number.isInteger(nParam) || nParam < 1 || nParam > MAX_IMAGES) {
      return badRequest(m, res, `'n' must be an integer between 1 and ${MAX_IMAGES}.`);
    }
    n = nParam;
  }
  // As OpenAI: dall-e-* default to `url`, gpt-image-* always return b64_json.
  const format = b['response_format'] ?? (model.startsWith('dall-e') ? 'url' : 'b64_json');
  const item = format === 'url' ? { url: `${m.baseUrl()}/_mock/image.png` } : { b64_json: PNG_1X1_BASE64 };
  const out: Json = { created: m.nowSec(), data: Array.from({ length: n }, () => item) };
  if (model.startsWith('gpt-image')) {
    const input = inputTokens(prompt);
    const output = 272 * n;
    out['usage'] = {
      input_tokens: input,
      output_tokens: output,
      total_tokens: input + output,
      input_tokens_details: { text_tokens: input, image_tokens: 0 },
    };
  }
  m.sendJson(res, 200, JSON.stringify(out), ACCOUNT_HEADERS);
}
