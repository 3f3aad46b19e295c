// Chat completions request -> Gemini `generateContent` request body. Lossless where Gemini can say the
// same thing; anything else is refused naming the field (refuse.ts), never dropped.
import { generationConfig } from './generation-config.ts';
import { asArray, asObject, isObject, type Json } from './json.ts';
import { refuse } from './refuse.ts';
import { signatureOf } from './tool-call-ids.ts';
import { translateToolChoice, translateTools } from './tools.ts';

/** Fields read by the translation, plus those that do not reach any upstream (`user`). */
const KNOWN = new Set([
  'model',
  'messages',
  'stream',
  'stream_options',
  'max_tokens',
  'max_completion_tokens',
  'temperature',
  'top_p',
  'n',
  'stop',
  'seed',
  'presence_penalty',
  'frequency_penalty',
  'response_format',
  'tools',
  'tool_choice',
  'parallel_tool_calls',
  'reasoning_effort',
  'user',
]);

export function toNativeChat(body: Json, _opts: { upstreamModel: string }): Json {
  for (const key of Object.keys(body)) {
    if (!KNOWN.has(key) && body[key] !== undefined && body[key] !== null) {
      refuse(key, `'${key}' is not supported by gemini channels.`);
    }
  }
  const out: Json = {};
  const { system, contents } = translateMessages(body['messages']);
  if (system.length > 0) out['systemInstruction'] = { parts: system };
  out['contents'] = contents;
  const tools = translateTools(body['tools']);
  if (tools) out['tools'] = tools;
  const toolConfig = translateToolChoice(body['tool_choice'], body['parallel_tool_calls']);
  if (toolConfig) out['toolConfig'] = toolConfig;
  const config = generationConfig(body);
  if (Object.keys(config).length > 0) out['generationConfig'] = config;
  return out;
}

// ---- messages -------------------------------------------------------------------------------------

function translateMessages(messages: unknown): { system: Json[]; contents: Json[] } {
  if (!Array.isArray(messages) || messages.length === 0) {
    refuse('messages', "'messages' must be a non-empty array.");
  }
  const system: Json[] = [];
  const contents: Json[] = [];
  messages.forEach((m, i) => {
    const at = `messages[${i}]`;
    if (!isObject(m)) refuse(at, `'${at}' must be an object.`);
    if (m['name'] !== undefined) refuse(`${at}.name`, 'Gemini has no participant names; remove `name`.');
    const role = m['role'];
    if (role === 'system' || role === 'developer') {
      system.push(...textParts(m['content'], `${at}.content`));
    } else if (role === 'user') {
      pushContent(contents, 'user', userParts(m['content'], `${at}.content`));
    } else if (role === 'assistant') {
      pushContent(contents, 'model', assistantParts(m, at));
    } else if (role === 'tool') {
      pushContent(contents, 'user', [functionResponse(messages, i, m, at)]);
    } else {
      refuse(`${at}.role`, `Unsupported role '${String(role)}' for gemini channels.`);
    }
  });
  if (contents.length === 0) refuse('messages', 'Gemini needs at least one user or assistant message.');
  return { system, contents };
}

/** Consecutive tool results become one turn, as Gemini expects all results of one call turn together. */
function pushContent(contents: Json[], role: string, parts: Json[]) {
  const last = contents.at(-1);
  const lastParts = last?.['parts'] as Json[] | undefined;
  const isResults = (ps: Json[] | undefined) => ps?.every((p) => 'functionResponse' in p) === true;
  if (last && last['role'] === role && isResults(lastParts) && isResults(parts)) {
    lastParts!.push(...parts);
    return;
  }
  contents.push({ role, parts });
}

function textParts(content: unknown, at: string): Json[] {
  if (typeof content === 'string') return [{ text: content }];
  if (!Array.isArray(content)) refuse(at, `'${at}' must be a string or an array of text parts.`);
  return content.map((p, j) => {
    if (!isObject(p) || p['type'] !== 'text' || typeof p['text'] !== 'string') {
      refuse(`${at}[${j}]`, `'${at}[${j}]' must be a text part here.`);
    }
    return { text: p['text'] };
  });
}

function userParts(content: unknown, at: string): Json[] {
  if (typeof content === 'string') return [{ text: content }];
  if (!Array.isArray(content) || content.length === 0) {
    refuse(at, `'${at}' must be a string or a non-empty array of content parts.`);
  }
  return content.map((p, j) => {
    const here = `${at}[${j}]`;
    if (!isObject(p)) refuse(here, `'${here}' must be an object.`);
    if (p['type'] === 'text' && typeof p['text'] === 'string') return { text: p['text'] };
    if (p['type'] === 'image_url') return imagePart(p['image_url'], `${here}.image_url`);
    if (p['type'] === 'input_audio') return audioPart(p['input_audio'], `${here}.input_audio`);
    return refuse(
      `${here}.type`,
      `Content part type '${String(p['type'])}' is not supported by gemini channels.`,
    );
  });
}

const DATA_URL = /^data:([\w.+-]+\/[\w.+-]+);base64,(.*)$/s;

