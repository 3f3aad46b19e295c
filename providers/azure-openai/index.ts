import type { ChannelTarget, ProviderAdapter, RequestContext } from '../contract.ts';
import { OPENAI_PATHS } from '../openai/index.ts';
import { azureVideoPrefix, openAIVideoJobs } from '../openai/videos.ts';

/**
 * Azure OpenAI: the `api-key` header and OpenAI's bodies. `azure.apiVersion` picks the URL:
 * - `v1` (the default, Azure's GA v1 API): `{baseURL}/openai/v1/chat/completions`, the model
 *   (deployment name) in the body, as with OpenAI;
 * - a dated version (`2024-10-21`, `2025-04-01-preview`):
 *   `{baseURL}/openai/deployments/{upstreamName}/chat/completions?api-version=2024-10-21`.
 * Same bodies and streams as OpenAI either way, so nothing is translated.
 */

export const DEFAULT_AZURE_API_VERSION = 'v1';

export const azureOpenAI: ProviderAdapter = {
  name: 'azure-openai',
  supports: () => true,
  auth: (ch: ChannelTarget) => ({ 'api-key': ch.apiKey }),
  url: (ch: ChannelTarget, ctx: RequestContext) => {
    const op = OPENAI_PATHS[ctx.operation];
    const version = ch.azureApiVersion ?? DEFAULT_AZURE_API_VERSION;
    if (version === 'v1') return `${ch.basePath}/openai/v1${op}`;
    const deployment = encodeURIComponent(ctx.upstreamModel);
    return `${ch.basePath}/openai/deployments/${deployment}${op}?api-version=${encodeURIComponent(version)}`;
  },
  translator: () => undefined,
  jobs: openAIVideoJobs(azureVideoPrefix),
};
