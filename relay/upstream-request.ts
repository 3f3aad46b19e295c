import type { IncomingHttpHeaders } from 'node:http';
import { type Operation, type OperationTranslator, UntranslatableError } from '../providers/contract.ts';
import { upstreamHeaders } from './headers.ts';
import { responsesViaChat, speaksResponses } from './ingress/responses/via-chat.ts';
import type { ChannelRuntime } from './runtime.ts';

/** One attempt's request, as the channel's provider wants it. */
export interface UpstreamRequest {
  path: string;
  headers: Record<string, string | string[]>;
  body: string;
  /** Set when the provider translates this operation (answers must be translated back). */
  translator: OperationTranslator | undefined;
}

/**
 * Builds the upstream request for each candidate channel of one client request. OpenAI-shaped
 * upstreams get the client's body with the model renamed (serialised once per upstream model
 * name); translating providers get their native body. Throws the adapter's UntranslatableError.
 */
export class RequestBuilder {
  readonly #bodies = new Map<string, string>();
  readonly #body: Readonly<Record<string, unknown>>;
  readonly #operation: Operation;
  readonly #stream: boolean;
  readonly #incoming: IncomingHttpHeaders;
  /** Ask an OpenAI-shaped upstream for stream usage the client did not ask for (and hide it). */
  readonly injectUsage: boolean;

  constructor(
    body: Record<string, unknown>,
    operation: Operation,
    stream: boolean,
    incoming: IncomingHttpHeaders,
  ) {
    this.#body = body;
    this.#operation = operation;
    this.#stream = stream;
    this.#incoming = incoming;
    const so = body.stream_options as { include_usage?: unknown } | undefined;
    // Only chat and completions streams have stream_options.include_usage.
    this.injectUsage =
      stream && (operation === 'chat' || operation === 'completions') && so?.include_usage !== true;
  }

  for(ch: ChannelRuntime, upstreamModel: string): UpstreamRequest {
    // A Responses request to a provider without the Responses API goes through its chat operation.
    const viaChat = this.#operation === 'responses' && !speaksResponses(ch.adapter);
    const operation: Operation = viaChat ? 'chat' : this.#operation;
    const ctx = { operation, upstreamModel, stream: this.#stream };
    const translator = viaChat ? responsesViaChat(ch.adapter) : ch.adapter.translator(operation);
    if (translator && this.#stream && !translator.stream) {
      throw new UntranslatableError('stream', `provider ${ch.adapter.name} cannot stream this operation`);
    }
    const key = translator ? `${ch.adapter.name}\0${upstreamModel}` : upstreamModel;
    let body = this.#bodies.get(key);
    if (body === undefined) {
      body = JSON.stringify(
        translator ? translator.request(this.#body, ctx) : this.#passThrough(upstreamModel),
      );
      this.#bodies.set(key, body);
    }
    const path = ch.adapter.url(ch.target, ctx);
    let headers = upstreamHeaders(this.#incoming, ch.headers, Buffer.byteLength(body));
    if (ch.adapter.sign) {
      const url = ch.origin + path;
      const signed = ch.adapter.sign(
        { method: 'POST', url, headers: headers as Record<string, string>, body },
        ch.target,
      );
      headers = { ...headers, ...signed };
    }
    return { path, headers, body, translator };
  }

  #passThrough(upstreamModel: string): Record<string, unknown> {
    const out: Record<string, unknown> = { ...this.#body, model: upstreamModel };
    if (this.injectUsage) {
      const so = this.#body.stream_options as Record<string, unknown> | undefined;
      out.stream_options = { ...(so ?? {}), include_usage: true };
    }
    return out;
  }
}
