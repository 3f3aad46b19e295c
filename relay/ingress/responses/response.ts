import { randomBytes } from 'node:crypto';
import { usageFromOpenAI } from '../../../core/usage.ts';

/**
 * A chat completion (what the channel's chat adapter answers) as a Responses API `response`
 * object; also the skeleton the translated stream's lifecycle events carry. Pure.
 */

type Json = Record<string, unknown>;

const isObj = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** An id in OpenAI's shape: a prefix and 48 hex digits (`resp_...`, `msg_...`, `fc_...`). */
export const itemId = (prefix: string) => `${prefix}_${randomBytes(24).toString('hex')}`;

export interface EchoContext {
  /** The model the client named. */
  model: string;
  /** The client's Responses request (its parameters are echoed, as OpenAI does). */
  request: Readonly<Json>;
}

/** The response object without output and usage: what the request asked, echoed back. */
export function responseShell(id: string, createdAt: number, ctx: EchoContext): Json {
  const r = ctx.request;
  return {
    id,
    object: 'response',
    created_at: createdAt,
    status: 'in_progress',
    background: false,
    error: null,
    incomplete_details: null,
    instructions: r.instructions ?? null,
    max_output_tokens: r.max_output_tokens ?? null,
    model: ctx.model,
    output: [],
    parallel_tool_calls: r.parallel_tool_calls ?? true,
    previous_response_id: null,
    reasoning: { effort: (r.reasoning as Json | undefined)?.effort ?? null, summary: null },
    service_tier: r.service_tier ?? 'default',
    store: false,
    temperature: r.temperature ?? 1,
    text: isObj(r.text) && isObj(r.text.format) ? { format: r.text.format } : { format: { type: 'text' } },
    tool_choice: r.tool_choice ?? 'auto',
    tools: Array.isArray(r.tools) ? r.tools : [],
    top_p: r.top_p ?? 1,
    truncation: 'disabled',
    usage: null,
    user: r.user ?? null,
    metadata: isObj(r.metadata) ? r.metadata : {},
  };
}

/** OpenAI's Responses usage from a chat completions usage object. */
export function responsesUsage(chatUsage: unknown): Json | null {
  const u = usageFromOpenAI(chatUsage);
  if (!u) return null;
  return {
    input_tokens: u.promptTokens,
    input_tokens_details: { cached_tokens: u.cachedTokens },
    output_tokens: u.completionTokens,
    output_tokens_details: { reasoning_tokens: u.reasoningTokens },
    total_tokens: u.promptTokens + u.completionTokens,
  };
}

/** How a chat finish_reason ends a response: completed, or incomplete and why. */
export function endOf(finishReason: unknown): { status: string; incomplete_details: Json | null } {
  if (finishReason === 'length')
    return { status: 'incomplete', incomplete_details: { reason: 'max_output_tokens' } };
  if (finishReason === 'content_filter')
    return { status: 'incomplete', incomplete_details: { reason: 'content_filter' } };
  return { status: 'completed', incomplete_details: null };
}

export const messageItem = (id: string, text: string, status = 'completed'): Json => ({
  id,
  type: 'message',
  status,
  role: 'assistant',
  content: [{ type: 'output_text', text, annotations: [], logprobs: [] }],
});

export const functionCallItem = (
  id: string,
  callId: string,
  name: string,
  args: string,
  status = 'completed',
): Json => ({
  id,
  type: 'function_call',
  status,
  arguments: args,
  call_id: callId,
  name,
});

export const reasoningItem = (id: string, text: string): Json => ({
  id,
  type: 'reasoning',
  summary: [],
  content: [{ type: 'reasoning_text', text }],
});

/** The Responses object for a (non-streamed) chat completion. */
export function chatToResponse(chat: unknown, ctx: EchoContext): Json {
  const c = isObj(chat) ? chat : {};
  const choice = Array.isArray(c.choices) && isObj(c.choices[0]) ? c.choices[0] : {};
  const message = isObj(choice.message) ? choice.message : {};
  const output: Json[] = [];
  const reasoning = message.reasoning_content ?? message.reasoning;
  if (typeof reasoning === 'string' && reasoning !== '') output.push(reasoningItem(itemId('rs'), reasoning));
  const calls = Array.isArray(message.tool_calls) ? message.tool_calls.filter(isObj) : [];
  const text = typeof message.content === 'string' ? message.content : '';
  if (text !== '' || calls.length === 0) output.push(messageItem(itemId('msg'), text));
  if (typeof message.refusal === 'string' && message.refusal !== '') {
    const item = messageItem(itemId('msg'), '');
    item.content = [{ type: 'refusal', refusal: message.refusal }];
    output.push(item);
  }
  for (const tc of calls) {
    const fn = isObj(tc.function) ? tc.function : {};
    const callId = typeof tc.id === 'string' ? tc.id : itemId('call');
    output.push(functionCallItem(itemId('fc'), callId, String(fn.name ?? ''), String(fn.arguments ?? '')));
  }
  const created = typeof c.created === 'number' ? c.created : Math.floor(Date.now() / 1000);
  return {
    ...responseShell(itemId('resp'), created, ctx),
    ...endOf(choice.finish_reason),
    output,
    usage: responsesUsage(c.usage),
  };
}
