import type { TokenCounts } from '../core/usage.ts';
import type { JobOperations } from './jobs.ts';

/**
 * The one provider adapter contract. A provider module (`providers/<name>/index.ts`) exports one
 * `ProviderAdapter`; `providers/index.ts` maps the Channel's `spec.provider` to it. The relay's
 * request path (relay/proxy.ts) knows no provider by name: it asks the adapter for headers, the
 * URL and, only when the adapter translates, for the native body, response, stream and errors.
 *
 * How a provider plugs in:
 * 1. `providers/<name>/` with one file per operation where they differ (chat.ts, embeddings.ts),
 *    each a PURE module over plain JSON (no Fastify, undici or Redis), plus `index.ts` exporting
 *    the adapter: `auth`, `url`, and for every operation it serves either nothing (the upstream
 *    speaks OpenAI's wire shape: the relay's zero-copy pass-through) or an `OperationTranslator`.
 * 2. One line in `providers/index.ts`, the provider name in core/config/schema.ts `PROVIDERS`.
 * 3. `mock-upstream/<name>/` answering that provider's native shape, auth header and errors.
 *
 * Canonical means OpenAI's API (chat completions, completions, embeddings, images): what the
 * relay's ingress speaks. Untranslatable input throws `UntranslatableError` naming the field; the
 * client gets a 400 in OpenAI's error shape with `param` set to it (never a silent drop).
 */

/** What a client asks for: one ingress operation. New operations are added here. */
export type Operation =
  | 'chat'
  | 'completions'
  | 'embeddings'
  | 'images'
  // Anthropic's Messages API (relay/ingress/messages.ts): native where `natively` says so.
  | 'messages'
  | 'count_tokens'
  // OpenAI's Responses API: native to openai/azure-openai, translated through chat elsewhere.
  | 'responses'
  // Media (multipart or binary answers) and scoring: OpenAI-shaped upstreams serve them natively.
  | MediaOperation;

/** Audio, image edits, moderations and rerank (relay/media-routes.ts). */
export type MediaOperation =
  | 'transcriptions'
  | 'translations'
  | 'speech'
  | 'moderations'
  | 'image_edits'
  | 'image_variations'
  | 'rerank';

/** What an adapter sees of a channel (from the rendered ChannelConfig). */
export interface ChannelTarget {
  /** The Channel's baseURL, without a trailing slash. */
  baseURL: string;
  /** The path part of baseURL without a trailing slash ('' or e.g. `/v1`). */
  basePath: string;
  /** The credential from the referenced Secret. Never logged, never in errors. */
  apiKey: string;
  /**
   * Every Secret key, for providers that sign with more than one (volcengine: `accessKeyId`,
   * `secretAccessKey`); absent for the others. Never logged, never in errors.
   */
  credentials?: Readonly<Record<string, string>>;
  /** `spec.azure.apiVersion` (azure-openai only): `v1` or a dated version. */
  azureApiVersion?: string;
}

/** Per-request facts an adapter needs to build the upstream request. */
export interface RequestContext {
  operation: Operation;
  /** The model as the upstream names it (the channel's `upstreamName`). */
  upstreamModel: string;
  /** The client asked for a stream (`stream: true` on a streamable operation). */
  stream: boolean;
}

/** Per-request facts for translating answers back. */
export interface ResponseContext {
  /** The model name the client asked for (echoed in canonical answers). */
  model: string;
  /** The client asked for `stream_options.include_usage`: emit the usage chunk (choices: []). */
  includeUsage: boolean;
  /**
   * The client's canonical request body, for answers that depend on it (e.g. embeddings'
   * `encoding_format`, which Gemini has no field for). Optional: adapters must cope without it.
   */
  request?: Readonly<Record<string, unknown>>;
}

/** A canonical error body's inner object: OpenAI's `{"error": {...}}`. */
export interface CanonicalError {
  message: string;
  type: string;
  code: string | null;
  param?: string | null;
}

/** The request as it will be sent, for adapters that sign requests (e.g. AK/SK HMAC). */
export interface SignableRequest {
  method: string;
  /** Full URL (origin + path + query). */
  url: string;
  /** Headers already set (lower-case names). */
  headers: Readonly<Record<string, string>>;
  body: string;
}

/**
 * An incremental translator of one native stream into OpenAI `chat.completion.chunk` (or
 * `text_completion`) JSON strings. The relay parses the upstream SSE (providers/sse.ts) and feeds
 * each event; it frames what comes back as `data: <json>\n\n` and sends `data: [DONE]` itself
 * after `end()`, only when `complete()` is true.
 */
