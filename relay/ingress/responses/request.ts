import { UntranslatableError } from '../../../providers/contract.ts';

/**
 * A Responses API request (`POST /v1/responses`) as a chat completions request, for channels
 * whose provider does not speak the Responses API (openai-compatible, anthropic, gemini): the
 * chat body then goes through the channel's own chat adapter. Pure.
 *
 * Only stateless requests translate: what needs OpenAI's stored state (`previous_response_id`,
 * `conversation`, `background`, item references, stored prompts) is refused with the field named,
 * as is anything chat completions has no word for (built-in tools, file inputs). A translated
 * response is never stored (`store` is answered as false), so it cannot be retrieved later.
 */

type Json = Record<string, unknown>;

const isObj = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

function refuse(field: string, why: string): never {
  throw new UntranslatableError(
    field,
    `${field}: ${why} when the channel is translated through chat completions`,
  );
}

/** Fields copied unchanged: chat completions has the same name and meaning. */
const SAME = [
  'temperature',
  'top_p',
  'user',
  'parallel_tool_calls',
  'service_tier',
  'safety_identifier',
  'prompt_cache_key',
];

/** Fields the relay answers itself (echoed in the Response object), never sent upstream. */
const ECHOED = new Set(['metadata', 'store', 'truncation', 'include', 'stream_options']);

/** Fields that need state the target cannot keep. */
const STATEFUL: Record<string, string> = {
  previous_response_id: 'a previous response is stored only by OpenAI (and Azure OpenAI) channels',
  conversation: 'conversations are stored only by OpenAI (and Azure OpenAI) channels',
  background: 'background responses run only on OpenAI (and Azure OpenAI) channels',
  prompt: 'stored prompt templates exist only on OpenAI (and Azure OpenAI) channels',
};

const HANDLED = new Set([
  'model',
  'input',
  'instructions',
  'stream',
  'max_output_tokens',
  'tools',
  'tool_choice',
  'text',
  'reasoning',
  ...SAME,
  ...ECHOED,
  ...Object.keys(STATEFUL),
]);

export function responsesToChat(body: Readonly<Json>): Json {
  for (const [k, v] of Object.entries(body)) {
    if (v === undefined || v === null) continue;
    if (!HANDLED.has(k)) refuse(k, 'this Responses parameter has no chat completions equivalent');
    const stateful = STATEFUL[k];
    if (stateful && v !== false) refuse(k, stateful);
  }
  checkEchoed(body);
  const out: Json = { model: body.model, messages: messages(body) };
  if (body.stream === true) out.stream = true;
  if (body.max_output_tokens != null) out.max_completion_tokens = body.max_output_tokens;
  for (const k of SAME) if (body[k] != null) out[k] = body[k];
  if (body.tools != null) {
    const tools = toolsOf(body.tools);
    if (tools.length > 0) out.tools = tools;
  }
  if (body.tool_choice != null) out.tool_choice = toolChoiceOf(body.tool_choice);
  Object.assign(out, textOf(body.text), reasoningOf(body.reasoning));
  return out;
}

function checkEchoed(body: Readonly<Json>) {
  if (body.truncation != null && body.truncation !== 'disabled') {
    refuse('truncation', 'only "disabled" can be kept');
  }
  if (Array.isArray(body.include) && body.include.length > 0) {
    refuse('include', 'the extra output it asks for exists only on OpenAI channels');
  }
  if (body.metadata != null && !isObj(body.metadata)) {
    throw new UntranslatableError('metadata', 'metadata must be an object');
  }
}

function messages(body: Readonly<Json>): Json[] {
  const out: Json[] = [];
  if (body.instructions != null) {
    if (typeof body.instructions !== 'string')
      throw new UntranslatableError('instructions', 'instructions must be a string');
    out.push({ role: 'system', content: body.instructions });
  }
  const input = body.input;
  if (typeof input === 'string') out.push({ role: 'user', content: input });
  else if (Array.isArray(input)) {
    for (const [i, item] of input.entries()) addItem(out, item, `input[${i}]`);
  } else throw new UntranslatableError('input', 'input must be a string or an array of input items');
  return out;
}

/** One input item onto the chat messages (consecutive function calls share one assistant message). */
function addItem(out: Json[], item: unknown, at: string) {
  if (!isObj(item)) throw new UntranslatableError(at, 'an input item must be an object');
  const type = item.type ?? 'message';
  if (type === 'message') {
    out.push(messageOf(item, at));
  } else if (type === 'function_call') {
    if (typeof item.call_id !== 'string' || typeof item.name !== 'string') {
      throw new UntranslatableError(at, 'a function_call item needs call_id and name');
    }
    const call = {
      id: item.call_id,
      type: 'function',
      function: { name: item.name, arguments: typeof item.arguments === 'string' ? item.arguments : '{}' },
    };
    const last = out.at(-1);
    if (last?.role === 'assistant') {
      const calls = (last.tool_calls as Json[] | undefined) ?? [];
      calls.push(call);
      last.tool_calls = calls;
    } else out.push({ role: 'assistant', content: null, tool_calls: [call] });
  } else if (type === 'function_call_output') {
    if (typeof item.call_id !== 'string')
      throw new UntranslatableError(`${at}.call_id`, 'call_id is required');
    out.push({ role: 'tool', tool_call_id: item.call_id, content: outputText(item.output, `${at}.output`) });
  } else if (type === 'reasoning') {
    // The model's own earlier reasoning, which a chat completions model takes no input for.
  } else if (type === 'item_reference') {
    refuse(`${at}.type`, 'item references point to items stored only by OpenAI channels');
  } else {
    refuse(`${at}.type`, `input items of type ${JSON.stringify(type)} cannot be translated`);
  }
}

