import { type Usage, usageFromOpenAI } from '../core/usage.ts';

/**
 * Watches an upstream SSE stream on its way to the client: complete events are forwarded as they
 * arrive (byte for byte, whatever the framing); the usage chunk is captured (and dropped when the
 * relay asked for it on the client's behalf); content events are counted so a client that leaves
 * mid-stream can be billed for what it received; `data: [DONE]` ends the stream.
 *
 * Each byte is scanned once (linear time) and at most `MAX_HELD_BYTES` of one event are held:
 * a bigger event is forwarded as it comes and only its start is inspected, so one huge event
 * neither freezes the relay nor grows its memory.
 */

const LF = 0x0a;
const CR = 0x0d;
/** The most of one event held back for inspection (usage chunks are a few hundred bytes). */
export const MAX_HELD_BYTES = 256 * 1024;

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
  /** The current event's bytes, while it is held. */
  #held: Buffer[] = [];
  #heldBytes = 0;
  /** The current event outgrew the hold and is being forwarded as it arrives. */
  #passing = false;
  /** The last byte seen was CR (an LF right after it belongs to the same line break). */
  #afterCR = false;
  /** Nothing but line breaks since the last line break (so the next one ends the event). */
  #lineEmpty = true;
  /** The current event has bytes beyond line breaks (a blank line ends only such an event). */
  #eventStarted = false;
  /** An event just ended at a CR: whether an LF right after it is forwarded or dropped with it. */
  #lfAfterEnd: 'forward' | 'drop' | undefined;

  constructor(hideUsageChunk: boolean, maxHeld = MAX_HELD_BYTES) {
    this.#hideUsageChunk = hideUsageChunk;
    this.#maxHeld = maxHeld;
  }

  /** Feed upstream bytes; returns what to forward now (nothing after `[DONE]`). */
  push(chunk: Buffer): Buffer[] {
    const out: Buffer[] = [];
    if (this.sawDone) {
      // Only the LF of the CRLF that ended [DONE], if it came in its own chunk.
      if (this.#lfAfterEnd === 'forward' && chunk[0] === LF) out.push(chunk.subarray(0, 1));
      this.#lfAfterEnd = undefined;
      return out;
    }
    const n = chunk.length;
    let start = 0; // first byte of `chunk` not yet given to an event
    let i = 0;
    let nextLF = chunk.indexOf(LF);
    let nextCR = chunk.indexOf(CR);
    while (i < n) {
      if (nextLF >= 0 && nextLF < i) nextLF = chunk.indexOf(LF, i);
      if (nextCR >= 0 && nextCR < i) nextCR = chunk.indexOf(CR, i);
      const brk = nextLF < 0 ? nextCR : nextCR < 0 ? nextLF : Math.min(nextLF, nextCR);
      if (brk !== i) {
        // Line text up to the break (or the end of the chunk).
        this.#lineEmpty = false;
        this.#eventStarted = true;
        this.#afterCR = false;
        this.#lfAfterEnd = undefined;
        if (brk < 0) break;
      }
      const c = chunk[brk]!;
      i = brk + 1;
      if (c === LF && this.#afterCR) {
        // The LF of a CRLF: the break was counted at the CR. After an event's last CR, the LF
        // goes where that event went.
        this.#afterCR = false;
        if (this.#lfAfterEnd === 'forward') this.#take(chunk, start, i, out);
        if (this.#lfAfterEnd !== undefined) start = i;
        this.#lfAfterEnd = undefined;
        continue;
      }
      this.#afterCR = c === CR;
      this.#lfAfterEnd = undefined;
      if (this.#lineEmpty && this.#eventStarted) {
        // A blank line: the event ends here.
        this.#take(chunk, start, i, out);
        start = i;
        const kept = this.#endEvent(out);
        if (c === CR) this.#lfAfterEnd = kept ? 'forward' : 'drop';
        if (this.sawDone) {
          if (c === CR && i < n) {
            if (chunk[i] === LF) out.push(chunk.subarray(i, i + 1));
            this.#lfAfterEnd = undefined;
          }
          return out;
        }
      }
      this.#lineEmpty = true;
    }
    if (start < n) this.#take(chunk, start, n, out);
    return out;
  }

  /** Whatever is left when the upstream ends (an unterminated last event is inspected and passed on). */
  flush(): Buffer[] {
    const out: Buffer[] = [];
    if (!this.sawDone && (this.#heldBytes > 0 || this.#passing)) this.#endEvent(out);
    return out;
  }

  /** Gives bytes [from, to) of `chunk` to the current event: held, or forwarded when too big. */
  #take(chunk: Buffer, from: number, to: number, out: Buffer[]) {
    if (to <= from) return;
    const part = chunk.subarray(from, to);
    if (!this.#eventStarted && this.#heldBytes === 0 && !this.#passing) {
      out.push(part); // line breaks between events (e.g. a CRLF's LF): nothing to inspect
      return;
    }
    if (this.#passing) {
      out.push(part);
      return;
    }
    if (this.#heldBytes + part.length > this.#maxHeld) {
      // Too big to hold: inspect its start for content, then let it through as it comes.
      this.#passing = true;
      const head = Buffer.concat([...this.#held, part]).toString('utf8', 0, 4096);
      if (CONTENT.test(head)) this.contentEvents++;
      out.push(...this.#held, part);
      this.#held = [];
      this.#heldBytes = 0;
      return;
    }
    this.#held.push(part);
    this.#heldBytes += part.length;
  }

  /** Ends the current event; returns whether it reached the client. */
  #endEvent(out: Buffer[]): boolean {
    const wasPassing = this.#passing;
    this.#passing = false;
    this.#eventStarted = false;
    if (wasPassing) return true;
    const bytes = this.#held.length === 1 ? this.#held[0]! : Buffer.concat(this.#held);
    this.#held = [];
    this.#heldBytes = 0;
    const kept = this.#inspect(bytes);
    if (kept !== undefined) out.push(kept);
    return kept !== undefined;
  }

  /** Returns what of the event reaches the client (undefined: nothing). */
  #inspect(bytes: Buffer): Buffer | undefined {
    const event = bytes.toString('utf8');
    const data = dataOf(event);
    if (data === undefined) return bytes; // comments, retry/id-only events
    if (data.trim() === '[DONE]') {
      this.sawDone = true;
      return bytes;
    }
    if (CONTENT.test(data)) this.contentEvents++;
    if (USAGE_OBJECT.test(data)) {
      try {
        const parsed = JSON.parse(data) as { usage?: unknown; choices?: unknown };
        const usage = usageFromOpenAI(parsed.usage);
        if (usage) this.usage = usage;
        if (this.#hideUsageChunk && Array.isArray(parsed.choices) && parsed.choices.length === 0) {
          return undefined;
        }
      } catch {
        return bytes;
      }
    }
    // Usage the client did not ask for: OpenAI then sends no `usage` key at all, so neither do we.
    if (this.#hideUsageChunk && data.includes('null')) {
      USAGE_NULL.lastIndex = 0;
      if (USAGE_NULL.test(event)) return Buffer.from(event.replace(USAGE_NULL, ''));
    }
    return bytes;
  }
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
