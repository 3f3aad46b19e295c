// Chat completions request -> Anthropic Messages request (https://docs.anthropic.com/en/api/messages).
// Lossless where Messages can say the same thing; a field it cannot say is refused (UntranslatableError,
// naming the field), never dropped. The table of what is refused is in README.md ("Providers").
import { UntranslatableError } from '../contract.ts';

type Json = Record<string, unknown>;

/** Messages requires max_tokens; OpenAI does not. The Messages API reference's own example value. */
export const DEFAULT_MAX_TOKENS = 4096;

const isObj = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Fields that only carry their default (or nothing) pass; anything else is refused by name. */
const DEFAULT_ONLY: Record<string, (v: unknown) => boolean> = {
  n: (v) => v === 1,
  logprobs: (v) => v === false,
  presence_penalty: (v) => v === 0,
  frequency_penalty: (v) => v === 0,
  logit_bias: (v) => isObj(v) && Object.keys(v).length === 0,
  response_format: (v) => isObj(v) && v.type === 'text',
  modalities: (v) => Array.isArray(v) && v.length === 1 && v[0] === 'text',
  store: (v) => v === false,
  stream_options: (v) => isObj(v) && Object.keys(v).every((k) => k === 'include_usage'),
  service_tier: (v) => v === 'auto',
  metadata: (v) => isObj(v) && Object.keys(v).length === 0,
};

const WHY: Record<string, string> = {
  n: 'the Messages API returns one choice per request (n must be 1)',
  logprobs: 'the Messages API returns no log probabilities',
  top_logprobs: 'the Messages API returns no log probabilities',
  response_format: 'the Messages API has no JSON mode or JSON schema output (use a tool instead)',
  seed: 'the Messages API has no seed',
  audio: 'the Messages API has no audio output',
  prediction: 'the Messages API has no predicted outputs',
  reasoning_effort: 'extended thinking is not translated from chat completions',
  web_search_options: 'web search is not translated from chat completions',
  functions: 'the deprecated `functions` field is not translated (use `tools`)',
  function_call: 'the deprecated `function_call` field is not translated (use `tool_choice`)',
};

/** Fields translated below (or used by the relay itself, like `stream_options.include_usage`). */
const HANDLED = new Set([
  'model',
  'messages',
  'max_tokens',
  'max_completion_tokens',
  'temperature',
  'top_p',
  'stop',
  'stream',
  'tools',
  'tool_choice',
  'parallel_tool_calls',
  'user',
]);

function refuse(param: string, why?: string): never {
  throw new UntranslatableError(
    param,
    `${param} is not supported by the anthropic provider: ${why ?? WHY[param] ?? 'the Messages API has no such parameter'}`,
  );
}

/** The Messages request body for a chat completions body. Throws UntranslatableError. */
export function toNativeChat(body: Json, opts: { upstreamModel: string }): Json {
  for (const [k, v] of Object.entries(body)) {
    if (v === undefined || v === null || HANDLED.has(k)) continue;
    const ok = DEFAULT_ONLY[k];
    if (!ok?.(v)) refuse(k);
  }
  const out: Json = { model: opts.upstreamModel };
  const { system, messages } = translateMessages(body.messages);
  if (system.length > 0) out.system = system;
  out.messages = messages;
  out.max_tokens = maxTokens(body);
  if (body.temperature != null) {
    const t = body.temperature;
    if (typeof t !== 'number' || t < 0 || t > 1)
      refuse('temperature', 'the Messages API takes a temperature from 0 to 1');
    out.temperature = t;
  }
  if (body.top_p != null) out.top_p = body.top_p;
  if (body.stop != null) out.stop_sequences = stopSequences(body.stop);
  if (body.stream === true) out.stream = true;
  if (body.user != null) out.metadata = { user_id: body.user };
  if (body.tools != null) out.tools = tools(body.tools);
  const choice = toolChoice(body.tool_choice, body.parallel_tool_calls);
  if (choice) out.tool_choice = choice;
  return out;
}

