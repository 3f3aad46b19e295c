// Gemini GenerateContentResponse -> OpenAI chat.completion.
import { candidateIndex, candidatesOf, piecesOf } from './candidate.ts';
import { finishReasonOf } from './finish-reason.ts';
import { asObject, type Json } from './json.ts';
import { openAIUsage, usageOf } from './usage.ts';

export interface ChatResponseOptions {
  /** The model name the client asked for. */
  model: string;
  /** Used when the upstream sends no responseId. */
  id: string;
  /** Unix seconds. */
  created: number;
}

export function fromNativeChat(native: Json, opts: ChatResponseOptions): Json {
  const candidates = candidatesOf(native);
  const choices = candidates.map((c, i) => {
    const index = candidateIndex(c, i);
    const { text, toolCalls } = piecesOf(c, index);
    const message: Json = { role: 'assistant', content: text === '' && toolCalls.length > 0 ? null : text };
    if (toolCalls.length > 0) message['tool_calls'] = toolCalls;
    message['refusal'] = null;
    return {
      index,
      message,
      logprobs: null,
      finish_reason: finishReasonOf(c['finishReason'], toolCalls.length > 0),
    };
  });
  // A blocked prompt has no candidates, only promptFeedback.blockReason.
  if (choices.length === 0 && asObject(native['promptFeedback'])?.['blockReason'] !== undefined) {
    choices.push({
      index: 0,
      message: { role: 'assistant', content: null, refusal: null },
      logprobs: null,
      finish_reason: 'content_filter',
    });
  }
  const out: Json = {
    id: typeof native['responseId'] === 'string' ? `chatcmpl-${native['responseId']}` : opts.id,
    object: 'chat.completion',
    created: opts.created,
    model: opts.model,
    choices,
  };
  const usage = usageOf(native);
  if (usage) out['usage'] = openAIUsage(usage);
  return out;
}
