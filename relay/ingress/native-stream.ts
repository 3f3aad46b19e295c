import { StringDecoder } from 'node:string_decoder';
import type { Usage } from '../../core/usage.ts';
import { usageOf } from '../../providers/anthropic/usage.ts';
import { SseParser } from '../../providers/sse.ts';
import type { ClientStream } from '../client-stream.ts';

/**
 * A native Messages stream passed through to a Messages client byte for byte (whatever its
 * framing or chunking), watched on its way: `message_stop` ends it, `message_start` and
 * `message_delta` carry the usage (cumulative, as Anthropic reports it), content block events
 * are the content a client that leaves is billed for. An `error` event goes to the client as it
 * came and leaves the stream incomplete.
 */
export class NativeMessagesStream implements ClientStream {
  readonly #decoder = new StringDecoder('utf8');
  readonly #parser = new SseParser();
  readonly #usage: Record<string, number> = {};
  #sawUsage = false;
  done = false;
  contentEvents = 0;

  // Bytes after `message_stop` still pass (a CRLF split across chunks ends the event at its CR,
  // the LF comes next); only the watching stops.
  push(chunk: Buffer): string {
    const text = this.#decoder.write(chunk);
    if (!this.done) this.#watch(this.#parser.push(text));
    return text;
  }

  finish(): string {
    const text = this.#decoder.end();
    if (!this.done) this.#watch([...this.#parser.push(text), ...this.#parser.end()]);
    return text;
  }

  usage(): Usage | undefined {
    return this.#sawUsage ? { ...usageOf(this.#usage), estimated: false } : undefined;
  }

  #watch(events: { event: string | undefined; data: string }[]) {
    for (const e of events) {
      switch (e.event) {
        case 'content_block_delta':
          this.contentEvents++;
          break;
        case 'message_start':
          this.#merge(e.data, 'message');
          break;
        case 'message_delta':
          this.#merge(e.data);
          break;
        case 'message_stop':
          this.done = true;
          return;
      }
    }
  }

  #merge(data: string, under?: string) {
    try {
      const d = JSON.parse(data) as Record<string, { usage?: unknown } | undefined> & { usage?: unknown };
      const u = under ? d[under]?.usage : d.usage;
      if (u === null || typeof u !== 'object') return;
      this.#sawUsage = true;
      for (const [k, v] of Object.entries(u)) if (typeof v === 'number') this.#usage[k] = v;
    } catch {
      // not JSON: the client sees it as it came; there is no usage in it to read
    }
  }
}
