// Tool calls in chat completions, as OpenAI answers a forced tool choice (`tool_choice: "required"`
// or a named function): one call whose arguments follow the tool's JSON schema, finish reason
// `tool_calls`; streamed as OpenAI streams it (the call's id and name first, then argument pieces).
import type { ServerResponse } from 'node:http';
import { inputFor } from '../anthropic/messages.ts';
import type { MockFaults } from '../faults.ts';
import { isObject, type Json, type MockHttp } from '../http.ts';
import { ACCOUNT_HEADERS } from './errors.ts';

/** The function a forced tool choice names (the first tool for "required"), or undefined. */
export function forcedFunction(b: Json): { name: string; parameters: unknown } | undefined {
  const tools = Array.isArray(b.tools) ? (b.tools as Json[]) : [];
  const fns = tools
    .filter((t) => t.type === 'function' && isObject(t.function))
    .map((t) => t.function as Json);
  const choice = b.tool_choice;
  const fn =
    choice === 'required'
      ? fns[0]
      : isObject(choice) && isObject(choice.function)
        ? fns.find((f) => f.name === (choice.function as Json).name)
        : undefined;
  return fn && typeof fn.name === 'string' ? { name: fn.name, parameters: fn.parameters } : undefined;
}

export function toolCallAnswer(
  m: MockHttp,
  res: ServerResponse,
  b: Json,
  fn: { name: string; parameters: unknown },
  opts: { id: string; created: number; model: string; promptTokens: number; faults: MockFaults | undefined },
) {
  const args = JSON.stringify(inputFor(fn.parameters));
  const pieces = args.match(/.{1,12}/gs) ?? [args];
  const callId = `call_mock${args.length}`;
  const usage = { prompt_tokens: opts.promptTokens, completion_tokens: pieces.length };
  const total = { ...usage, total_tokens: usage.prompt_tokens + usage.completion_tokens };
  const head = { id: opts.id, created: opts.created, model: opts.model };
  if (b.stream !== true) {
    const call = { id: callId, type: 'function', function: { name: fn.name, arguments: args } };
    const message = { role: 'assistant', content: null, tool_calls: [call], refusal: null };
    const answer = {
      ...head,
      object: 'chat.completion',
      choices: [{ index: 0, message, logprobs: null, finish_reason: 'tool_calls' }],
      usage: total,
    };
    return m.sendJson(res, 200, JSON.stringify(answer), ACCOUNT_HEADERS);
  }
  const so = b.stream_options;
  const withUsage = isObject(so) && so.include_usage === true;
  const chunk = (delta: Json, finish: string | null = null) =>
    `data: ${JSON.stringify({ ...head, object: 'chat.completion.chunk', choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }] })}\n\n`;
  const first = { index: 0, id: callId, type: 'function', function: { name: fn.name, arguments: '' } };
  const start = chunk({ role: 'assistant', content: null, tool_calls: [first] });
  const piece = (i: number) => chunk({ tool_calls: [{ index: 0, function: { arguments: pieces[i] } }] });
  let tail = chunk({}, 'tool_calls');
  if (withUsage)
    tail += `data: ${JSON.stringify({ ...head, object: 'chat.completion.chunk', choices: [], usage: total })}\n\n`;
  m.stream(res, start, pieces.length, piece, `${tail}data: [DONE]\n\n`, opts.faults, ACCOUNT_HEADERS);
}
