import type { IncomingHttpHeaders } from 'node:http';
import type { Readable } from 'node:stream';
import { type Operation, type OperationTranslator, UntranslatableError } from '../providers/contract.ts';
import { spliceBody } from './body-splice.ts';
import { upstreamHeaders } from './headers.ts';
import type { Ingress, NativeAnswer } from './ingress/contract.ts';
import { formOf } from './media-routes.ts';
import { type EncodedForm, encodeForm } from './multipart.ts';
import type { ChannelRuntime } from './runtime.ts';

/** One attempt's request, as the channel's provider wants it. */
export interface UpstreamRequest {
  path: string;
  headers: Record<string, string | string[]>;
  body: string;
  /** A multipart body, streamed from the relay's spool (then `body` is empty); a fresh one per call. */
  stream?: () => Readable;
  /** Set when the provider translates this operation (answers must be translated back). */
  translator: OperationTranslator | undefined;
  /** An ingress API's native answer passed through (how to read its usage and stream). */
  native?: NativeAnswer | undefined;
}

/**
 * Builds the upstream request for each candidate channel of one client request. OpenAI-shaped
 * upstreams get the client's body with the model renamed: its own text (`text`, what the parsed
 * `body` came from) spliced where it can be (relay/body-splice.ts), else the body re-serialised;
 * once per upstream model name. Translating providers get their native body. Throws the adapter's UntranslatableError.
 */
export class RequestBuilder {
  // Most requests build one body (and no form): the first body is kept in fields and the maps are
  // made when needed (an empty Map allocates its hash table at once).
  #firstKey: string | undefined;
  #firstBody = '';
  #bodies: Map<string, string> | undefined;
  #forms: Map<string, EncodedForm> | undefined;
  readonly #body: Readonly<Record<string, unknown>>;
  readonly #operation: Operation;
  readonly #stream: boolean;
  readonly #incoming: IncomingHttpHeaders;
  readonly #ingress: Ingress | undefined;
  readonly #text: string | undefined;
  /** Ask an OpenAI-shaped upstream for stream usage the client did not ask for (and hide it). */
  readonly injectUsage: boolean;

  constructor(
    body: Record<string, unknown>,
    operation: Operation,
    stream: boolean,
    incoming: IncomingHttpHeaders,
    ingress: Ingress | undefined,
    text?: string,
  ) {
    this.#body = body;
    this.#text = text;
    this.#operation = operation;
    this.#stream = stream;
    this.#incoming = incoming;
    this.#ingress = ingress;
    const so = body.stream_options as { include_usage?: unknown } | undefined;
    // Only chat and completions streams have stream_options.include_usage; an ingress API's
    // streams report usage by themselves (or its translation asks for it).
    this.injectUsage =
      stream &&
      (operation === 'chat' || operation === 'completions') &&
      so?.include_usage !== true &&
      !ingress;
  }

  /**
   * The operation a channel is asked for: the route's, or the one its ingress plan goes through
   * (e.g. a Responses request to a provider without the Responses API is sent as chat).
   */
  operationFor(ch: ChannelRuntime): Operation {
    return this.#plan(ch).operation;
  }

  #plan(ch: ChannelRuntime) {
    const plan = this.#ingress?.plan(ch.adapter, this.#operation);
    return { plan, operation: plan?.operation ?? this.#operation };
  }

  for(ch: ChannelRuntime, upstreamModel: string): UpstreamRequest {
    const { plan, operation } = this.#plan(ch);
    const ctx = { operation, upstreamModel, stream: this.#stream };
    const translator = plan ? plan.translator : ch.adapter.translator(operation);
    if (translator && this.#stream && !translator.stream) {
      throw new UntranslatableError('stream', `provider ${ch.adapter.name} cannot stream this operation`);
    }
    const form = formOf(this.#body);
    if (form && !translator) {
      // Forms go as they came, with the channel's model name (no provider translates one).
      this.#forms ??= new Map();
      let enc = this.#forms.get(upstreamModel);
      if (!enc) {
        enc = encodeForm(form, { model: upstreamModel });
        this.#forms.set(upstreamModel, enc);
      }
      const headers = upstreamHeaders(this.#incoming, ch.headers, enc.length);
      headers['content-type'] = enc.contentType;
      return { path: ch.adapter.url(ch.target, ctx), headers, body: '', stream: enc.body, translator };
    }
    const key = translator ? `${ch.adapter.name}\0${upstreamModel}` : upstreamModel;
    let body = key === this.#firstKey ? this.#firstBody : this.#bodies?.get(key);
    if (body === undefined) {
      body = translator
        ? JSON.stringify(translator.request(this.#body, ctx))
        : this.#passThrough(upstreamModel);
      if (this.#firstKey === undefined) {
        this.#firstKey = key;
        this.#firstBody = body;
      } else {
        this.#bodies ??= new Map();
        this.#bodies.set(key, body);
      }
    }
    const path = ch.adapter.url(ch.target, ctx);
    let headers = upstreamHeaders(
      this.#incoming,
      ch.headers,
      Buffer.byteLength(body),
      ch.adapter.clientHeaders,
    );
    for (const name of plan?.native?.clientHeaders ?? []) {
      const v = this.#incoming[name];
      if (typeof v === 'string') headers[name] = v;
    }
    if (ch.adapter.sign) {
      const url = ch.origin + path;
      const signed = ch.adapter.sign(
        { method: 'POST', url, headers: headers as Record<string, string>, body },
        ch.target,
      );
      headers = { ...headers, ...signed };
    }
    return { path, headers, body, translator, native: plan?.native };
  }

  #passThrough(upstreamModel: string): string {
    const spliced =
      this.#text === undefined ? undefined : spliceBody(this.#text, upstreamModel, this.injectUsage);
    return spliced ?? JSON.stringify(this.#renamed(upstreamModel));
  }

  #renamed(upstreamModel: string): Record<string, unknown> {
    const out: Record<string, unknown> = { ...this.#body, model: upstreamModel };
    if (this.injectUsage) {
      const so = this.#body.stream_options as Record<string, unknown> | undefined;
      out.stream_options = { ...(so ?? {}), include_usage: true };
    }
    return out;
  }
}
