import { StringDecoder } from 'node:string_decoder';
import { type Usage, usageFromOpenAI } from '../core/usage.ts';

/**
 * Watches an upstream SSE stream on its way to the client: complete events are forwarded as they
 * arrive, whatever the framing (LF, CRLF or CR); the usage chunk is captured (and dropped when the
 * relay asked for it on the client's behalf); content events are counted so a client that leaves
 * mid-stream can be billed for what it received; `data: [DONE]` ends the stream.
 *
 * Each character is scanned once (linear time) and at most `MAX_HELD_CHARS` of one event are held:
 * a bigger event is forwarded as it comes and only its start is inspected, so one huge event
 * neither freezes the relay nor grows its memory.
 */

const LF = 10;
const CR = 13;
/** The most of one event held back for inspection (usage chunks are a few hundred bytes). */
export const MAX_HELD_CHARS = 256 * 1024;

const USAGE_OBJECT = /"usage"\s*:\s*\{/;
const USAGE_NULL = /,\s*"usage"\s*:\s*null(?=\s*[,}])/g;
const CONTENT = /"(?:content|text)"\s*:\s*"[^"]/;

export class SseTap {
  usage: Usage | undefined;
  sawDone = false;
  /** Events that carried generated content (≈ tokens for OpenAI-style streams). */
  contentEvents = 0;
  readonly #hideUsageChunk: boolean;
  readonly #maxHeld: number;
  readonly #decoder = new StringDecoder('utf8');
  /** The start of the current event, while it is held. */
  #pending = '';
  /** The current event outgrew the hold and is being forwarded as it arrives. */
  #passing = false;
  /** The last character seen was CR (an LF right after it belongs to the same line break). */
  #afterCR = false;
  /** Nothing but line breaks since the last line break (so the next one ends the event). */
  #lineEmpty = true;
  /** The current event has more than line breaks (a blank line ends only such an event). */
  #eventStarted = false;
  /** An event just ended at a CR: whether an LF right after it goes out or is dropped with it. */
  #lfAfterEnd: 'keep' | 'drop' | undefined;

  constructor(hideUsageChunk: boolean, maxHeld = MAX_HELD_CHARS) {
    this.#hideUsageChunk = hideUsageChunk;
    this.#maxHeld = maxHeld;
  }

  /** Feed upstream bytes; returns the text to forward now ('' when none; nothing after [DONE]). */
  push(chunk: Buffer): string {
    const text = this.#decoder.write(chunk);
    if (this.sawDone) {
      // Only the LF of the CRLF that ended [DONE], when it came on its own.
      const lf = this.#lfAfterEnd === 'keep' && text.charCodeAt(0) === LF;
      this.#lfAfterEnd = undefined;
      return lf ? '\n' : '';
    }
    return this.#scan(text);
  }

