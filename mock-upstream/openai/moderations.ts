// POST /v1/moderations: `input` a string or an array of strings (or of text/image_url parts); one
// result per input, flagged for "violence" when its text names kill/attack (deterministic).
import type { ServerResponse } from 'node:http';
import type { MockRequest } from '../api.ts';
import type { Json, MockHttp } from '../http.ts';
import { ACCOUNT_HEADERS, badRequest } from './errors.ts';

const CATEGORIES = [
  'harassment',
  'harassment/threatening',
  'hate',
  'hate/threatening',
  'illicit',
  'illicit/violent',
  'self-harm',
  'self-harm/intent',
  'self-harm/instructions',
  'sexual',
  'sexual/minors',
  'violence',
  'violence/graphic',
];

const VIOLENT = /\b(kill|attack)\b/i;

function texts(input: unknown): string[] | undefined {
  if (typeof input === 'string') return [input];
  if (!Array.isArray(input) || input.length === 0) return undefined;
  const out: string[] = [];
  for (const item of input) {
    if (typeof item === 'string') out.push(item);
    else if (item && typeof item === 'object' && (item as Json).type === 'text')
      out.push(String((item as Json).text));
    else if (item && typeof item === 'object' && (item as Json).type === 'image_url') out.push('');
    else return undefined;
  }
  return out;
}

export function moderations(m: MockHttp, res: ServerResponse, r: MockRequest) {
  const b = r.body as Json;
  const inputs = texts(b['input']);
  if (!inputs) return badRequest(m, res, "Invalid value for 'input': expected a string or an array.");
  const results = inputs.map((t) => {
    const violent = VIOLENT.test(t);
    const categories = Object.fromEntries(CATEGORIES.map((c) => [c, violent && c === 'violence']));
    const scores = Object.fromEntries(
      CATEGORIES.map((c) => [c, violent && c === 'violence' ? 0.91 : 0.0001]),
    );
    const applied = Object.fromEntries(CATEGORIES.map((c) => [c, ['text']]));
    return { flagged: violent, categories, category_scores: scores, category_applied_input_types: applied };
  });
  const model = typeof b['model'] === 'string' ? b['model'] : 'omni-moderation-latest';
  const out = { id: `modr-mock-${m.nextId()}`, model, results };
  m.sendJson(res, 200, JSON.stringify(out), ACCOUNT_HEADERS);
}
