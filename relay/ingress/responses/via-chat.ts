import type { TokenCounts } from '../../../core/usage.ts';
import { usageFromOpenAI } from '../../../core/usage.ts';
import type {
  OperationTranslator,
  ProviderAdapter,
  RequestContext,
  StreamTranslator,
} from '../../../providers/contract.ts';
import { responsesToChat } from './request.ts';
import { chatToResponse, type EchoContext } from './response.ts';
import { ResponsesEvents, sseOf } from './stream.ts';

/**
 * The Responses API over a channel that does not speak it: Responses request -> chat completions
 * request -> the channel's own chat adapter (its translator, or none for an OpenAI-shaped
 * upstream), and the chat answer back to a Responses object. The stream side turns the chat
 * adapter's chunks into Responses events (a framed StreamTranslator, like the Messages one).
 */

type Json = Record<string, unknown>;

const cache = new WeakMap<ProviderAdapter, OperationTranslator>();

/** The Responses translator for a provider that does not speak the Responses API (cached). */
export function responsesViaChat(adapter: ProviderAdapter): OperationTranslator {
  let t = cache.get(adapter);
  if (!t) {
    t = compose(adapter.translator('chat'));
    cache.set(adapter, t);
  }
  return t;
}

function compose(chat: OperationTranslator | undefined): OperationTranslator {
  const chatCtx = (ctx: RequestContext): RequestContext => ({ ...ctx, operation: 'chat' });
  return {
    request(body, ctx) {
      const req = responsesToChat(body);
      if (chat) return chat.request(req, chatCtx(ctx));
      const out: Json = { ...req, model: ctx.upstreamModel };
      if (ctx.stream) out.stream_options = { include_usage: true }; // usage for response.completed
      return out;
    },
    response(native, ctx) {
      const answer = chat ? chat.response(native, { ...ctx, includeUsage: false }) : native;
      return chatToResponse(answer, { model: ctx.model, request: ctx.request ?? {} });
    },
    usage(native) {
      if (chat) return chat.usage(native);
      return usageFromOpenAI((native as { usage?: unknown } | null)?.usage);
    },
    // The chat chunks, with the usage chunk (response.completed carries usage), as Responses events.
    stream: (ctx) =>
      new ResponsesFromChatStream(
        chat?.stream ? chat.stream({ ...ctx, includeUsage: true }) : new ChatChunks(),
        { model: ctx.model, request: ctx.request ?? {} },
      ),
  };
}

/**
 * A chat stream (the channel's chunks through its chat translator, or OpenAI's own) out as
 * Responses SSE events, framed; it ends with `response.completed` once the chat stream completed
 * (a stream without an end marker, Gemini's, completes at its end), never with `data: [DONE]`.
 */
export class ResponsesFromChatStream implements StreamTranslator {
  readonly framed = true;
  readonly #chat: StreamTranslator;
  readonly #events: ResponsesEvents;
  #finished = false;

  constructor(chat: StreamTranslator, ctx: EchoContext) {
    this.#chat = chat;
    this.#events = new ResponsesEvents(ctx);
  }

  push(event: string | undefined, data: string): string[] {
    if (this.#finished) return [];
    let text = this.#chunks(this.#chat.push(event, data));
    if (this.#chat.complete()) text += this.#chunks(this.#chat.end()) + this.#finish();
    return [text];
  }

  end(): string[] {
    if (this.#finished) return [];
    let text = this.#chunks(this.#chat.end());
    // Read after end(): a stream without an end marker (Gemini's) is complete once it ended.
    if (this.#chat.complete()) text += this.#finish();
    return [text];
  }

  complete(): boolean {
    return this.#finished;
  }

  /** Non-empty deltas sent (the relay cannot tell a Responses delta from its text). */
  get contentEvents(): number {
    return this.#events.contentEvents;
  }

  usage(): TokenCounts | undefined {
    return this.#chat.usage();
  }

  #finish(): string {
    this.#finished = true;
    let out = '';
    for (const e of this.#events.finish()) out += sseOf(e);
    return out;
  }

  #chunks(chunks: string[]): string {
    let out = '';
    for (const text of chunks) out += this.#chunk(text);
    return out;
  }

  #chunk(text: string): string {
    let c: unknown;
    try {
      c = JSON.parse(text);
    } catch {
      return '';
    }
    const error = (c as { error?: unknown } | null)?.error;
    if (error != null) {
      // The upstream's own error event, already in OpenAI's shape: the stream ends with it.
      return `event: error\ndata: ${JSON.stringify({ type: 'error', sequence_number: 0, error })}\n\n`;
    }
    let out = '';
    for (const e of this.#events.chunk(c)) out += sseOf(e);
    return out;
  }
}

/** An OpenAI-shaped chat stream as chunks: each `data:` JSON as it came, `[DONE]` its end. */
export class ChatChunks implements StreamTranslator {
  #done = false;
  #usage: TokenCounts | undefined;
  push(_event: string | undefined, data: string): string[] {
    if (this.#done) return [];
    if (data.trim() === '[DONE]') {
      this.#done = true;
      return [];
    }
    if (data.includes('"usage"')) {
      try {
        const u = usageFromOpenAI((JSON.parse(data) as { usage?: unknown }).usage);
        if (u) this.#usage = u;
      } catch {
        // not JSON: passed on, the client-side parser drops it
      }
    }
    return [data];
  }
  end(): string[] {
    return [];
  }
  complete(): boolean {
    return this.#done;
  }
  usage(): TokenCounts | undefined {
    return this.#usage;
  }
}
