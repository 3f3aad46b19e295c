import type { ChannelTarget, Operation, ProviderAdapter, RequestContext } from '../contract.ts';

/**
 * OpenAI and every OpenAI-compatible upstream (vLLM, Ollama, DeepSeek, ...): Bearer key, paths
 * under baseURL, the canonical shape on the wire, so nothing is translated and the relay stays
 * on its zero-copy pass-through path.
 */

/** Path of each operation under an OpenAI-style base URL (shared with azure-openai). */
export const OPENAI_PATHS: Readonly<Record<Operation, string>> = {
  chat: '/chat/completions',
  completions: '/completions',
  embeddings: '/embeddings',
  images: '/images/generations',
  responses: '/responses',
};

/** `nativeResponses`: the upstream serves the Responses API (else it is translated through chat). */
export function openAIAdapter(name: string, nativeResponses: boolean): ProviderAdapter {
  return {
    name,
    supports: (op) => op !== 'responses' || nativeResponses,
    auth: (ch: ChannelTarget) => ({ authorization: `Bearer ${ch.apiKey}` }),
    url: (ch: ChannelTarget, ctx: RequestContext) => ch.basePath + OPENAI_PATHS[ctx.operation],
    translator: () => undefined,
  };
}

export const openai = openAIAdapter('openai', true);
// vLLM, Ollama, DeepSeek, ... speak chat completions; few serve /v1/responses, and none keeps state.
export const openaiCompatible = openAIAdapter('openai-compatible', false);
