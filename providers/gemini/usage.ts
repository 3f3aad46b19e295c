// Gemini `usageMetadata` -> the relay's token counts and OpenAI's `usage` object.
// Gemini counts thinking apart from the answer (totalTokenCount = prompt + candidates + thoughts),
// while OpenAI's completion_tokens include reasoning tokens: completion = candidates + thoughts.
// cachedContentTokenCount is part of promptTokenCount, as OpenAI's cached_tokens is of prompt_tokens.
import type { TokenCounts } from '../../core/usage.ts';
import { asObject, count, type Json } from './json.ts';

export function usageOf(native: unknown): TokenCounts | undefined {
  const u = asObject(asObject(native)?.['usageMetadata']);
  if (!u) return undefined;
  const thoughts = count(u['thoughtsTokenCount']);
  return {
    // tool-use prompts (e.g. code execution results fed back) are prompt tokens too
    promptTokens: count(u['promptTokenCount']) + count(u['toolUsePromptTokenCount']),
    completionTokens: count(u['candidatesTokenCount']) + thoughts,
    cachedTokens: count(u['cachedContentTokenCount']),
    cacheWriteTokens: 0, // Gemini bills cache creation through its cachedContents API, not per request
    reasoningTokens: thoughts,
  };
}

export function openAIUsage(t: TokenCounts): Json {
  return {
    prompt_tokens: t.promptTokens,
    completion_tokens: t.completionTokens,
    total_tokens: t.promptTokens + t.completionTokens,
    prompt_tokens_details: { cached_tokens: t.cachedTokens },
    completion_tokens_details: { reasoning_tokens: t.reasoningTokens },
  };
}
