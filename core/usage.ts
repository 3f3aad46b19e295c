import type { ModelPricing } from './config/relay-config.ts';

/** Token usage of one request, normalised from the provider's `usage` object. */
export interface Usage {
  promptTokens: number;
  completionTokens: number;
  cachedTokens: number;
  /** True when the relay estimated it (no usage from upstream, e.g. a client that left mid-stream). */
  estimated: boolean;
}

const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : 0);

/** OpenAI's `usage` (chat, completions, embeddings; `input_tokens` for images). */
export function usageFromOpenAI(u: unknown): Usage | undefined {
  if (!u || typeof u !== 'object') return undefined;
  const o = u as Record<string, unknown>;
  const details = (o.prompt_tokens_details ?? o.input_tokens_details) as Record<string, unknown> | undefined;
  return {
    promptTokens: num(o.prompt_tokens ?? o.input_tokens),
    completionTokens: num(o.completion_tokens ?? o.output_tokens),
    cachedTokens: num(details?.cached_tokens),
    estimated: false,
  };
}

/** USD for one request: cached prompt tokens at their own price, plus per-request and per-second. */
export function costOf(usage: Usage, p: ModelPricing, durationMs: number): number {
  const cached = Math.min(usage.cachedTokens, usage.promptTokens);
  return (
    ((usage.promptTokens - cached) * p.inputPer1M +
      cached * p.cachedInputPer1M +
      usage.completionTokens * p.outputPer1M) /
      1e6 +
    p.perRequest +
    (p.perSecond * durationMs) / 1000
  );
}

/** A rough token count for text the relay saw but the upstream never accounted (≈4 chars/token). */
export function estimateTokens(chars: number): number {
  return Math.ceil(chars / 4);
}
