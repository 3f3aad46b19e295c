import { type Usage, usageFromOpenAI } from '../../../core/usage.ts';
import { SseParser } from '../../../providers/sse.ts';
import type { ClientStream } from '../../client-stream.ts';

/**
 * A native Responses stream (openai, azure-openai) on its way to the client (the NativeAnswer's
 * stream, relay/ingress/contract.ts): passed on event by event, read only for the response's id
 * (pinned), its end and its usage. It ends with `response.completed` (or another terminal
 * event), never `data: [DONE]`. The translated side is via-chat.ts's ResponsesFromChatStream.
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
