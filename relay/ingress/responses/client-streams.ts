import { type Usage, usageFromOpenAI } from '../../../core/usage.ts';
import type { StreamTranslator } from '../../../providers/contract.ts';
import { SseParser } from '../../../providers/sse.ts';
import type { ClientStream } from '../../client-stream.ts';
import type { EchoContext } from './response.ts';
import { ResponsesEvents, sseOf } from './stream.ts';

/**
 * The two ways a Responses stream reaches the client (relay/client-stream.ts's contract): a
 * native one (openai, azure-openai) passed on event by event, read only for its id, its end and
 * its usage; and a translated one, the channel's chat chunks turned into Responses events. Neither
 * ends with `data: [DONE]`: a Responses stream ends with its `response.completed` event.
 */

const TYPE = /"type"\s*:\s*"([^"]+)"/;
const CONTENT = /"delta"\s*:\s*"[^"]/;
const ENDS = new Set(['response.completed', 'response.incomplete', 'response.failed', 'error']);

/** A native Responses stream: each event as it came (re-framed, data untouched). */
export class NativeResponsesStream implements ClientStream {
  readonly #parser = new SseParser();
  #done = false;
  #usage: Usage | undefined;
  objectId: string | undefined;
  contentEvents = 0;

  push(chunk: Buffer): string {
    return this.#take(this.#parser.push(chunk));
  }

  finish(): string {
    return this.#take(this.#parser.end());
  }

  get done() {
    return this.#done;
  }

  usage() {
    return this.#usage;
  }

  #take(events: { event: string | undefined; data: string }[]): string {
    let out = '';
    for (const e of events) {
      if (this.#done) break;
      const type = e.event ?? TYPE.exec(e.data.slice(0, 200))?.[1];
      if (type?.endsWith('.delta')) {
        if (CONTENT.test(e.data)) this.contentEvents++;
      } else if (type === 'response.created' || (type !== undefined && ENDS.has(type))) {
        this.#read(type, e.data);
      }
      out += `${e.event !== undefined ? `event: ${e.event}\n` : ''}data: ${e.data}\n\n`;
    }
    return out;
  }

  #read(type: string, data: string) {
    if (ENDS.has(type)) this.#done = true;
    let response: { id?: unknown; usage?: unknown } | undefined;
    try {
      response = (JSON.parse(data) as { response?: typeof response }).response;
    } catch {
      return;
    }
    if (type === 'response.created' && typeof response?.id === 'string') this.objectId = response.id;
    const u = usageFromOpenAI(response?.usage);
    if (u) this.#usage = u;
  }
}

/** A translated stream: the chat adapter's chunks as Responses events. */
export class TranslatedResponsesStream implements ClientStream {
  readonly #parser = new SseParser();
  readonly #chat: StreamTranslator;
  readonly #events: ResponsesEvents;
  #done = false;
  readonly objectId: string | undefined = undefined; // translated responses are not stored upstream: never pinned

  constructor(chat: StreamTranslator, ctx: EchoContext) {
    this.#chat = chat;
    this.#events = new ResponsesEvents(ctx);
  }

  push(chunk: Buffer): string {
    if (this.#done) return '';
    return this.#emit(this.#parser.push(chunk), false);
  }

  finish(): string {
    if (this.#done) return '';
    return this.#emit(this.#parser.end(), true);
  }

  get done() {
    return this.#done;
  }

  get contentEvents() {
    return this.#events.contentEvents;
  }

  usage(): Usage | undefined {
    const u = this.#chat.usage();
    return u && { ...u, estimated: false };
  }

  #emit(native: { event: string | undefined; data: string }[], ended: boolean): string {
    let out = '';
    const chunks = native.flatMap((e) => this.#chat.push(e.event, e.data));
    if (this.#chat.complete() || ended) chunks.push(...this.#chat.end());
    for (const c of chunks) out += this.#chunk(c);
    // Read after end(): a stream without an end marker (Gemini's) is complete once it ended.
    if (this.#chat.complete() && !this.#done) {
      this.#done = true;
      for (const e of this.#events.finish()) out += sseOf(e);
    }
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

/** The client stream of a Responses request: native when the channel speaks it, else translated. */
export function responsesClientStream(chat: StreamTranslator | undefined, ctx: EchoContext): ClientStream {
  return chat ? new TranslatedResponsesStream(chat, ctx) : new NativeResponsesStream();
}
