// The Responses API, as OpenAI (under /v1) and Azure OpenAI (/openai/v1/..., or /openai/responses
// with a dated api-version) serve it: POST /responses (JSON, or the documented stream events),
// GET and DELETE /responses/{id}, GET /responses/{id}/input_items, POST /responses/{id}/cancel.
// Stored responses live in this mock instance (store: false is not kept); background: true answers
// `queued` and stays `in_progress` until cancelled. Shapes follow OpenAI's API reference examples.
// Deterministic usage: a word is a token; `prompt_cache_key` makes half the input cached, and
// `reasoning.effort` adds 2 reasoning tokens (counted in output_tokens), so billing of both shows.
import { randomBytes } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import type { MockApi, MockHandler, MockRequest } from '../api.ts';
import { completionText, completionTokens, countWords, pieceJson } from '../content.ts';
import { isObject, type Json, type MockHttp } from '../http.ts';
import { ACCOUNT_HEADERS, checkJsonBody, sendOpenAIError, statusError } from './errors.ts';

const hex = () => randomBytes(24).toString('hex');

const PATH = /^\/(?:v1|openai\/v1|openai)\/responses(?:\/([^/]+)(\/input_items|\/cancel)?)?$/;

interface Stored {
  response: Json;
  items: Json[];
}

function inputItems(b: Json): Json[] {
  const input = b.input;
  const items =
    typeof input === 'string'
      ? [{ type: 'message', role: 'user', content: input }]
      : Array.isArray(input)
        ? input
        : [];
  return items.filter(isObject).map((it) => {
    const content = typeof it.content === 'string' ? [{ type: 'input_text', text: it.content }] : it.content;
    const type = it.type ?? 'message';
    return type === 'message'
      ? { id: `msg_${hex()}`, type, role: it.role, status: 'completed', content }
      : { id: `item_${hex()}`, ...it };
  });
}

function words(v: unknown): number {
  if (typeof v === 'string') return countWords(v);
  if (Array.isArray(v)) return v.reduce((n: number, x) => n + words(x), 0);
  if (isObject(v)) return words(v.text ?? v.content ?? v.output ?? '');
  return 0;
}

function argsFor(schema: unknown): string {
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
  return JSON.stringify(out);
}

/** The function tool a forced tool_choice names (or the first one for `required`). */
function forcedTool(b: Json): Json | undefined {
  const tools = Array.isArray(b.tools) ? b.tools.filter(isObject) : [];
  const choice = b.tool_choice;
  if (choice === 'required') return tools.find((t) => t.type === 'function');
  if (isObject(choice) && choice.type === 'function') return tools.find((t) => t.name === choice.name);
  return undefined;
}

