import type { ChannelTarget, Operation, ProviderAdapter, RequestContext } from '../contract.ts';
import { OPENAI_PATHS } from '../openai/index.ts';
import { azureVideoPrefix, openAIVideoJobs } from '../openai/videos.ts';

/**
 * Azure OpenAI: the `api-key` header and OpenAI's bodies. `azure.apiVersion` picks the URL:
 * - `v1` (the default, Azure's GA v1 API): `{baseURL}/openai/v1/chat/completions`, the model
 *   (deployment name) in the body, as with OpenAI;
 * - a dated version (`2024-10-21`, `2025-04-01-preview`):
 *   `{baseURL}/openai/deployments/{upstreamName}/chat/completions?api-version=2024-10-21`.
 * Same bodies and streams as OpenAI either way, so nothing is translated. The Responses API has no
 * deployment path: with a dated version it is `{baseURL}/openai/responses?api-version=...`, the
 * model (deployment name) in the body, as Azure's Responses API reference has it.
 */

export const DEFAULT_AZURE_API_VERSION = 'v1';

/** Azure OpenAI has no moderations (its content filter is built in), image variations or rerank. */
const NOT_ON_AZURE: ReadonlySet<Operation> = new Set(['moderations', 'image_variations', 'rerank']);

export const azureOpenAI: ProviderAdapter = {
  name: 'azure-openai',
  supports: (op) => !NOT_ON_AZURE.has(op),
  auth: (ch: ChannelTarget) => ({ 'api-key': ch.apiKey }),
  url: (ch: ChannelTarget, ctx: RequestContext) => {
    const op = OPENAI_PATHS[ctx.operation];
    const version = ch.azureApiVersion ?? DEFAULT_AZURE_API_VERSION;
    if (version === 'v1') return `${ch.basePath}/openai/v1${op}`;
    const query = `?api-version=${encodeURIComponent(version)}`;
    if (ctx.operation === 'responses') return `${ch.basePath}/openai${op}${query}`;
    const deployment = encodeURIComponent(ctx.upstreamModel);
    return `${ch.basePath}/openai/deployments/${deployment}${op}${query}`;
  },
  translator: () => undefined,
  jobs: openAIVideoJobs(azureVideoPrefix),
};
