import { StringDecoder } from 'node:string_decoder';

/**
 * The completion a client received, for `gen_ai.output.messages` on the attempt span (only with
 * KUBERELAY_TRACE_CONTENT=true). It reads what the relay sent the client — OpenAI's shape whatever
 * the provider — as a JSON answer or as its stream's `data:` events, and holds at most `limit`
 * characters of text per request (the rest is cut, and the cut is marked), however long the answer.
 */

/** An output message as the GenAI semantic conventions write it. */
export interface OutputMessage {
  role: string;
  parts: { type: 'text'; content: string }[];
  finish_reason?: string;
}

interface Choice {
  role: string;
  text: string;
  finish?: string;
}

export const CONTENT_LIMIT = 16 * 1024;
const TRUNCATED = '…[truncated]';
// A JSON answer is parsed whole: one larger than this is not recorded.
const MAX_JSON_BYTES = 1024 * 1024;
// An SSE line longer than this is not an event the relay records.
const MAX_LINE = 256 * 1024;

export class CompletionRecorder {
  readonly #limit: number;
  readonly #stream: boolean;
  readonly #choices = new Map<number, Choice>();
  #chars = 0;
  #truncated = false;
  #json: Buffer[] = [];
  #jsonBytes = 0;
  #line = '';
  readonly #decoder = new StringDecoder('utf8');

  constructor(stream: boolean, limit = CONTENT_LIMIT) {
    this.#stream = stream;
    this.#limit = limit;
  }

  push(chunk: string | Buffer) {
    if (!this.#stream) {
      this.#jsonBytes += chunk.length;
      if (this.#jsonBytes <= MAX_JSON_BYTES) this.#json.push(Buffer.from(chunk));
      else this.#json = [];
      return;
    }
    const text = typeof chunk === 'string' ? chunk : this.#decoder.write(chunk);
    const lines = (this.#line + text).split('\n');
    this.#line = lines.pop()!;
    if (this.#line.length > MAX_LINE) this.#line = '';
    for (const line of lines) this.#event(line);
  }

  /** The messages received, or undefined when none could be read. */
  messages(): OutputMessage[] | undefined {
    if (!this.#stream) this.#answer();
    else if (this.#line !== '') this.#event(this.#line);
    this.#line = '';
    if (this.#choices.size === 0) return undefined;
    return [...this.#choices.entries()]
      .sort(([a], [b]) => a - b)
      .map(([, c]) => {
        const m: OutputMessage = { role: c.role, parts: [{ type: 'text', content: c.text }] };
        if (c.finish) m.finish_reason = c.finish;
        return m;
      });
  }

  #answer() {
    if (this.#json.length === 0) return;
    let body: { choices?: unknown };
    try {
      body = JSON.parse(Buffer.concat(this.#json).toString('utf8'));
    } catch {
      return;
    } finally {
      this.#json = [];
    }
    if (!Array.isArray(body?.choices)) return;
    for (const [i, c] of (body.choices as ChoiceJson[]).entries()) {
      const msg = c?.message;
      this.#add(typeof c?.index === 'number' ? c.index : i, msg?.role, msg?.content, c?.finish_reason);
    }
  }

  #event(line: string) {
    const l = line.endsWith('\r') ? line.slice(0, -1) : line;
    if (!l.startsWith('data:')) return;
    const data = l.slice(5).trimStart();
    if (data === '' || data === '[DONE]') return;
    let ev: { choices?: unknown };
    try {
      ev = JSON.parse(data);
    } catch {
      return;
    }
    if (!Array.isArray(ev?.choices)) return;
    for (const [i, c] of (ev.choices as ChoiceJson[]).entries()) {
      const d = c?.delta;
      this.#add(typeof c?.index === 'number' ? c.index : i, d?.role, d?.content, c?.finish_reason);
    }
  }

  #add(index: number, role: unknown, content: unknown, finish: unknown) {
    let c = this.#choices.get(index);
    if (!c) {
      if (this.#choices.size >= 16) return; // n is bounded too
      c = { role: 'assistant', text: '' };
      this.#choices.set(index, c);
    }
    if (typeof role === 'string' && role !== '') c.role = role;
    if (typeof finish === 'string') c.finish = finish;
    if (typeof content !== 'string' || content === '' || this.#truncated) return;
    const room = this.#limit - this.#chars;
    if (content.length > room) {
      c.text += content.slice(0, Math.max(0, room)) + TRUNCATED;
      this.#chars = this.#limit;
      this.#truncated = true;
      return;
    }
    c.text += content;
    this.#chars += content.length;
  }
}

interface ChoiceJson {
  index?: unknown;
  message?: { role?: unknown; content?: unknown };
  delta?: { role?: unknown; content?: unknown };
  finish_reason?: unknown;
}
