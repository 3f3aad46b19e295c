import type { TokenCounts } from '../../../core/usage.ts';

/**
 * A Messages `usage` object for token counts: Anthropic's `input_tokens` leaves out the cached
 * parts that OpenAI's `prompt_tokens` includes (the inverse of ../usage.ts's usageOf).
 */
export function messagesUsage(t: TokenCounts) {
  return {
    input_tokens: Math.max(0, t.promptTokens - t.cachedTokens - t.cacheWriteTokens),
    cache_creation_input_tokens: t.cacheWriteTokens,
    cache_read_input_tokens: t.cachedTokens,
    output_tokens: t.completionTokens,
  };
}
