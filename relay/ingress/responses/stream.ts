import {
  type EchoContext,
  endOf,
  functionCallItem,
  itemId,
  messageItem,
  reasoningItem,
  responseShell,
  responsesUsage,
} from './response.ts';

/**
 * Chat completion chunks (what the channel's chat adapter streams) as Responses API stream events:
 * response.created and response.in_progress first, then per output item `output_item.added`,
 * its content part and deltas, and at the end each item's `*.done` events, `output_item.done` and
 * `response.completed` (or `response.incomplete`) carrying the whole response with its usage.
 * Every event has OpenAI's `sequence_number`. Pure: chunks in, event objects out.
 */

type Json = Record<string, unknown>;

const isObj = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

type Part = 'output_text' | 'refusal' | 'reasoning_text';

interface OpenItem {
  index: number;
  id: string;
  kind: Part | 'function_call';
  text: string;
  callId?: string;
  name?: string;
}

const DELTA: Record<Part, string> = {
  output_text: 'response.output_text.delta',
  refusal: 'response.refusal.delta',
  reasoning_text: 'response.reasoning_text.delta',
};

export class ResponsesEvents {
  readonly #shell: Json;
  #seq = 0;
  readonly #items: OpenItem[] = [];
  /** The item each kind of text goes to now. */
  readonly #current = new Map<Part, OpenItem>();
  /** Function call items by the chat tool call index. */
  readonly #calls = new Map<number, OpenItem>();
  #finishReason: unknown;
  #usage: unknown;
  #started = false;
  #finished = false;
  /** Events that carried generated content (non-empty deltas). */
  contentEvents = 0;

  constructor(ctx: EchoContext, id = itemId('resp'), createdAt = Math.floor(Date.now() / 1000)) {
    this.#shell = responseShell(id, createdAt, ctx);
  }

  get id(): string {
    return this.#shell.id as string;
  }

  get finished(): boolean {
    return this.#finished;
  }