export interface StreamTranslator {
  /** One native SSE event (`event:` name or undefined, `data:` text); returns chunks to emit. */
  push(event: string | undefined, data: string): string[];
  /** The upstream stream ended; returns whatever is left to emit (e.g. the usage chunk). */
  end(): string[];
  /** Did the native stream reach its documented end (e.g. `message_stop`)? */
  complete(): boolean;
  /**
   * push/end return client-ready SSE text (an ingress with its own event names, e.g. Messages):
   * the relay sends it as it is, without `data:` framing or `[DONE]`.
   */
  readonly framed?: boolean;
  /**
   * Framed only: the events that carried generated content so far, for an API whose events the
   * relay cannot read for content (the Responses API's `delta` strings). Absent: the relay reads them.
   */
  readonly contentEvents?: number;
  /** Usage seen so far (the final figures once the stream completed). */
  usage(): TokenCounts | undefined;
}

/** Translation of one operation between OpenAI's shape and the provider's native one. */
export interface OperationTranslator {
  /** Canonical request body -> native body. Throws UntranslatableError naming the field. */
  request(body: Readonly<Record<string, unknown>>, ctx: RequestContext): unknown;
  /** Native JSON answer (2xx) -> canonical answer. */
  response(native: unknown, ctx: ResponseContext): unknown;
  /** Native usage of a JSON answer. */
  usage(native: unknown): TokenCounts | undefined;
  /** A translator for one stream; absent when the operation does not stream. */
  stream?(ctx: ResponseContext): StreamTranslator;
}

export interface ProviderAdapter {
  /** The Channel `spec.provider` value. */
  readonly name: string;
  /** Can this provider serve the operation at all? (A candidate that cannot is skipped.) */
  supports(op: Operation): boolean;
  /**
   * Credential headers for the channel, computed once per config load (lower-case names). They
   * win over the Channel's static `headers` and over any client header.
   */
  auth(channel: ChannelTarget): Record<string, string>;
  /** Optional signing hook, called per attempt with the final request; returns headers to add. */
  sign?(req: SignableRequest, channel: ChannelTarget): Record<string, string>;
  /** Path and query under the channel's origin for one request (basePath included). */
  url(channel: ChannelTarget, ctx: RequestContext): string;
  /**
   * Does the upstream speak this non-OpenAI ingress operation (e.g. `messages`) itself? Then the
   * client's body passes through (model renamed); otherwise the ingress translates it to chat.
   */
  natively?(op: Operation): boolean;
  /** Client request headers this provider's API reads (e.g. `anthropic-beta`), passed on to it. */
  readonly clientHeaders?: readonly string[];
  /** The operation's translator, or undefined when the upstream speaks OpenAI's shape (pass-through). */
  translator(op: Operation): OperationTranslator | undefined;
  /**
   * Native error body (non-2xx) -> OpenAI's error object; only called for translated operations
   * (pass-through errors reach the client byte for byte). The client keeps the upstream status.
   */
  errorOf?(status: number, native: unknown): CanonicalError;
  /**
   * Provider-specific failure statuses (e.g. Anthropic's 529 overloaded) counted like
   * `cooldown.onStatus`: true counts the status as a failure, undefined defers to the channel.
   */
  retryable?(status: number): boolean | undefined;
  /** Async media jobs (video, image tasks), when the provider runs them (providers/jobs.ts). */
  readonly jobs?: JobOperations;
}

/**
 * The canonical request says something the target cannot (e.g. `n > 1` to Anthropic). The relay
 * answers 400 `invalid_request_error`, code `unsupported_parameter`, `param` = `field`, unless
 * another candidate channel for the model can serve it.
 */
export class UntranslatableError extends Error {
  readonly field: string;
  constructor(field: string, message: string) {
    super(message);
    this.name = 'UntranslatableError';
    this.field = field;
  }
}

/** An OpenAI-style error object for a status, for adapters without a native error to read. */
export function genericError(status: number, message: string): CanonicalError {
  const type =
    status === 401
      ? 'authentication_error'
      : status === 403
        ? 'permission_error'
        : status === 404
          ? 'not_found_error'
          : status === 429
            ? 'rate_limit_error'
            : status >= 500
              ? 'upstream_error'
              : 'invalid_request_error';
  return { message, type, code: `upstream_${status}` };
}
