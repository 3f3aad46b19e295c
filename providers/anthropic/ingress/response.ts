// chat.completion -> Anthropic Message (https://docs.anthropic.com/en/api/messages), the reverse of
// ../response.ts: content as a text block, tool calls as tool_use blocks, the finish reason as a
// stop reason, usage in Anthropic's terms.
import { NO_TOKENS, usageFromOpenAI } from '../../../core/usage.ts';
import { messagesUsage } from './usage.ts';

type Json = Record<string, unknown>;

const isObj = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Chat finish reasons in Messages' terms. */
export function stopReason(finish: unknown): string | null {
  switch (finish) {
    case 'stop':
      return 'end_turn';
    case 'length':
      return 'max_tokens';
    case 'tool_calls':
    case 'function_call':
      return 'tool_use';
    case 'content_filter':
      return 'refusal';
    case null:
    case undefined:
      return null;
    default:
      return 'end_turn';
  }
}

/** Messages ids start with `msg_`; a chat id is kept inside one. */
export const messageId = (id: unknown) =>
  typeof id === 'string' && id.startsWith('msg_') ? id : `msg_${typeof id === 'string' ? id : ''}`;

/** Tool arguments as an input object; arguments that are not a JSON object are kept as `{}`. */
export function toolInput(args: unknown): Json {
  try {
    const v = JSON.parse(typeof args === 'string' && args !== '' ? args : '{}');
    return isObj(v) ? v : {};
  } catch {
    return {};
  }
}

/** The Message for a chat.completion; `model` is the name the client asked for. */
export function messageFromChat(chat: Json, opts: { model: string }): Json {
  const choice = (Array.isArray(chat.choices) ? chat.choices[0] : undefined) as Json | undefined;
  const msg = (isObj(choice?.message) ? choice.message : {}) as Json;
  const content: Json[] = [];
  const text = typeof msg.content === 'string' ? msg.content : '';
  if (text !== '') content.push({ type: 'text', text });
  if (typeof msg.refusal === 'string' && msg.refusal !== '')
    content.push({ type: 'text', text: msg.refusal });
  for (const c of Array.isArray(msg.tool_calls) ? (msg.tool_calls as Json[]) : []) {
    const fn = (isObj(c.function) ? c.function : {}) as Json;
    content.push({ type: 'tool_use', id: c.id, name: fn.name, input: toolInput(fn.arguments) });
  }
  const refused = typeof msg.refusal === 'string' && msg.refusal !== '';
  return {
    id: messageId(chat.id),
    type: 'message',
    role: 'assistant',
    model: opts.model,
    content,
    stop_reason: refused ? 'refusal' : stopReason(choice?.finish_reason),
    stop_sequence: null,
    usage: messagesUsage(usageFromOpenAI(chat.usage) ?? NO_TOKENS),
  };
}
