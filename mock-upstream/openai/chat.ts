// POST /v1/chat/completions: a chat.completion, or chat.completion.chunk events as OpenAI streams them.
import type { ServerResponse } from 'node:http';
import type { MockRequest } from '../api.ts';
import { chatPromptTokens, completionText, completionTokens, pieceJson } from '../content.ts';
import { isObject, type Json, type MockHttp } from '../http.ts';
import { ACCOUNT_HEADERS, badRequest } from './errors.ts';
import { forcedFunction, toolCallAnswer } from './tool-calls.ts';

export function includeUsage(b: Json): boolean {
  const so = b['stream_options'];
  return isObject(so) && so['include_usage'] === true;
}

export function chatCompletions(m: MockHttp, res: ServerResponse, r: MockRequest, model?: string) {
  const b = r.body as Json;
  if (!Array.isArray(b['messages'])) return badRequest(m, res, "Missing required parameter: 'messages'.");
  const name = model ?? (b['model'] as string);
  const promptTokens = chatPromptTokens(b['messages']);
  const n = completionTokens(b);
  const usage = { prompt_tokens: promptTokens, completion_tokens: n, total_tokens: promptTokens + n };
  const id = `chatcmpl-mock${m.nextId()}`;
  const created = m.nowSec();
  const fn = forcedFunction(b);
  if (fn) return toolCallAnswer(m, res, b, fn, { id, created, model: name, promptTokens, faults: r.faults });
  if (b['stream'] !== true) {
    const answer = {
      id,
      object: 'chat.completion',
      created,
      model: name,
      choices: [
        {
          index: 0,
          message: { role: 'assistant', content: completionText(n), refusal: null },
          logprobs: null,
          finish_reason: 'stop',
        },
      ],
      usage,
      system_fingerprint: null,
    };
    return m.sendJson(res, 200, JSON.stringify(answer), ACCOUNT_HEADERS);
  }
  const withUsage = includeUsage(b);
  const u = withUsage ? ',"usage":null' : ''; // as OpenAI: every chunk carries usage:null then
  const pre = `data: {"id":"${id}","object":"chat.completion.chunk","created":${created},"model":${JSON.stringify(name)},"system_fingerprint":null,"choices":`;
  const post = `,"logprobs":null,"finish_reason":null}]${u}}\n\n`;
  const head = `${pre}[{"index":0,"delta":{"role":"assistant","content":"","refusal":null}${post}`;
  let tail = `${pre}[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}]${u}}\n\n`;
  if (withUsage) tail += `${pre}[],"usage":${JSON.stringify(usage)}}\n\n`;
  tail += 'data: [DONE]\n\n';
  if (r.faults?.streamEventBytes !== undefined) {
    return m.bigEvent(res, head, `${pre}[{"index":0,"delta":{"content":"`, r.faults.streamEventBytes);
  }
  const piece = (i: number) => `${pre}[{"index":0,"delta":{"content":${pieceJson(i)}}${post}`;
  m.stream(res, head, n, piece, tail, r.faults, ACCOUNT_HEADERS);
}
