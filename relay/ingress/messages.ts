import { usageFromOpenAI } from '../../core/usage.ts';
import { errorBody, errorEvent } from '../../providers/anthropic/ingress/errors.ts';
import { chatFromMessages } from '../../providers/anthropic/ingress/request.ts';
import { messageFromChat } from '../../providers/anthropic/ingress/response.ts';
import { MessagesFromChatStream } from '../../providers/anthropic/ingress/stream.ts';
import { usageOf } from '../../providers/anthropic/usage.ts';
import {
  type CanonicalError,
  type Operation,
  type OperationTranslator,
  type StreamTranslator,
  UntranslatableError,
} from '../../providers/contract.ts';
import type { Ingress, NativeAnswer } from './contract.ts';
import { NativeMessagesStream } from './native-stream.ts';

type Json = Record<string, unknown>;

/**
 * The Anthropic Messages ingress (`POST /v1/messages`, `/v1/messages/count_tokens`): natively to
 * providers that speak it (the body passed through, model renamed, the client's
 * `anthropic-version` kept), translated through chat completions for the others.
 */
export const messagesIngress = {
  plan(adapter, operation) {
    if (adapter.natively?.(operation)) return { operation, translator: undefined, native: native(operation) };
    if (operation !== 'messages') {
      throw new UntranslatableError('model', `only channels that speak the Messages API serve ${operation}`);
    }
    return { operation: 'chat', translator: viaChat(adapter.translator('chat')) };
  },
  errorBody(status, error, nativeBody) {
    return errorBody(status, upstreamMessage(error, nativeBody));
  },
  streamError: (message: string) => errorEvent(message),
} satisfies Ingress;

const NATIVE_MESSAGES: NativeAnswer = {
  clientHeaders: ['anthropic-version'],
  usage: (u) => (u !== null && typeof u === 'object' ? { ...usageOf(u), estimated: false } : undefined),
  stream: () => new NativeMessagesStream(),
};
const NATIVE_COUNT: NativeAnswer = { ...NATIVE_MESSAGES, usage: () => undefined, unbilled: true };

const native = (op: Operation) => (op === 'count_tokens' ? NATIVE_COUNT : NATIVE_MESSAGES);

/** An OpenAI-shaped upstream's own error message, when the adapter had none to give. */
function upstreamMessage(error: CanonicalError, body: unknown): string {
  const e = (body as { error?: { message?: unknown } } | null | undefined)?.error;
  return error.code?.startsWith('upstream_') && typeof e?.message === 'string' ? e.message : error.message;
}

/**
 * Messages -> chat completions -> the channel's chat translation (`inner`; none for upstreams
 * that speak chat completions) and the answer back the same way.
 */
function viaChat(inner: OperationTranslator | undefined): OperationTranslator {
  return {
    request(body, ctx) {
      const chat = chatFromMessages(body as Json);
      if (inner) return inner.request(chat, { ...ctx, operation: 'chat' });
      const out: Json = { ...chat, model: ctx.upstreamModel };
      if (ctx.stream) out.stream_options = { include_usage: true };
      return out;
    },
    response(nativeBody, ctx) {
      const chat = inner ? inner.response(nativeBody, ctx) : nativeBody;
      return messageFromChat(chat as Json, { model: ctx.model });
    },
    usage: (nativeBody) =>
      inner ? inner.usage(nativeBody) : usageFromOpenAI((nativeBody as Json | null)?.usage),
    stream: (ctx) => new MessagesStream(inner?.stream?.({ ...ctx, includeUsage: true }), ctx.model),
  };
}

/** A chat stream (native through `inner`, or OpenAI's own chunks) out as Messages events. */
class MessagesStream implements StreamTranslator {
  readonly framed = true;
  readonly #inner: StreamTranslator | undefined;
  readonly #out: MessagesFromChatStream;

  constructor(inner: StreamTranslator | undefined, model: string) {
    this.#inner = inner;
    this.#out = new MessagesFromChatStream({ model });
  }

  push(event: string | undefined, data: string): string[] {
    const inner = this.#inner;
    if (!inner) return [data.trim() === '[DONE]' ? this.#out.finish() : this.#out.chunk(data)];
    let text = this.#chunks(inner.push(event, data));
    if (inner.complete()) text += this.#chunks(inner.end()) + this.#out.finish();
    return [text];
  }

  end(): string[] {
    const inner = this.#inner;
    if (!inner || this.#out.complete()) return [];
    let text = this.#chunks(inner.end());
    if (inner.complete()) text += this.#out.finish();
    return [text];
  }

  complete(): boolean {
    return this.#out.complete();
  }

  usage() {
    return this.#inner?.usage() ?? this.#out.usage();
  }

  #chunks(chunks: string[]): string {
    let text = '';
    for (const c of chunks) text += this.#out.chunk(c);
    return text;
  }
}
