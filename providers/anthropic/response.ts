// Anthropic Messages response -> chat.completion.
import { openAIUsage, usageOf } from './usage.ts';

type Json = Record<string, unknown>;

/** Messages stop reasons in chat completions' terms; an unknown one reads as a plain stop. */
export function finishReason(stop: unknown): string | null {
  switch (stop) {
    case 'end_turn':
    case 'stop_sequence':
    case 'pause_turn':
      return 'stop';
    case 'max_tokens':
    case 'model_context_window_exceeded':
      return 'length';
    case 'tool_use':
      return 'tool_calls';
    case 'refusal':
      return 'content_filter';
    case null:
    case undefined:
      return null;
    default:
      return 'stop';
  }
}

/**
 * The chat.completion for a Messages response: text blocks joined into `content`, `tool_use`
 * blocks as `tool_calls` (input re-serialised as the arguments string). `model` is the name the
 * client asked for; `created` is the relay's clock (Messages has no timestamp).
 */
export function fromNativeChat(native: Json, opts: { model: string; created?: number }): Json {
  const blocks = Array.isArray(native.content) ? (native.content as Json[]) : [];
  let text: string | null = null;
  const toolCalls: Json[] = [];
  for (const b of blocks) {
    if (b.type === 'text' && typeof b.text === 'string') text = (text ?? '') + b.text;
    else if (b.type === 'tool_use')
      toolCalls.push({
        id: b.id,
        type: 'function',
        function: { name: b.name, arguments: JSON.stringify(b.input ?? {}) },
      });
  }
  const message: Json = { role: 'assistant', content: text, refusal: null };
  if (toolCalls.length > 0) message.tool_calls = toolCalls;
  return {
    id: native.id,
    object: 'chat.completion',
    created: opts.created ?? Math.floor(Date.now() / 1000),
    model: opts.model,
    choices: [{ index: 0, message, logprobs: null, finish_reason: finishReason(native.stop_reason) }],
    usage: openAIUsage(usageOf(native.usage)),
  };
}
