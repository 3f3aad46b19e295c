// Anthropic Messages request -> chat completions request (https://docs.anthropic.com/en/api/messages),
// for channels whose provider does not speak Messages: the chat body then goes through that
// channel's own adapter like any chat request. The reverse of ../request.ts. Lossless where chat
// completions can say the same thing; what it cannot say is refused by name (UntranslatableError),
// never dropped. Prompt-cache breakpoints (`cache_control`, on blocks or the request) are hints, not
// content: they are left out (OpenAI-shaped upstreams cache prompts by themselves).
import { UntranslatableError } from '../../contract.ts';

type Json = Record<string, unknown>;

const isObj = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Fields translated below; anything else is refused, unless it only says its default. */
const HANDLED = new Set([
  'model',
  'messages',
  'system',
  'max_tokens',
  'stop_sequences',
  'stream',
  'temperature',
  'top_p',
  'tools',
  'tool_choice',
  'metadata',
  'output_config',
  'cache_control',
]);

const DEFAULT_ONLY: Record<string, (v: unknown) => boolean> = {
  thinking: (v) => isObj(v) && v.type === 'disabled',
  service_tier: (v) => v === 'auto' || v === 'standard_only',
};

const WHY: Record<string, string> = {
  top_k: 'chat completions have no top_k',
  thinking: 'extended thinking cannot be translated to chat completions',
  container: 'containers exist only on Anthropic',
  mcp_servers: 'MCP servers are an Anthropic-side feature',
  context_management: 'context management is an Anthropic-side feature',
};

function refuse(param: string, why?: string): never {
  throw new UntranslatableError(
    param,
    `${param} cannot be sent to this channel (it does not speak the Messages API): ${why ?? WHY[param] ?? 'chat completions have no such parameter'}`,
  );
}

/** The chat completions body for a Messages body (model unchanged). Throws UntranslatableError. */
export function chatFromMessages(body: Json): Json {
  for (const [k, v] of Object.entries(body)) {
    if (v === undefined || v === null || HANDLED.has(k)) continue;
    if (!DEFAULT_ONLY[k]?.(v)) refuse(k);
  }
  const max = body.max_tokens;
  if (typeof max !== 'number' || !Number.isInteger(max) || max < 1)
    throw new UntranslatableError('max_tokens', 'max_tokens is required and must be a positive integer');
  const out: Json = { model: body.model, messages: [...system(body.system), ...turns(body.messages)] };
  out.max_tokens = max;
  if (body.temperature != null) out.temperature = body.temperature;
  if (body.top_p != null) out.top_p = body.top_p;
  if (body.stop_sequences != null) out.stop = stop(body.stop_sequences);
  if (body.stream === true) out.stream = true;
  const user = isObj(body.metadata) ? body.metadata.user_id : undefined;
  if (body.metadata != null && !isObj(body.metadata)) refuse('metadata', 'metadata must be an object');
  if (isObj(body.metadata) && Object.keys(body.metadata).some((k) => k !== 'user_id'))
    refuse('metadata', 'only metadata.user_id has a chat completions counterpart (user)');
  if (typeof user === 'string') out.user = user;
  if (body.tools != null) out.tools = tools(body.tools);
  Object.assign(out, toolChoice(body.tool_choice, out.tools !== undefined));
  if (body.output_config != null) Object.assign(out, outputConfig(body.output_config));
  return out;
}

/** Effort as reasoning_effort; a JSON schema output format as a json_schema response_format. */
function outputConfig(v: unknown): Json {
  if (!isObj(v)) throw new UntranslatableError('output_config', 'output_config must be an object');
  const out: Json = {};
  for (const [k, x] of Object.entries(v)) {
    if (x == null) continue;
    if (k === 'effort') {
      if (x !== 'low' && x !== 'medium' && x !== 'high' && x !== 'xhigh')
        refuse('output_config.effort', `chat completions have no reasoning_effort ${JSON.stringify(x)}`);
      out.reasoning_effort = x;
    } else if (k === 'format') {
      if (!isObj(x) || x.type !== 'json_schema' || !isObj(x.schema))
        refuse('output_config.format', 'only a json_schema format can be translated');
      out.response_format = { type: 'json_schema', json_schema: { name: 'output', schema: x.schema } };
    } else refuse(`output_config.${k}`);
  }
  return out;
}

function stop(v: unknown): string[] {
  if (!Array.isArray(v) || !v.every((s) => typeof s === 'string'))
    throw new UntranslatableError('stop_sequences', 'stop_sequences must be an array of strings');
  return v;
}

function system(v: unknown): Json[] {
  if (v == null) return [];
  if (typeof v === 'string') return v === '' ? [] : [{ role: 'system', content: v }];
  if (!Array.isArray(v)) throw new UntranslatableError('system', 'system must be a string or text blocks');
  const parts = v.map((b, i) => {
    if (!isObj(b) || b.type !== 'text' || typeof b.text !== 'string')
      refuse(`system[${i}].type`, 'only text blocks can be a system prompt');
    return { type: 'text', text: b.text };
  });
  return parts.length === 0 ? [] : [{ role: 'system', content: parts }];
}

function turns(list: unknown): Json[] {
  if (!Array.isArray(list) || list.length === 0)
    throw new UntranslatableError('messages', 'messages must be a non-empty array');
  return list.flatMap((m, i) => {
    const at = `messages[${i}]`;
    if (!isObj(m)) throw new UntranslatableError(at, 'a message must be an object');
    const blocks = blocksOf(m.content, `${at}.content`);
    if (m.role === 'user') return userTurn(blocks, `${at}.content`);
    if (m.role === 'assistant') return [assistantTurn(blocks, `${at}.content`)];
    return refuse(`${at}.role`, `the role ${JSON.stringify(m.role)} is not user or assistant`);
  });
}

