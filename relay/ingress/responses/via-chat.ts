import type { TokenCounts } from '../../../core/usage.ts';
import { usageFromOpenAI } from '../../../core/usage.ts';
import type {
  OperationTranslator,
  ProviderAdapter,
  RequestContext,
  StreamTranslator,
} from '../../../providers/contract.ts';
import { responsesToChat } from './request.ts';
import { chatToResponse } from './response.ts';

/**
 * The Responses API over a channel that does not speak it: Responses request -> chat completions
 * request -> the channel's own chat adapter (its translator, or none for an OpenAI-shaped
 * upstream), and the chat answer back to a Responses object. The stream side yields the chat
 * adapter's chunks; relay/ingress/responses/client-streams.ts turns them into Responses events.
 */

type Json = Record<string, unknown>;

/** Does this channel's provider serve `/v1/responses` itself (openai, azure-openai)? */
export function speaksResponses(adapter: ProviderAdapter): boolean {
  return adapter.supports('responses');
}

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
    // The chat chunks, with the usage chunk (response.completed carries usage).
    stream: (ctx) => (chat?.stream ? chat.stream({ ...ctx, includeUsage: true }) : new ChatChunks()),
  };
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
