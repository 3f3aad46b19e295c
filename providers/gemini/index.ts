// The `gemini` provider (Google's Gemini API, generativelanguage.googleapis.com): chat completions
// and embeddings, translated both ways; Veo video as async jobs (veo.ts). Auth is `x-goog-api-key`; URLs are
// `{baseURL}/v1beta/models/{upstreamName}:{method}` (endpoint.ts).
import { randomUUID } from 'node:crypto';
import type {
  ChannelTarget,
  Operation,
  OperationTranslator,
  ProviderAdapter,
  RequestContext,
  ResponseContext,
} from '../contract.ts';
import { toNativeChat } from './chat-request.ts';
import { fromNativeChat } from './chat-response.ts';
import { GeminiChatStream } from './chat-stream.ts';
import { fromNativeEmbeddings, toNativeEmbeddings } from './embeddings.ts';
import { geminiAuthHeaders, geminiPath } from './endpoint.ts';
import { errorOf, isRetryable } from './errors.ts';
import { asObject, type Json } from './json.ts';
import { usageOf } from './usage.ts';
import { veoJobs } from './veo.ts';

const now = () => Math.floor(Date.now() / 1000);
const completionId = () => `chatcmpl-${randomUUID().replaceAll('-', '')}`;

const chat: OperationTranslator = {
  request: (body, ctx) => toNativeChat(body as Json, { upstreamModel: ctx.upstreamModel }),
  response: (native, ctx) =>
    fromNativeChat(asObject(native) ?? {}, { model: ctx.model, id: completionId(), created: now() }),
  usage: usageOf,
  stream: (ctx: ResponseContext) =>
    new GeminiChatStream({
      model: ctx.model,
      id: completionId(),
      created: now(),
      includeUsage: ctx.includeUsage,
    }),
};

/**
 * Embeddings: the answer needs the client's `encoding_format` and input texts (for the usage
 * estimate, Gemini reports none), from ResponseContext.request. Billing falls back to the relay's
 * own estimate (usage() reports nothing rather than a guess).
 */
const embeddings: OperationTranslator = {
  request: (body, ctx) => toNativeEmbeddings(body as Json, { upstreamModel: ctx.upstreamModel }).body,
  response: (native, ctx) => {
    const input = ctx.request?.['input'];
    const texts =
      typeof input === 'string'
        ? [input]
        : Array.isArray(input)
          ? input.filter((t) => typeof t === 'string')
          : [];
    return fromNativeEmbeddings(asObject(native) ?? {}, {
      model: ctx.model,
      encodingFormat: ctx.request?.['encoding_format'],
      texts,
    });
  },
  usage: () => undefined,
};

const SUPPORTED: ReadonlySet<Operation> = new Set(['chat', 'embeddings']);

export const gemini: ProviderAdapter = {
  name: 'gemini',
  supports: (op) => SUPPORTED.has(op),
  auth: (ch: ChannelTarget) => geminiAuthHeaders(ch.apiKey),
  url: (ch: ChannelTarget, ctx: RequestContext) =>
    geminiPath(
      ch.basePath,
      ctx.upstreamModel,
      ctx.operation === 'embeddings'
        ? 'batchEmbedContents'
        : ctx.stream
          ? 'streamGenerateContent'
          : 'generateContent',
    ),
  translator: (op) => (op === 'chat' ? chat : op === 'embeddings' ? embeddings : undefined),
  errorOf,
  retryable: (status) => (isRetryable(status) ? true : undefined),
  jobs: veoJobs,
};