function blocksOf(content: unknown, at: string): Json[] {
  if (typeof content === 'string') return [{ type: 'text', text: content }];
  if (!Array.isArray(content))
    throw new UntranslatableError(at, 'content must be a string or an array of blocks');
  return content.map((b, j) => {
    if (!isObj(b)) throw new UntranslatableError(`${at}[${j}]`, 'a content block must be an object');
    return b;
  });
}

/** Tool results become `tool` messages (first, as Messages puts them first); the rest one user message. */
function userTurn(blocks: Json[], at: string): Json[] {
  const results: Json[] = [];
  const parts: Json[] = [];
  blocks.forEach((b, j) => {
    const bat = `${at}[${j}]`;
    if (b.type === 'tool_result') results.push(toolMessage(b, bat));
    else if (b.type === 'text' && typeof b.text === 'string') parts.push({ type: 'text', text: b.text });
    else if (b.type === 'image') parts.push(imagePart(b, bat));
    else refuse(`${bat}.type`, `the content block type ${JSON.stringify(b.type)} cannot be translated`);
  });
  if (parts.length === 0) return results;
  const onlyText = parts.every((p) => p.type === 'text');
  const content = onlyText && parts.length === 1 ? parts[0]!.text : parts;
  return [...results, { role: 'user', content }];
}

function imagePart(b: Json, at: string): Json {
  const s = b.source;
  if (isObj(s) && s.type === 'base64' && typeof s.media_type === 'string' && typeof s.data === 'string')
    return { type: 'image_url', image_url: { url: `data:${s.media_type};base64,${s.data}` } };
  if (isObj(s) && s.type === 'url' && typeof s.url === 'string')
    return { type: 'image_url', image_url: { url: s.url } };
  return refuse(`${at}.source`, 'only base64 and url image sources can be translated');
}

function toolMessage(b: Json, at: string): Json {
  if (typeof b.tool_use_id !== 'string')
    throw new UntranslatableError(`${at}.tool_use_id`, 'a tool_result needs a tool_use_id');
  let content: string;
  if (b.content == null) content = '';
  else if (typeof b.content === 'string') content = b.content;
  else if (Array.isArray(b.content)) {
    content = b.content
      .map((c, k) => {
        if (!isObj(c) || c.type !== 'text' || typeof c.text !== 'string')
          refuse(`${at}.content[${k}].type`, 'a tool result can only carry text to chat completions');
        return c.text;
      })
      .join('');
  } else throw new UntranslatableError(`${at}.content`, 'content must be a string or text blocks');
  // Chat completions have no error flag on tool results: the flag is said in words.
  if (b.is_error === true) content = `Error: ${content}`;
  return { role: 'tool', tool_call_id: b.tool_use_id, content };
}

function assistantTurn(blocks: Json[], at: string): Json {
  let text: string | null = null;
  const calls: Json[] = [];
  blocks.forEach((b, j) => {
    const bat = `${at}[${j}]`;
    if (b.type === 'text' && typeof b.text === 'string') text = (text ?? '') + b.text;
    else if (b.type === 'tool_use') {
      if (typeof b.id !== 'string' || typeof b.name !== 'string')
        throw new UntranslatableError(bat, 'a tool_use block needs an id and a name');
      const args = JSON.stringify(isObj(b.input) ? b.input : {});
      calls.push({ id: b.id, type: 'function', function: { name: b.name, arguments: args } });
    } else refuse(`${bat}.type`, `the content block type ${JSON.stringify(b.type)} cannot be translated`);
  });
  const m: Json = { role: 'assistant', content: text };
  if (calls.length > 0) m.tool_calls = calls;
  return m;
}

function tools(list: unknown): Json[] {
  if (!Array.isArray(list)) throw new UntranslatableError('tools', 'tools must be an array');
  return list.map((t, i) => {
    const at = `tools[${i}]`;
    if (!isObj(t) || typeof t.name !== 'string') throw new UntranslatableError(at, 'a tool needs a name');
    // Anthropic's server and client tools (web search, bash, computer use) name a versioned type.
    if (t.type != null && t.type !== 'custom')
      refuse(`${at}.type`, `the tool type ${JSON.stringify(t.type)} exists only on Anthropic`);
    const fn: Json = { name: t.name };
    if (typeof t.description === 'string') fn.description = t.description;
    fn.parameters = isObj(t.input_schema) ? t.input_schema : { type: 'object', properties: {} };
    return { type: 'function', function: fn };
  });
}

function toolChoice(choice: unknown, hasTools: boolean): Json {
  if (choice == null) return {};
  if (!isObj(choice)) throw new UntranslatableError('tool_choice', 'tool_choice must be an object');
  const out: Json = {};
  if (choice.type === 'auto') out.tool_choice = 'auto';
  else if (choice.type === 'any') out.tool_choice = 'required';
  else if (choice.type === 'none') out.tool_choice = 'none';
  else if (choice.type === 'tool' && typeof choice.name === 'string')
    out.tool_choice = { type: 'function', function: { name: choice.name } };
  else refuse('tool_choice', 'it must be auto, any, none or tool with a name');
  if (choice.disable_parallel_tool_use === true && hasTools) out.parallel_tool_calls = false;
  return out;
}
