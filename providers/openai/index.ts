import type { ChannelTarget, Operation, ProviderAdapter, RequestContext } from '../contract.ts';
import { openAIVideoJobs } from './videos.ts';

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
};

export function openAIAdapter(name: string): ProviderAdapter {
  return {
    name,
    supports: () => true,
    auth: (ch: ChannelTarget) => ({ authorization: `Bearer ${ch.apiKey}` }),
    url: (ch: ChannelTarget, ctx: RequestContext) => ch.basePath + OPENAI_PATHS[ctx.operation],
    translator: () => undefined,
    jobs: openAIVideoJobs((ch) => ch.basePath),
  };
}

export const openai = openAIAdapter('openai');
export const openaiCompatible = openAIAdapter('openai-compatible');
