import type { ChannelTarget, OperationTranslator, ProviderAdapter } from '../contract.ts';
import { authHeaders, MESSAGES_PATH } from './auth.ts';
import { errorOf } from './errors.ts';
import { toNativeChat } from './request.ts';
import { fromNativeChat } from './response.ts';
import { AnthropicChatStream } from './stream.ts';
import { usageOf } from './usage.ts';

/**
 * Anthropic: `x-api-key` + `anthropic-version`, chat completions translated to and from the
 * native Messages API (`{baseURL}/v1/messages`); Messages and count_tokens requests pass
 * through. Anthropic has no completions, embeddings or images API.
 */
const chat: OperationTranslator = {
  request: (body, ctx) => toNativeChat(body as Record<string, unknown>, { upstreamModel: ctx.upstreamModel }),
  response: (native, ctx) => fromNativeChat(native as Record<string, unknown>, { model: ctx.model }),
  usage: (native) => usageOf((native as { usage?: unknown } | null)?.usage),
  stream: (ctx) => new AnthropicChatStream({ model: ctx.model, includeUsage: ctx.includeUsage }),
};

/** `https://api.anthropic.com` and `https://api.anthropic.com/v1` both reach /v1/messages. */
const messagesURL = (ch: ChannelTarget) =>
  ch.basePath.endsWith('/v1') ? `${ch.basePath}/messages` : ch.basePath + MESSAGES_PATH;

export const anthropic: ProviderAdapter = {
  name: 'anthropic',
  supports: (op) => op === 'chat' || op === 'messages' || op === 'count_tokens',
  natively: (op) => op === 'messages' || op === 'count_tokens',
  clientHeaders: ['anthropic-beta'],
  auth: (ch) => authHeaders(ch.apiKey),
  url: (ch, ctx) => messagesURL(ch) + (ctx.operation === 'count_tokens' ? '/count_tokens' : ''),
  translator: (op) => (op === 'chat' ? chat : undefined),
  errorOf,
  // 529 overloaded always fails over (even where cooldown.onStatus was narrowed below 5xx); 429
  // and the other 5xx follow the channel's cooldown.onStatus (by default they fail over too).
  retryable: (status) => (status === 529 ? true : undefined),
};
