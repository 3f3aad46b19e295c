// POST /v1/images/edits (multipart: `image` or `image[]` files, `prompt`, optional `mask`, `n`,
// `response_format`) and /v1/images/variations (`image`, `n`, `response_format`; dall-e-2).
// gpt-image-* answer b64_json with token usage (as OpenAI), dall-e-2 `url` unless asked for b64.
// `revised_prompt` names the image bytes' size and SHA-256, so a test sees what arrived.
import { createHash } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import { inputTokens, PNG_1X1_BASE64 } from '../content.ts';
import type { Json, MockHttp } from '../http.ts';
import type { MockForm } from '../multipart.ts';
import { ACCOUNT_HEADERS, badRequest } from './errors.ts';

function imageAnswer(m: MockHttp, res: ServerResponse, form: MockForm, model: string, prompt: string) {
  const images = form.files.filter((f) => f.name === 'image' || f.name === 'image[]');
  if (images.length === 0) return badRequest(m, res, "Missing required parameter: 'image'.");
  const n = form.fields.n === undefined ? 1 : Number(form.fields.n);
  if (!Number.isInteger(n) || n < 1 || n > 10)
    return badRequest(m, res, "'n' must be an integer between 1 and 10.");
  const gptImage = model.startsWith('gpt-image');
  const format = gptImage ? 'b64_json' : (form.fields.response_format ?? 'url');
  const bytes = Buffer.concat(images.map((f) => f.data));
  const sha = createHash('sha256').update(bytes).digest('hex');
  const revised = `${prompt} [${images.length} image(s), ${bytes.length} bytes, sha256 ${sha}, by ${model}]`;
  const item = format === 'url' ? { url: `${m.baseUrl()}/_mock/image.png` } : { b64_json: PNG_1X1_BASE64 };
  const out: Json = {
    created: m.nowSec(),
    data: Array.from({ length: n }, () => ({ ...item, revised_prompt: revised })),
  };
  if (gptImage) {
    const text = inputTokens(prompt);
    const image = 85 * images.length;
    out.usage = {
      input_tokens: text + image,
      output_tokens: 272 * n,
      total_tokens: text + image + 272 * n,
      input_tokens_details: { text_tokens: text, image_tokens: image },
    };
  }
  m.sendJson(res, 200, JSON.stringify(out), ACCOUNT_HEADERS);
}

export function imageEdits(m: MockHttp, res: ServerResponse, form: MockForm, deployment?: string) {
  const prompt = form.fields.prompt;
  if (typeof prompt !== 'string') return badRequest(m, res, "Missing required parameter: 'prompt'.");
  imageAnswer(m, res, form, deployment ?? form.fields.model ?? 'dall-e-2', prompt);
}

export function imageVariations(m: MockHttp, res: ServerResponse, form: MockForm, deployment?: string) {
  imageAnswer(m, res, form, deployment ?? form.fields.model ?? 'dall-e-2', 'variation');
}
