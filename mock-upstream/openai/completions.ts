// POST /v1/completions: a text_completion, streamed or not.
import type { ServerResponse } from 'node:http';
import type { MockRequest } from '../api.ts';
import { completionText, completionTokens, inputTokens, pieceJson } from '../content.ts';
import type { Json, MockHttp } from '../http.ts';
import { includeUsage } from './chat.ts';
import { ACCOUNT_HEADERS, badRequest } from './errors.ts';

export function completions(m: MockHttp, res: ServerResponse, r: MockRequest, model?: string) {
  const b = r.body as Json;
  if (b['prompt'] === undefined) return badRequest(m, res, "Missing required parameter: 'prompt'.");
  const name = model ?? (b['model'] as string);
  const promptTokens = inputTokens(b['prompt']);
  const n = completionTokens(b);
  const usage = { prompt_tokens: promptTokens, completion_tokens: n, total_tokens: promptTokens + n };
  const id = `cmpl-mock${m.nextId()}`;
  const created = m.nowSec();
  if (b['stream'] !== true) {
    const answer = {
      id,
      object: 'text_completion',
      created,
      model: name,
      choices: [{ text: completionText(n), index: 0, logprobs: null, finish_reason: 'stop' }],
      usage,
    };
    return m.sendJson(res, 200, JSON.stringify(answer), ACCOUNT_HEADERS);
  }
  const withUsage = includeUsage(b);
  const u = withUsage ? ',"usage":null' : '';
  const pre = `data: {"id":"${id}","object":"text_completion","created":${created},"model":${JSON.stringify(name)},"choices":`;
  let tail = `${pre}[{"text":"","index":0,"logprobs":null,"finish_reason":"stop"}]${u}}\n\n`;
  if (withUsage) tail += `${pre}[],"usage":${JSON.stringify(usage)}}\n\n`;
  tail += 'data: [DONE]\n\n';
  const piece = (i: number) =>
    `${pre}[{"text":${pieceJson(i)},"index":0,"logprobs":null,"finish_reason":null}]${u}}\n\n`;
  m.stream(res, '', n, piece, tail, r.faults, ACCOUNT_HEADERS);
}
