import { StringDecoder } from 'node:string_decoder';

/**
 * A plain SSE event parser (the WHATWG event-stream rules: LF, CRLF or CR line ends, `event:`,
 * multi-line `data:`, comments ignored) for translated streams: bytes in, `{event, data}` out.
 * Pass-through streams never come here (relay/sse.ts forwards them without re-framing).
 */

export interface SseEvent {
  event: string | undefined;
  data: string;
}

/** The most one event may grow to before the stream is refused (a broken or hostile upstream). */
export const MAX_EVENT_CHARS = 8 * 1024 * 1024;

export class SseParser {
  readonly #decoder = new StringDecoder('utf8');
  #line = '';
  #afterCR = false;
  #event: string | undefined;
  #data: string[] = [];
  #size = 0;

  /** Feed bytes; returns the events completed by them. Throws when one event is too big. */
  push(chunk: Buffer | string): SseEvent[] {
    return this.#scan(typeof chunk === 'string' ? chunk : this.#decoder.write(chunk));
  }

  /** The stream ended: an event without its closing blank line is still dispatched. */
  end(): SseEvent[] {
    const out = this.#scan(this.#decoder.end());
    if (this.#line !== '') this.#field(this.#line);
    this.#line = '';
    this.#dispatch(out);
    return out;
  }

  #scan(text: string): SseEvent[] {
    const out: SseEvent[] = [];
    let start = 0;
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (c !== 10 && c !== 13) continue;
      if (c === 10 && this.#afterCR && i === start && this.#line === '') {
        // the LF of a CRLF whose CR ended the previous line
        this.#afterCR = false;
        start = i + 1;
        continue;
      }
      const line = this.#line + text.slice(start, i);
      this.#line = '';
      start = i + 1;
      this.#afterCR = c === 13;
      if (line === '') this.#dispatch(out);
      else this.#field(line);
    }
    if (start < text.length) {
      this.#afterCR = false;
      this.#line += text.slice(start);
      if (this.#line.length + this.#size > MAX_EVENT_CHARS) throw new Error('SSE event too large');
    }
    return out;
  }

  #field(line: string) {
    if (line.charCodeAt(0) === 58) return; // a comment
    const colon = line.indexOf(':');
    const name = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.charCodeAt(0) === 32) value = value.slice(1);
    if (name === 'data') {
      this.#data.push(value);
      this.#size += value.length;
      if (this.#size > MAX_EVENT_CHARS) throw new Error('SSE event too large');
    } else if (name === 'event') this.#event = value;
  }

  #dispatch(out: SseEvent[]) {
    if (this.#data.length > 0) out.push({ event: this.#event, data: this.#data.join('\n') });
    this.#event = undefined;
    this.#data = [];
    this.#size = 0;
  }
}
