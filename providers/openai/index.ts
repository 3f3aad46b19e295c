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
  // Not used: these upstreams get Messages requests translated to chat (relay/ingress/messages.ts).
  messages: '/messages',
  count_tokens: '/messages/count_tokens',
  transcriptions: '/audio/transcriptions',
  translations: '/audio/translations',
  speech: '/audio/speech',
  moderations: '/moderations',
  image_edits: '/images/edits',
  image_variations: '/images/variations',
  rerank: '/rerank',
  responses: '/responses',
};

/** OpenAI's own API has no rerank; vLLM and other OpenAI-compatible servers serve `/rerank`. */
const NOT_ON_OPENAI: ReadonlySet<Operation> = new Set(['rerank']);

/** `unsupported`: operations this upstream lacks (a Responses request is then translated through chat). */
export function openAIAdapter(
  name: string,
  unsupported: ReadonlySet<Operation> = new Set(),
): ProviderAdapter {
  return {
    name,
    supports: (op) => !unsupported.has(op),
    auth: (ch: ChannelTarget) => ({ authorization: `Bearer ${ch.apiKey}` }),
    url: (ch: ChannelTarget, ctx: RequestContext) => ch.basePath + OPENAI_PATHS[ctx.operation],
    translator: () => undefined,
    jobs: openAIVideoJobs((ch) => ch.basePath),
  };
}

export const openai = openAIAdapter('openai', NOT_ON_OPENAI);
// vLLM, Ollama, DeepSeek, ... speak chat completions; few serve /v1/responses, and none keeps state.
export const openaiCompatible = openAIAdapter('openai-compatible', new Set(['responses']));
