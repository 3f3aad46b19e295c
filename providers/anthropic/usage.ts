import type { TokenCounts } from '../../core/usage.ts';

const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : 0);

/**
 * Token counts from a Messages `usage` object. Anthropic's `input_tokens` excludes the cached
 * parts, so the prompt is input + cache read + cache write (what OpenAI calls prompt_tokens).
 */
export function usageOf(usage: unknown): TokenCounts {
  const u = (usage !== null && typeof usage === 'object' ? usage : {}) as Record<string, unknown>;
  const read = num(u.cache_read_input_tokens);
  const write = num(u.cache_creation_input_tokens);
  return {
    promptTokens: num(u.input_tokens) + read + write,
    completionTokens: num(u.output_tokens),
    cachedTokens: read,
    cacheWriteTokens: write,
    reasoningTokens: 0,
  };
}

/** The OpenAI `usage` object for those counts (read back by core/usage.ts's usageFromOpenAI). */
export function openAIUsage(t: TokenCounts) {
  return {
    prompt_tokens: t.promptTokens,
    completion_tokens: t.completionTokens,
    total_tokens: t.promptTokens + t.completionTokens,
    prompt_tokens_details: { cached_tokens: t.cachedTokens, cache_write_tokens: t.cacheWriteTokens },
    completion_tokens_details: { reasoning_tokens: t.reasoningTokens },
  };
}