/**
 * Images must be data: URLs (-> inlineData). Gemini's fileData only takes URIs of its own Files API
 * (or Cloud Storage), so an http(s) URL cannot be passed on, and fetching it in the relay would make
 * the relay an open proxy: refused with a 400.
 */
function imagePart(image: unknown, at: string): Json {
  const url = asObject(image)?.['url'];
  if (typeof url !== 'string') refuse(`${at}.url`, `'${at}.url' must be a string.`);
  if (asObject(image)?.['detail'] !== undefined && asObject(image)?.['detail'] !== 'auto') {
    refuse(`${at}.detail`, "Gemini has no image 'detail' setting; remove it or use 'auto'.");
  }
  const m = DATA_URL.exec(url);
  if (!m) {
    refuse(`${at}.url`, 'gemini channels take images as base64 data: URLs only (not http(s) URLs).');
  }
  return { inlineData: { mimeType: m[1], data: m[2] } };
}

function audioPart(audio: unknown, at: string): Json {
  const a = asObject(audio);
  const format = a?.['format'];
  if (typeof a?.['data'] !== 'string') refuse(`${at}.data`, `'${at}.data' must be base64 audio.`);
  if (format !== 'wav' && format !== 'mp3') refuse(`${at}.format`, `'${at}.format' must be wav or mp3.`);
  return { inlineData: { mimeType: format === 'wav' ? 'audio/wav' : 'audio/mp3', data: a['data'] } };
}

function assistantParts(m: Json, at: string): Json[] {
  const parts: Json[] = [];
  const content = m['content'];
  if (typeof content === 'string') {
    if (content !== '') parts.push({ text: content });
  } else if (Array.isArray(content)) {
    content.forEach((p, j) => {
      const here = `${at}.content[${j}]`;
      if (isObject(p) && p['type'] === 'text' && typeof p['text'] === 'string')
        parts.push({ text: p['text'] });
      else if (isObject(p) && p['type'] === 'refusal' && typeof p['refusal'] === 'string') {
        parts.push({ text: p['refusal'] });
      } else refuse(here, `'${here}' must be a text or refusal part.`);
    });
  } else if (content !== undefined && content !== null) {
    refuse(`${at}.content`, `'${at}.content' must be a string or an array of parts.`);
  }
  if (typeof m['refusal'] === 'string' && parts.length === 0) parts.push({ text: m['refusal'] });
  if (m['audio'] !== undefined && m['audio'] !== null) refuse(`${at}.audio`, 'Gemini cannot replay audio.');
  asArray(m['tool_calls']).forEach((c, k) => {
    const here = `${at}.tool_calls[${k}]`;
    const fn = asObject(asObject(c)?.['function']);
    if (asObject(c)?.['type'] !== 'function' || typeof fn?.['name'] !== 'string') {
      refuse(here, `'${here}' must be a function call with a name.`);
    }
    const part: Json = {
      functionCall: { name: fn['name'], args: callArgs(fn['arguments'], `${here}.function.arguments`) },
    };
    const id = asObject(c)?.['id'];
    const signature = typeof id === 'string' ? signatureOf(id) : undefined;
    if (signature) part['thoughtSignature'] = signature;
    parts.push(part);
  });
  if (parts.length === 0) refuse(`${at}.content`, 'An assistant message needs content or tool_calls.');
  return parts;
}

function callArgs(raw: unknown, at: string): Json {
  if (raw === undefined || raw === '') return {};
  if (typeof raw !== 'string') refuse(at, `'${at}' must be a JSON string.`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    refuse(at, `'${at}' is not valid JSON.`);
  }
  if (!isObject(parsed)) refuse(at, `'${at}' must be a JSON object for gemini channels.`);
  return parsed;
}

/** A tool result -> functionResponse, named after the call it answers (Gemini pairs them by name). */
function functionResponse(messages: unknown[], i: number, m: Json, at: string): Json {
  const id = m['tool_call_id'];
  if (typeof id !== 'string') refuse(`${at}.tool_call_id`, `'${at}.tool_call_id' is required.`);
  const name = callName(messages, i, id);
  if (name === undefined) {
    refuse(`${at}.tool_call_id`, `No earlier assistant tool call has the id '${id}'.`);
  }
  const content = m['content'];
  const text =
    typeof content === 'string'
      ? content
      : textParts(content, `${at}.content`)
          .map((p) => p['text'])
          .join('');
  let response: Json;
  try {
    const parsed: unknown = JSON.parse(text);
    response = isObject(parsed) ? parsed : { result: parsed };
  } catch {
    response = { result: text };
  }
  return { functionResponse: { name, response } };
}

/** The name of tool call `id` in the nearest assistant message before message i. */
function callName(messages: unknown[], i: number, id: string): string | undefined {
  for (let k = i - 1; k >= 0; k--) {
    const m = asObject(messages[k]);
    if (m?.['role'] !== 'assistant') continue;
    for (const c of asArray(m['tool_calls'])) {
      if (asObject(c)?.['id'] === id) {
        const name = asObject(asObject(c)?.['function'])?.['name'];
        return typeof name === 'string' ? name : undefined;
      }
    }
  }
  return undefined;
}