function maxTokens(body: Json): number {
  const v = body.max_completion_tokens ?? body.max_tokens;
  if (v == null) return DEFAULT_MAX_TOKENS;
  const param = body.max_completion_tokens != null ? 'max_completion_tokens' : 'max_tokens';
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1)
    throw new UntranslatableError(param, `${param} must be a positive integer`);
  return v;
}

function stopSequences(stop: unknown): string[] {
  const list = typeof stop === 'string' ? [stop] : stop;
  if (!Array.isArray(list) || !list.every((s) => typeof s === 'string'))
    throw new UntranslatableError('stop', 'stop must be a string or an array of strings');
  return list;
}

function tools(list: unknown): Json[] {
  if (!Array.isArray(list)) throw new UntranslatableError('tools', 'tools must be an array');
  return list.map((t, i) => {
    const at = `tools[${i}]`;
    if (!isObj(t) || t.type !== 'function' || !isObj(t.function))
      refuse(`${at}.type`, 'only function tools can be translated');
    const f = t.function;
    if (typeof f.name !== 'string')
      throw new UntranslatableError(`${at}.function.name`, 'a tool needs a name');
    if (f.strict === true) refuse(`${at}.function.strict`, 'strict tool schemas are not translated');
    const tool: Json = { name: f.name };
    if (typeof f.description === 'string') tool.description = f.description;
    tool.input_schema = isObj(f.parameters) ? f.parameters : { type: 'object', properties: {} };
    return tool;
  });
}

function toolChoice(choice: unknown, parallel: unknown): Json | undefined {
  let out: Json | undefined;
  if (choice === 'auto') out = { type: 'auto' };
  else if (choice === 'none') out = { type: 'none' };
  else if (choice === 'required') out = { type: 'any' };
  else if (isObj(choice) && choice.type === 'function' && isObj(choice.function))
    out = { type: 'tool', name: choice.function.name };
  else if (choice != null) refuse('tool_choice', 'it must be auto, none, required or a function');
  if (parallel === false && out?.type !== 'none') {
    out = { ...(out ?? { type: 'auto' }), disable_parallel_tool_use: true };
  }
  return out;
}

interface Turn {
  role: 'user' | 'assistant';
  content: Json[];
}

/**
 * System and developer messages become `system` (in order, wherever they stood: Messages has one
 * system prompt); tool results become `tool_result` blocks in a user turn; consecutive turns of one
 * role are merged (Messages alternates user and assistant).
 */
function translateMessages(list: unknown): { system: Json[]; messages: Turn[] } {
  if (!Array.isArray(list) || list.length === 0)
    throw new UntranslatableError('messages', 'messages must be a non-empty array');
  const system: Json[] = [];
  const turns: Turn[] = [];
  const add = (role: Turn['role'], blocks: Json[]) => {
    if (blocks.length === 0) return; // an assistant turn that said "": Messages refuses empty content
    const last = turns[turns.length - 1];
    if (last?.role === role) last.content.push(...blocks);
    else turns.push({ role, content: blocks });
  };
  list.forEach((m, i) => {
    const at = `messages[${i}]`;
    if (!isObj(m)) throw new UntranslatableError(at, 'a message must be an object');
    if (m.name != null) refuse(`${at}.name`, 'Messages has no participant names');
    switch (m.role) {
      case 'system':
      case 'developer':
        system.push(...textBlocks(m.content, `${at}.content`));
        return;
      case 'user':
        add('user', userBlocks(m.content, `${at}.content`));
        return;
      case 'assistant':
        add('assistant', assistantBlocks(m, at));
        return;
      case 'tool':
        add('user', [toolResult(m, at)]);
        return;
      default:
        refuse(`${at}.role`, `the role ${JSON.stringify(m.role)} cannot be translated`);
    }
  });
  return { system, messages: turns };
}