export function responsesApi(): MockApi {
  const store = new Map<string, Stored>();

  const notFound = (m: MockHttp, res: ServerResponse, id: string) =>
    sendOpenAIError(m, res, 404, `Response with id '${id}' not found.`, 'invalid_request_error', null);

  const create: MockHandler = (m, res, r) => {
    if (!checkJsonBody(m, res, r.body, r.badJson)) return;
    const b = r.body as Json;
    if (typeof b.model !== 'string') {
      return sendOpenAIError(
        m,
        res,
        400,
        'Missing required parameter: model.',
        'invalid_request_error',
        'missing_required_parameter',
      );
    }
    if (/^\/openai\/responses$/.test(r.path) && !r.query.get('api-version')) {
      return sendOpenAIError(m, res, 404, 'Resource not found', 'invalid_request_error', '404');
    }
    const prev = b.previous_response_id;
    if (typeof prev === 'string' && !store.has(prev)) {
      return sendOpenAIError(
        m,
        res,
        400,
        `Previous response with id '${prev}' not found.`,
        'invalid_request_error',
        'previous_response_not_found',
      );
    }
    const items = inputItems(b);
    const input = Math.max(1, words(b.input) + words(b.instructions));
    const reasoning = isObject(b.reasoning) && b.reasoning.effort != null ? 2 : 0;
    const tool = forcedTool(b);
    const n = completionTokens({ max_tokens: b.max_output_tokens });
    const id = `resp_${hex()}`;
    const usage = {
      input_tokens: input,
      input_tokens_details: { cached_tokens: b.prompt_cache_key != null ? Math.floor(input / 2) : 0 },
      output_tokens: n + reasoning,
      output_tokens_details: { reasoning_tokens: reasoning },
      total_tokens: input + n + reasoning,
    };
    const itemIdOf = tool ? `fc_${hex()}` : `msg_${hex()}`;
    const args = tool ? argsFor(tool.parameters) : '';
    const pieces = tool
      ? [args.slice(0, Math.ceil(args.length / 2)), args.slice(Math.ceil(args.length / 2))]
      : undefined;
    const doneItem = tool
      ? {
          id: itemIdOf,
          type: 'function_call',
          status: 'completed',
          arguments: args,
          call_id: `call_${hex().slice(0, 24)}`,
          name: tool.name,
        }
      : {
          id: itemIdOf,
          type: 'message',
          status: 'completed',
          role: 'assistant',
          content: [{ type: 'output_text', text: completionText(n), annotations: [], logprobs: [] }],
        };
    const base: Json = {
      id,
      object: 'response',
      created_at: m.nowSec(),
      status: 'completed',
      background: b.background === true,
      error: null,
      incomplete_details: null,
      instructions: b.instructions ?? null,
      max_output_tokens: b.max_output_tokens ?? null,
      model: b.model,
      output: [doneItem],
      parallel_tool_calls: b.parallel_tool_calls ?? true,
      previous_response_id: prev ?? null,
      reasoning: { effort: isObject(b.reasoning) ? (b.reasoning.effort ?? null) : null, summary: null },
      store: b.store !== false,
      temperature: b.temperature ?? 1,
      text: { format: { type: 'text' } },
      tool_choice: b.tool_choice ?? 'auto',
      tools: b.tools ?? [],
      top_p: b.top_p ?? 1,
      truncation: 'disabled',
      usage,
      user: b.user ?? null,
      metadata: b.metadata ?? {},
    };
    if (b.background === true) {
      const queued = { ...base, status: 'queued', output: [], usage: null };
      store.set(id, { response: { ...queued, status: 'in_progress' }, items });
      return m.sendJson(res, 200, JSON.stringify(queued), ACCOUNT_HEADERS);
    }
    if (b.store !== false) store.set(id, { response: base, items });
    if (b.stream !== true) return m.sendJson(res, 200, JSON.stringify(base), ACCOUNT_HEADERS);

    let seq = 0;
    const ev = (type: string, fields: Json) =>
      `event: ${type}\ndata: ${JSON.stringify({ type, sequence_number: seq++, ...fields })}\n\n`;
    const inProgress = { ...base, status: 'in_progress', output: [], usage: null };
    const at = { item_id: itemIdOf, output_index: 0 };
    let head =
      ev('response.created', { response: inProgress }) + ev('response.in_progress', { response: inProgress });
    const addedItem = tool
      ? { ...doneItem, status: 'in_progress', arguments: '' }
      : { ...doneItem, status: 'in_progress', content: [] };
    head += ev('response.output_item.added', { output_index: 0, item: addedItem });
    if (!tool) {
      head += ev('response.content_part.added', {
        ...at,
        content_index: 0,
        part: { type: 'output_text', text: '', annotations: [], logprobs: [] },
      });
    }
    // The sequence numbers of the pieces and the tail are fixed once the head is written.
    const count = pieces ? pieces.length : n;
    const first = seq;
    seq += count;
    const piece = (i: number) => {
      const delta = pieces ? JSON.stringify(pieces[i]) : pieceJson(i);
      const type = tool ? 'response.function_call_arguments.delta' : 'response.output_text.delta';
      const extra = tool ? '' : ',"content_index":0,"logprobs":[]';
      return `event: ${type}\ndata: {"type":"${type}","sequence_number":${first + i},"item_id":"${itemIdOf}","output_index":0${extra},"delta":${delta}}\n\n`;
    };
    let tail = tool
      ? ev('response.function_call_arguments.done', { ...at, name: tool.name, arguments: args })
      : ev('response.output_text.done', { ...at, content_index: 0, text: completionText(n), logprobs: [] }) +
        ev('response.content_part.done', {
          ...at,
          content_index: 0,
          part: (doneItem as { content: Json[] }).content[0],
        });
    tail += ev('response.output_item.done', { output_index: 0, item: doneItem });
    tail += ev('response.completed', { response: base });
    m.stream(res, head, count, piece, tail, r.faults, ACCOUNT_HEADERS);
  };

  const onId: MockHandler = (m, res, r) => {
    const [, rawId, sub] = PATH.exec(r.path)!;
    const id = decodeURIComponent(rawId!);
    const s = store.get(id);
    if (!s) return notFound(m, res, id);
    const method = r.req.method;
    if (sub === '/input_items') {
      const data = r.query.get('order') === 'asc' ? s.items : [...s.items].reverse();
      const body = {
        object: 'list',
        data,
        first_id: data[0]?.id ?? null,
        last_id: data.at(-1)?.id ?? null,
        has_more: false,
      };
      return m.sendJson(res, 200, JSON.stringify(body), ACCOUNT_HEADERS);
    }
    if (sub === '/cancel') {
      if (s.response.background !== true) {
        return sendOpenAIError(
          m,
          res,
          400,
          'Only responses created with background=true can be cancelled.',
          'invalid_request_error',
          null,
        );
      }
      s.response = { ...s.response, status: 'cancelled' };
    } else if (method === 'DELETE') {
      store.delete(id);
      return m.sendJson(res, 200, JSON.stringify({ id, object: 'response', deleted: true }), ACCOUNT_HEADERS);
    }
    m.sendJson(res, 200, JSON.stringify(s.response), ACCOUNT_HEADERS);
  };

  const isAzure = (r: MockRequest) => r.path.startsWith('/openai/');
  return {
    name: 'openai-responses',
    owns: (path) => PATH.test(path),
    match(method, path) {
      const p = PATH.exec(path);
      if (!p) return undefined;
      if (p[1] === undefined) return method === 'POST' ? create : undefined;
      if (p[2] === '/cancel') return method === 'POST' ? onId : undefined;
      if (p[2] === '/input_items') return method === 'GET' ? onId : undefined;
      return method === 'GET' || method === 'DELETE' ? onId : undefined;
    },
    authorized: (r, apiKey) =>
      isAzure(r) ? r.req.headers['api-key'] === apiKey : r.req.headers.authorization === `Bearer ${apiKey}`,
    sendError(m, res, status, message, opts) {
      const [fallback, type, code] = statusError(status);
      sendOpenAIError(m, res, status, message ?? fallback, type, opts?.code ?? code, opts?.headers);
    },
  };
}