  /** Whatever is left when the upstream ends (an unterminated last event is inspected and passed on). */
  flush(): string {
    const rest = this.sawDone ? '' : this.#scan(this.#decoder.end());
    if (this.sawDone || (this.#pending === '' && !this.#passing)) return rest;
    const last = this.#pending;
    this.#pending = '';
    if (this.#passing) {
      this.#passing = false;
      return rest;
    }
    return rest + (this.#inspect(last) ? this.#out(last) : '');
  }

  #scan(text: string): string {
    const n = text.length;
    let out = '';
    let run = 0; // start of text not yet given to `out` or to the held event
    let i = 0;
    let nextLF = text.indexOf('\n');
    let nextCR = text.indexOf('\r');
    while (i < n) {
      if (nextLF >= 0 && nextLF < i) nextLF = text.indexOf('\n', i);
      if (nextCR >= 0 && nextCR < i) nextCR = text.indexOf('\r', i);
      const brk = nextLF < 0 ? nextCR : nextCR < 0 ? nextLF : Math.min(nextLF, nextCR);
      if (brk !== i) {
        // Line text up to the break (or to the end of the text).
        this.#lineEmpty = false;
        this.#eventStarted = true;
        this.#afterCR = false;
        this.#lfAfterEnd = undefined;
        if (brk < 0) break;
      }
      const c = text.charCodeAt(brk);
      i = brk + 1;
      if (c === LF && this.#afterCR) {
        // The LF of a CRLF: the break was counted at the CR. After an event's last CR, the LF
        // goes where that event went.
        this.#afterCR = false;
        if (this.#lfAfterEnd === 'drop') run = i;
        else if (this.#lfAfterEnd === 'keep') {
          out += text.slice(run, i);
          run = i;
        }
        this.#lfAfterEnd = undefined;
        continue;
      }
      this.#afterCR = c === CR;
      this.#lfAfterEnd = undefined;
      if (this.#lineEmpty && this.#eventStarted) {
        // A blank line: the event [run, i) (after what is held) ends here.
        let kept = true;
        if (this.#passing) {
          this.#passing = false;
        } else {
          const event = this.#pending === '' ? text.slice(run, i) : this.#pending + text.slice(run, i);
          kept = this.#inspect(event);
          if (this.#pending !== '') {
            if (kept) out += event;
            this.#pending = '';
            run = i;
          } else if (!kept) run = i;
        }
        this.#eventStarted = false;
        if (this.sawDone) {
          if (c === CR && i < n && text.charCodeAt(i) === LF) i++;
          else if (c === CR && i >= n) this.#lfAfterEnd = 'keep';
          return this.#out(out + text.slice(run, i));
        }
        if (c === CR) this.#lfAfterEnd = kept ? 'keep' : 'drop';
        if (!kept) continue;
      }
      this.#lineEmpty = true;
      // Complete events (and breaks between them) go out together; the held part stays.
      if (!this.#eventStarted && this.#pending === '') {
        out += text.slice(run, i);
        run = i;
      }
    }
    if (run < n) this.#hold(text.slice(run), (s) => (out += s));
    return this.#out(out);
  }

  /** Keeps the start of an unfinished event, or lets it through once it is too big to hold. */
  #hold(part: string, emit: (s: string) => void) {
    if (!this.#eventStarted && this.#pending === '') return emit(part); // only line breaks
    if (this.#passing) return emit(part);
    if (this.#pending.length + part.length <= this.#maxHeld) {
      this.#pending += part;
      return;
    }
    this.#passing = true;
    if (hasContent((this.#pending + part.slice(0, 4096)).slice(0, 4096))) this.contentEvents++;
    emit(this.#pending + part);
    this.#pending = '';
  }

  /** Usage the client did not ask for: OpenAI then sends no `usage` key at all, so neither do we. */
  #out(s: string): string {
    if (!this.#hideUsageChunk || !s.includes('"usage"')) return s;
    return s.replace(USAGE_NULL, '');
  }

  /** Returns false when the event must not reach the client. */
  #inspect(event: string): boolean {
    if (event.includes('[DONE]') && dataOf(event)?.trim() === '[DONE]') {
      this.sawDone = true;
      return true;
    }
    if (hasContent(event)) this.contentEvents++;
    if (!event.includes('"usage"') || !USAGE_OBJECT.test(event)) return true;
    const data = dataOf(event);
    if (data === undefined) return true;
    try {
      const parsed = JSON.parse(data) as { usage?: unknown; choices?: unknown };
      const usage = usageFromOpenAI(parsed.usage);
      if (usage) this.usage = usage;
      return !(this.#hideUsageChunk && Array.isArray(parsed.choices) && parsed.choices.length === 0);
    } catch {
      return true;
    }
  }
}

/** Does the event carry generated text (non-empty `content` or `text`, any spacing)? */
function hasContent(event: string): boolean {
  // Fast path for the compact JSON most providers send.
  const at = event.indexOf('"content":"');
  if (at >= 0 && event.charCodeAt(at + 11) !== 0x22) return true;
  const t = event.indexOf('"text":"');
  if (t >= 0 && event.charCodeAt(t + 8) !== 0x22) return true;
  return (event.includes('"content"') || event.includes('"text"')) && CONTENT.test(event);
}

/** The `data` field of one event (its lines joined by LF), or undefined when it has none. */
function dataOf(event: string): string | undefined {
  let data: string | undefined;
  for (const line of event.split(/\r\n|\r|\n/)) {
    if (!line.startsWith('data')) continue;
    let v: string;
    if (line.length === 4) v = '';
    else if (line.charCodeAt(4) === 0x3a) v = line.slice(line.charCodeAt(5) === 0x20 ? 6 : 5);
    else continue; // another field whose name starts with "data"
    data = data === undefined ? v : `${data}\n${v}`;
  }
  return data;
}

/** The error event that ends a stream that failed after the first byte (never a fake [DONE]). */
export function sseErrorEvent(message: string, code: string): string {
  return `data: ${JSON.stringify({ error: { message, type: 'upstream_error', param: null, code } })}\n\n`;
}