  /** response.created and response.in_progress (once). */
  start(): Json[] {
    if (this.#started) return [];
    this.#started = true;
    return [
      this.#event('response.created', { response: this.#shell }),
      this.#event('response.in_progress', { response: this.#shell }),
    ];
  }

  /** One chat.completion.chunk. */
  chunk(c: unknown): Json[] {
    const out = this.start();
    if (!isObj(c) || this.#finished) return out;
    if (c.usage != null) this.#usage = c.usage;
    const choice = Array.isArray(c.choices) && isObj(c.choices[0]) ? c.choices[0] : undefined;
    if (!choice) return out;
    if (choice.finish_reason != null) this.#finishReason = choice.finish_reason;
    const delta = isObj(choice.delta) ? choice.delta : {};
    const reasoning = delta.reasoning_content ?? delta.reasoning;
    if (typeof reasoning === 'string' && reasoning !== '') this.#text(out, 'reasoning_text', reasoning);
    if (typeof delta.content === 'string' && delta.content !== '')
      this.#text(out, 'output_text', delta.content);
    if (typeof delta.refusal === 'string' && delta.refusal !== '') this.#text(out, 'refusal', delta.refusal);
    if (Array.isArray(delta.tool_calls)) for (const tc of delta.tool_calls) this.#toolCall(out, tc);
    return out;
  }

  /** The answer ended: every item's done events, then response.completed / response.incomplete. */
  finish(): Json[] {
    const out = this.start();
    if (this.#finished) return out;
    this.#finished = true;
    const output = this.#items.map((it) => this.#close(out, it));
    const end = endOf(this.#finishReason);
    const response = { ...this.#shell, ...end, output, usage: responsesUsage(this.#usage) };
    const type = end.status === 'completed' ? 'response.completed' : 'response.incomplete';
    out.push(this.#event(type, { response }));
    return out;
  }

  #event(type: string, fields: Json): Json {
    return { type, sequence_number: this.#seq++, ...fields };
  }

  #open(out: Json[], kind: OpenItem['kind'], extra: Partial<OpenItem> = {}): OpenItem {
    const it: OpenItem = { index: this.#items.length, id: '', kind, text: '', ...extra };
    it.id = itemId(kind === 'function_call' ? 'fc' : kind === 'reasoning_text' ? 'rs' : 'msg');
    this.#items.push(it);
    const item = this.#item(it, 'in_progress');
    if (kind !== 'function_call') item.content = [];
    out.push(this.#event('response.output_item.added', { output_index: it.index, item }));
    if (kind !== 'function_call') {
      out.push(
        this.#event('response.content_part.added', {
          item_id: it.id,
          output_index: it.index,
          content_index: 0,
          part: emptyPart(kind),
        }),
      );
    }
    return it;
  }

  #text(out: Json[], kind: Part, text: string) {
    let it = this.#current.get(kind);
    if (!it) {
      it = this.#open(out, kind);
      this.#current.set(kind, it);
    }
    it.text += text;
    this.contentEvents++;
    const fields: Json = { item_id: it.id, output_index: it.index, content_index: 0, delta: text };
    if (kind === 'output_text') fields.logprobs = [];
    out.push(this.#event(DELTA[kind], fields));
  }

  #toolCall(out: Json[], tc: unknown) {
    if (!isObj(tc)) return;
    const index = typeof tc.index === 'number' ? tc.index : this.#calls.size;
    const fn = isObj(tc.function) ? tc.function : {};
    let it = this.#calls.get(index);
    if (!it) {
      const callId = typeof tc.id === 'string' ? tc.id : itemId('call');
      it = this.#open(out, 'function_call', { callId, name: typeof fn.name === 'string' ? fn.name : '' });
      this.#calls.set(index, it);
    } else if (typeof fn.name === 'string' && it.name === '') it.name = fn.name;
    if (typeof fn.arguments === 'string' && fn.arguments !== '') {
      it.text += fn.arguments;
      this.contentEvents++;
      out.push(
        this.#event('response.function_call_arguments.delta', {
          item_id: it.id,
          output_index: it.index,
          delta: fn.arguments,
        }),
      );
    }
  }

  /** An item's done events; returns the finished item. */
  #close(out: Json[], it: OpenItem): Json {
    const at = { item_id: it.id, output_index: it.index };
    if (it.kind === 'function_call') {
      out.push(
        this.#event('response.function_call_arguments.done', { ...at, name: it.name, arguments: it.text }),
      );
    } else {
      const done =
        it.kind === 'output_text'
          ? { type: 'response.output_text.done', text: it.text, logprobs: [] }
          : it.kind === 'refusal'
            ? { type: 'response.refusal.done', refusal: it.text }
            : { type: 'response.reasoning_text.done', text: it.text };
      const { type, ...fields } = done;
      out.push(this.#event(type, { ...at, content_index: 0, ...fields }));
      out.push(this.#event('response.content_part.done', { ...at, content_index: 0, part: part(it) }));
    }
    const item = this.#item(it, 'completed');
    out.push(this.#event('response.output_item.done', { output_index: it.index, item }));
    return item;
  }

  #item(it: OpenItem, status: string): Json {
    if (it.kind === 'function_call') return functionCallItem(it.id, it.callId!, it.name!, it.text, status);
    if (it.kind === 'reasoning_text') return reasoningItem(it.id, it.text);
    const item = messageItem(it.id, it.text, status);
    if (it.kind === 'refusal') item.content = [part(it)];
    return item;
  }
}

function emptyPart(kind: Part): Json {
  return part({ index: 0, id: '', kind, text: '' });
}

function part(it: OpenItem): Json {
  if (it.kind === 'refusal') return { type: 'refusal', refusal: it.text };
  if (it.kind === 'reasoning_text') return { type: 'reasoning_text', text: it.text };
  return { type: 'output_text', text: it.text, annotations: [], logprobs: [] };
}

/** One event as SSE, framed as OpenAI frames it (`event:` line, then `data:`). */
export function sseOf(e: Json): string {
  return `event: ${e.type as string}\ndata: ${JSON.stringify(e)}\n\n`;
}