const ROLES: Record<string, string> = {
  user: 'user',
  assistant: 'assistant',
  system: 'system',
  developer: 'system',
};

function messageOf(item: Json, at: string): Json {
  const role = ROLES[String(item.role)];
  if (!role) refuse(`${at}.role`, `the role ${JSON.stringify(item.role)} cannot be translated`);
  const content = item.content;
  if (typeof content === 'string') return { role, content };
  if (!Array.isArray(content))
    throw new UntranslatableError(`${at}.content`, 'content must be a string or an array');
  const parts = content.map((p, j) => partOf(p, `${at}.content[${j}]`));
  // Assistant history and system text are plain strings in chat completions.
  if (role !== 'user') {
    if (parts.some((p) => p.type !== 'text'))
      refuse(`${at}.content`, `a ${role} message can only carry text`);
    return { role, content: parts.map((p) => p.text).join('') };
  }
  return { role, content: parts };
}

function partOf(p: unknown, at: string): Json {
  if (!isObj(p)) throw new UntranslatableError(at, 'a content part must be an object');
  switch (p.type) {
    case 'input_text':
    case 'output_text':
      if (typeof p.text !== 'string') throw new UntranslatableError(`${at}.text`, 'text must be a string');
      return { type: 'text', text: p.text };
    case 'refusal':
      return { type: 'text', text: String(p.refusal ?? '') };
    case 'input_image': {
      if (p.file_id != null) refuse(`${at}.file_id`, 'uploaded files live only on OpenAI channels');
      if (typeof p.image_url !== 'string')
        throw new UntranslatableError(`${at}.image_url`, 'an image needs image_url');
      const image: Json = { url: p.image_url };
      if (p.detail != null && p.detail !== 'auto') image.detail = p.detail;
      return { type: 'image_url', image_url: image };
    }
    default:
      return refuse(`${at}.type`, `content parts of type ${JSON.stringify(p.type)} cannot be translated`);
  }
}

function outputText(output: unknown, at: string): string {
  if (typeof output === 'string') return output;
  if (Array.isArray(output)) {
    return output
      .map((p, j) => {
        if (isObj(p) && (p.type === 'input_text' || p.type === 'output_text') && typeof p.text === 'string')
          return p.text;
        return refuse(`${at}[${j}]`, 'only text tool output can be translated');
      })
      .join('');
  }
  throw new UntranslatableError(at, 'output must be a string or an array of text parts');
}

function toolsOf(tools: unknown): Json[] {
  if (!Array.isArray(tools)) throw new UntranslatableError('tools', 'tools must be an array');
  return tools.map((t, i) => {
    const at = `tools[${i}]`;
    if (!isObj(t) || t.type !== 'function') {
      return refuse(
        `${at}.type`,
        `only function tools can be translated (got ${JSON.stringify(isObj(t) ? t.type : t)})`,
      );
    }
    if (typeof t.name !== 'string')
      throw new UntranslatableError(`${at}.name`, 'a function tool needs a name');
    const fn: Json = { name: t.name };
    if (t.description != null) fn.description = t.description;
    if (t.parameters != null) fn.parameters = t.parameters;
    if (t.strict != null) fn.strict = t.strict;
    return { type: 'function', function: fn };
  });
}

function toolChoiceOf(choice: unknown): unknown {
  if (choice === 'auto' || choice === 'none' || choice === 'required') return choice;
  if (isObj(choice) && choice.type === 'function' && typeof choice.name === 'string') {
    return { type: 'function', function: { name: choice.name } };
  }
  return refuse('tool_choice', 'only auto, none, required or a function can be translated');
}

function textOf(text: unknown): Json {
  if (text == null) return {};
  if (!isObj(text)) throw new UntranslatableError('text', 'text must be an object');
  if (text.verbosity != null) refuse('text.verbosity', 'chat completions has no verbosity');
  const f = text.format;
  if (f == null) return {};
  if (!isObj(f)) throw new UntranslatableError('text.format', 'text.format must be an object');
  if (f.type === 'text') return {};
  if (f.type === 'json_object') return { response_format: { type: 'json_object' } };
  if (f.type === 'json_schema') {
    const { type: _, ...schema } = f;
    return { response_format: { type: 'json_schema', json_schema: schema } };
  }
  return refuse('text.format.type', `the format ${JSON.stringify(f.type)} cannot be translated`);
}

function reasoningOf(reasoning: unknown): Json {
  if (reasoning == null) return {};
  if (!isObj(reasoning)) throw new UntranslatableError('reasoning', 'reasoning must be an object');
  if (reasoning.summary != null || reasoning.generate_summary != null) {
    refuse('reasoning.summary', 'chat completions returns no reasoning summaries');
  }
  return reasoning.effort != null ? { reasoning_effort: reasoning.effort } : {};
}
