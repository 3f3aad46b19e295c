// POST /v1/messages: a Message, or its SSE events as documented
// (https://docs.anthropic.com/en/docs/build-with-claude/streaming): message_start, content_block_start,
// ping, content_block_delta (text_delta / input_json_delta), content_block_stop, message_delta,
// message_stop. Deterministic content (content.ts's words); a forced tool choice (`any`, `tool`)
// answers with a tool_use block whose input follows the tool's schema; `stop_sequences` cut the text
// where one occurs; `max_tokens` below the answer's length ends it with `max_tokens`. Prompt caching:
// the blocks up to the last `cache_control` are written to the cache the first time
// (`cache_creation_input_tokens`) and read from it after (`cache_read_input_tokens`).
import type { ServerResponse } from 'node:http';
import type { MockRequest } from '../api.ts';
import { completionText, countWords, DEFAULT_COMPLETION_TOKENS } from '../content.ts';
import { isObject, type Json, type MockHttp } from '../http.ts';
import { sendAnthropicError } from './errors.ts';

/** Cached prompt prefixes of one mock instance (bounded: the oldest is forgotten). */
export class PromptCache {
  readonly #seen = new Set<string>();
  /** True when `key` was cached before; caches it either way. */
  hit(key: string): boolean {
    if (this.#seen.has(key)) return true;
    if (this.#seen.size >= 1000) this.#seen.delete(this.#seen.values().next().value as string);
    this.#seen.add(key);
    return false;
  }
}

const blocksOf = (content: unknown): Json[] =>
  typeof content === 'string' ? [{ type: 'text', text: content }] : Array.isArray(content) ? content : [];

function blockWords(b: Json): number {
  if (typeof b.text === 'string') return countWords(b.text);
  if (b.type === 'tool_result') return blocksOf(b.content).reduce((n, c) => n + blockWords(c), 0);
  if (b.type === 'tool_use') return countWords(JSON.stringify(b.input ?? {}));
  return 1; // an image or document: one token, whatever its size
}

/** Input tokens, split as Anthropic reports them: uncached, written to the cache, read from it. */
function promptUsage(b: Json, cache: PromptCache) {
  const blocks = [...blocksOf(b.system), ...(b.messages as Json[]).flatMap((m) => blocksOf(m.content))];
  const words = blocks.map(blockWords);
  const total = Math.max(
    words.reduce((a, n) => a + n, 0),
    1,
  );
  const last = blocks.findLastIndex((x) => isObject(x.cache_control));
  if (last < 0) return { input_tokens: total, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 };
  const prefix = words.slice(0, last + 1).reduce((a, n) => a + n, 0);
  const hit = cache.hit(JSON.stringify(blocks.slice(0, last + 1)));
  return {
    input_tokens: total - prefix,
    cache_creation_input_tokens: hit ? 0 : prefix,
    cache_read_input_tokens: hit ? prefix : 0,
  };
}

function invalid(b: Json): string | undefined {
  if (typeof b.model !== 'string') return 'model: Field required';
  if (typeof b.max_tokens !== 'number' || !Number.isInteger(b.max_tokens) || b.max_tokens < 1)
    return 'max_tokens: Field required';
  if (!Array.isArray(b.messages) || b.messages.length === 0) return 'messages: Field required';
  for (const [i, m] of (b.messages as unknown[]).entries()) {
    if (!isObject(m) || (m.role !== 'user' && m.role !== 'assistant'))
      return `messages.${i}.role: Input should be 'user' or 'assistant'`;
  }
  if (b.temperature !== undefined && (typeof b.temperature !== 'number' || b.temperature > 1))
    return 'temperature: Input should be less than or equal to 1';
  return undefined;
}

/** The tool a forced tool choice names (or the first tool for `any`). */
function forcedTool(b: Json): Json | undefined {
  const tools = Array.isArray(b.tools) ? (b.tools as Json[]) : [];
  const choice = isObject(b.tool_choice) ? b.tool_choice : undefined;
  if (tools.length === 0 || !choice) return undefined;
  if (choice.type === 'any') return tools[0];
  if (choice.type === 'tool') return tools.find((t) => t.name === choice.name);
  return undefined;
}

/** Input that fits the schema: enum's first value, "mock" for strings, 1, true. */
export function inputFor(schema: unknown): Json {
  const props = isObject(schema) && isObject(schema.properties) ? schema.properties : {};
  const out: Json = {};
  for (const [k, p] of Object.entries(props)) {
    const s = isObject(p) ? p : {};
    out[k] = Array.isArray(s.enum)
      ? s.enum[0]
      : s.type === 'number' || s.type === 'integer'
        ? 1
        : s.type === 'boolean'
          ? true
          : 'mock';
  }
  return out;
}

interface Answer {
  block: Json;
  /** Streamed delta pieces (text words, or partial JSON of the tool input). */
  pieces: string[];
  stopReason: string;
  stopSequence: string | null;
}

function answer(b: Json): Answer {
  const tool = forcedTool(b);
  if (tool) {
    const input = inputFor(tool.input_schema);
    const json = JSON.stringify(input);
    const pieces = json.match(/.{1,12}/gs) ?? [json];
    const block = { type: 'tool_use', id: `toolu_mock${json.length}`, name: tool.name, input };
    return { block, pieces, stopReason: 'tool_use', stopSequence: null };
  }
  const max = b.max_tokens as number;
  let text = completionText(Math.min(max, DEFAULT_COMPLETION_TOKENS));
  let stopReason = max < DEFAULT_COMPLETION_TOKENS ? 'max_tokens' : 'end_turn';
  let stopSequence: string | null = null;
  for (const s of Array.isArray(b.stop_sequences) ? (b.stop_sequences as string[]) : []) {
    const at = text.indexOf(s);
    if (s !== '' && at >= 0) {
      text = text.slice(0, at);
      stopReason = 'stop_sequence';
      stopSequence = s;
    }
  }
  return { block: { type: 'text', text }, pieces: text.match(/\s*\S+/g) ?? [], stopReason, stopSequence };
}

const event = (name: string, data: Json) =>
  `event: ${name}\ndata: ${JSON.stringify({ type: name, ...data })}\n\n`;

export function messages(m: MockHttp, res: ServerResponse, r: MockRequest, cache: PromptCache) {
  const b = r.body as Json;
  const problem = invalid(b);
  if (problem) return sendAnthropicError(m, res, 400, problem);
  const id = `msg_mock${m.nextId()}`;
  const usage = promptUsage(b, cache);
  const a = answer(b);
  const headers = { 'request-id': `req_mock${m.nextId()}` };
  if (b.stream !== true) {
    const message = {
      id,
      type: 'message',
      role: 'assistant',
      model: b.model,
      content: [a.block],
      stop_reason: a.stopReason,
      stop_sequence: a.stopSequence,
      usage: { ...usage, output_tokens: a.pieces.length },
    };
    return m.sendJson(res, 200, JSON.stringify(message), headers);
  }
  const start = {
    id,
    type: 'message',
    role: 'assistant',
    model: b.model,
    content: [],
    stop_reason: null,
    stop_sequence: null,
    usage: { ...usage, output_tokens: 1 },
  };
  const tool = a.block.type === 'tool_use';
  const head =
    event('message_start', { message: start }) +
    event('content_block_start', {
      index: 0,
      content_block: tool ? { ...a.block, input: {} } : { type: 'text', text: '' },
    }) +
    event('ping', {});
  const delta = (p: string) =>
    tool ? { type: 'input_json_delta', partial_json: p } : { type: 'text_delta', text: p };
  const piece = (i: number) => event('content_block_delta', { index: 0, delta: delta(a.pieces[i]!) });
  const tail =
    event('content_block_stop', { index: 0 }) +
    event('message_delta', {
      delta: { stop_reason: a.stopReason, stop_sequence: a.stopSequence },
      usage: { output_tokens: a.pieces.length },
    }) +
    event('message_stop', {});
  if (r.faults?.streamEventBytes !== undefined) {
    const open =
      'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"';
    return m.bigEvent(res, head, open, r.faults.streamEventBytes);
  }
  m.stream(res, head, a.pieces.length, piece, tail, r.faults, headers);
}

/** POST /v1/messages/count_tokens: `{"input_tokens": N}` over system, messages and tools. */
export function countTokens(m: MockHttp, res: ServerResponse, r: MockRequest) {
  const b = r.body as Json;
  if (typeof b.model !== 'string' || !Array.isArray(b.messages))
    return sendAnthropicError(m, res, 400, 'messages: Field required');
  const u = promptUsage(b, new PromptCache());
  // Tool definitions count as Anthropic counts them: part of the prompt.
  const tools = Array.isArray(b.tools) ? countWords(JSON.stringify(b.tools)) : 0;
  m.sendJson(
    res,
    200,
    JSON.stringify({ input_tokens: u.input_tokens + u.cache_creation_input_tokens + tools }),
  );
}
