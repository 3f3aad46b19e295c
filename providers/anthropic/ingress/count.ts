// count_tokens for channels that cannot count: an estimate, the relay's one (core/usage.ts).
import { estimateTokens } from '../../../core/usage.ts';

type Json = Record<string, unknown>;

/**
 * `{"input_tokens": N}` estimated at ~4 characters a token over the JSON of the request's
 * `system`, `messages` and `tools`: the estimate the relay bills with when an upstream reports
 * no usage. Only Anthropic's own count is exact (count_tokens on an anthropic channel).
 */
export function estimateInputTokens(body: Json): { input_tokens: number } {
  const counted = JSON.stringify([body.system ?? null, body.messages ?? null, body.tools ?? null]);
  return { input_tokens: estimateTokens(counted.length) };
}
