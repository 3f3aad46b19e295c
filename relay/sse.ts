import { StringDecoder } from 'node:string_decoder';
import { type Usage, usageFromOpenAI } from '../core/usage.ts';

/**
 * Watches an upstream SSE stream on its way to the client without buffering it: complete events
 * are forwarded as they arrive; the usage chunk is captured (and dropped when the relay asked for
 * it on the client's behalf); content chunks are counted so a client that leaves mid-stream can
 * be billed for what it received.
 */
export class SseTap {
  usage: Usage | undefined;
  sawDone = false;
  /** Events that carried generated content (≈ tokens for OpenAI-style streams). */
  contentEvents = 0;
  readonly #hideUsageChunk: boolean;
  readonly #decoder = new StringDecoder('utf8');
  #pending = '';

  constructor(hideUsageChunk: boolean) {
    this.#hideUsageChunk = hideUsageChunk;
  }

  /** Feed upstream bytes; returns the text to forward now ('' when none). */
  push(chunk: Buffer): string {
    const text = this.#pending + this.#decoder.write(chunk);
    const end = lastEventEnd(text);
    if (end < 0) {
      this.#pending = text;
      return '';
    }
    this.#pending = text.slice(end);
    return this.#events(text.slice(0, end));
  }

  /** Whatever is left when the upstream ends (an unterminated last event is passed on as is). */
  flush(): string {
    const rest = this.#pending + this.#decoder.end();
    this.#pending = '';
    return rest === '' ? '' : this.#events(rest);
  }

  #events(block: string): string {
    // Fast path: most events carry content only and are forwarded untouched.
    let out = '';
    let start = 0;
    let dropped = false;
    while (start < block.length) {
      const sep = nextSeparator(block, start);
      const stop = sep < 0 ? block.length : sep;
      const event = block.slice(start, stop);
      const next = sep < 0 ? block.length : sep + (block.startsWith('\r\n\r\n', sep) ? 4 : 2);
      if (this.#inspect(event)) out += block.slice(start, next);
      else dropped = true;
      start = next;
    }
    const result = dropped ? out : block;
    // Usage the client did not ask for: OpenAI then sends no `usage` key at all, so neither do we.
    return this.#hideUsageChunk && result.includes('"usage":null')
      ? result.replaceAll(',"usage":null', '')
      : result;
  }

  /** Returns false when the event must not reach the client. */
  #inspect(event: string): boolean {
    if (event.includes('[DONE]') && /^data: ?\[DONE\]\s*$/m.test(event)) {
      this.sawDone = true;
      return true;
    }
    if (event.includes('"content":"') || event.includes('"text":"')) this.contentEvents++;
    if (!event.includes('"usage":{')) return true;
    const data = dataOf(event);
    if (data === undefined) return true;
    try {
      const parsed = JSON.parse(data) as { usage?: unknown; choices?: unknown[] };
      const usage = usageFromOpenAI(parsed.usage);
      if (usage) this.usage = usage;
      const usageOnly = Array.isArray(parsed.choices) && parsed.choices.length === 0;
      return !(this.#hideUsageChunk && usageOnly);
    } catch {
      return true;
    }
  }
}

function dataOf(event: string): string | undefined {
  let data: string | undefined;
  for (const line of event.split(/\r?\n/)) {
    if (line.startsWith('data:')) {
      const v = line.slice(line.charCodeAt(5) === 32 ? 6 : 5);
      data = data === undefined ? v : `${data}\n${v}`;
    }
  }
  return data;
}

function nextSeparator(s: string, from: number): number {
  const a = s.indexOf('\n\n', from);
  const b = s.indexOf('\r\n\r\n', from);
  if (a < 0) return b;
  if (b < 0) return a;
  return Math.min(a, b);
}

/** Index just past the last complete event in `s`, or -1. */
function lastEventEnd(s: string): number {
  const a = s.lastIndexOf('\n\n');
  const b = s.lastIndexOf('\r\n\r\n');
  if (a < 0 && b < 0) return -1;
  return Math.max(a < 0 ? -1 : a + 2, b < 0 ? -1 : b + 4);
}

/** The error event that ends a stream that failed after the first byte (never a fake [DONE]). */
export function sseErrorEvent(message: string, code: string): string {
  return `data: ${JSON.stringify({ error: { message, type: 'upstream_error', param: null, code } })}\n\n`;
}