function textBlocks(content: unknown, at: string): Json[] {
  if (typeof content === 'string') return content === '' ? [] : [{ type: 'text', text: content }];
  if (!Array.isArray(content))
    throw new UntranslatableError(at, 'content must be a string or an array of parts');
  return content.map((p, j) => {
    if (!isObj(p) || p.type !== 'text' || typeof p.text !== 'string')
      refuse(`${at}[${j}].type`, 'only text parts can be translated here');
    return text(p);
  });
}

function userBlocks(content: unknown, at: string): Json[] {
  if (typeof content === 'string') return [{ type: 'text', text: content }];
  if (!Array.isArray(content))
    throw new UntranslatableError(at, 'content must be a string or an array of parts');
  return content.map((p, j) => {
    const pat = `${at}[${j}]`;
    if (isObj(p) && p.type === 'text' && typeof p.text === 'string') return text(p);
    if (isObj(p) && p.type === 'image_url' && isObj(p.image_url))
      return image(p.image_url, `${pat}.image_url`);
    return refuse(
      `${pat}.type`,
      `the content part type ${JSON.stringify(isObj(p) ? p.type : p)} cannot be translated`,
    );
  });
}

/**
 * A text part; its `cache_control` (an extension OpenAI-compatible gateways accept, as Anthropic
 * spells it) passes on, so chat clients can mark a prompt-cache breakpoint.
 */
function text(p: Json): Json {
  return isObj(p.cache_control)
    ? { type: 'text', text: p.text, cache_control: p.cache_control }
    : { type: 'text', text: p.text };
}

const DATA_URL = /^data:([^;,]+);base64,(.*)$/s;

function image(img: Json, at: string): Json {
  if (img.detail != null && img.detail !== 'auto')
    refuse(`${at}.detail`, 'Messages has no image detail level');
  const url = img.url;
  if (typeof url !== 'string') throw new UntranslatableError(`${at}.url`, 'an image needs a url');
  const data = DATA_URL.exec(url);
  if (data) return { type: 'image', source: { type: 'base64', media_type: data[1], data: data[2] } };
  if (/^https?:\/\//i.test(url)) return { type: 'image', source: { type: 'url', url } };
  return refuse(`${at}.url`, 'an image url must be http(s) or a base64 data URL');
}

function assistantBlocks(m: Json, at: string): Json[] {
  if (m.refusal != null) refuse(`${at}.refusal`, 'Messages has no refusal field');
  const blocks = m.content == null ? [] : textBlocks(m.content, `${at}.content`);
  if (m.tool_calls != null) {
    if (!Array.isArray(m.tool_calls))
      throw new UntranslatableError(`${at}.tool_calls`, 'tool_calls must be an array');
    m.tool_calls.forEach((c, j) => {
      const cat = `${at}.tool_calls[${j}]`;
      if (!isObj(c) || c.type !== 'function' || !isObj(c.function))
        refuse(`${cat}.type`, 'only function tool calls can be translated');
      let input: unknown;
      try {
        input = JSON.parse(String(c.function.arguments ?? '{}') || '{}');
      } catch {
        throw new UntranslatableError(`${cat}.function.arguments`, 'tool call arguments must be JSON');
      }
      if (!isObj(input))
        throw new UntranslatableError(
          `${cat}.function.arguments`,
          'tool call arguments must be a JSON object',
        );
      blocks.push({ type: 'tool_use', id: c.id, name: c.function.name, input });
    });
  }
  return blocks;
}

function toolResult(m: Json, at: string): Json {
  if (typeof m.tool_call_id !== 'string')
    throw new UntranslatableError(`${at}.tool_call_id`, 'a tool message needs a tool_call_id');
  const content = typeof m.content === 'string' ? m.content : textBlocks(m.content, `${at}.content`);
  return { type: 'tool_result', tool_use_id: m.tool_call_id, content };
}
