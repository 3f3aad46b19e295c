// chat.completion.chunk events -> Anthropic Messages SSE events
// (https://docs.anthropic.com/en/docs/build-with-claude/streaming), the reverse of ../stream.ts:
// message_start (and a ping) on the first chunk; content_block_start / content_block_delta
// (text_delta, or input_json_delta for a tool call) / content_block_stop per block; at the end
// message_delta with the stop reason and usage, then message_stop.
import { NO_TOKENS, type TokenCounts, usageFromOpenAI } from '../../../core/usage.ts';
import { messageId, stopReason } from './response.ts';
import { messagesUsage } from './usage.ts';

type Json = Record<string, unknown>;

const isObj = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

const event = (type: string, data: Json) => `event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`;

/**
 * Feed it each chat chunk's JSON (`chunk`), then `finish()` once the chat stream reached its end
 * (`[DONE]`, or the inner translator completed); it returns Messages SSE text, framed. Usage
 * comes with OpenAI's last chunk, after the finish reason, so `message_delta` waits for the end.
 */
export class MessagesFromChatStream {
  readonly #model: string;
  #started = false;
  /** The content block open now: its Messages index and, for a tool call, the chat call index. */
  #open: { index: number; tool?: number } | undefined;
  #blocks = 0;
  /** Chat tool call index -> its Messages block index. */
  readonly #tools = new Map<number, number>();
  #finish: unknown = null;
  #usage: TokenCounts | undefined;
  #done = false;
  #error: string | undefined;

  constructor(opts: { model: string }) {
    this.#model = opts.model;
  }

  /** One chat chunk (JSON text); returns the Messages events for it. */
  chunk(data: string): string {
    if (this.#done) return '';
    let c: Json;
    try {
      c = JSON.parse(data) as Json;
    } catch {
      this.#fail('the upstream sent a chunk that is not JSON');
      return '';
    }
    if (isObj(c.error)) {
      this.#fail(typeof c.error.message === 'string' ? c.error.message : 'the upstream stream failed');
      return '';
    }
    let out = this.#start(c);
    const u = usageFromOpenAI(c.usage);
    if (u) this.#usage = u;
    const choice = (Array.isArray(c.choices) ? c.choices[0] : undefined) as Json | undefined;
    if (!choice) return out;
    const delta = (isObj(choice.delta) ? choice.delta : {}) as Json;
    if (typeof delta.content === 'string' && delta.content !== '') out += this.#text(delta.content);
    if (typeof delta.refusal === 'string' && delta.refusal !== '') out += this.#text(delta.refusal);
    for (const call of Array.isArray(delta.tool_calls) ? (delta.tool_calls as Json[]) : [])
      out += this.#toolCall(call);
    if (choice.finish_reason != null) this.#finish = choice.finish_reason;
    return out;
  }

  /** The chat stream ended as it should: the closing events. */
  finish(): string {
    if (this.#done) return '';
    let out = this.#start({});
    out += this.#closeBlock();
    this.#done = true;
    const usage = messagesUsage(this.#usage ?? NO_TOKENS);
    out += event('message_delta', {
      delta: { stop_reason: stopReason(this.#finish) ?? 'end_turn', stop_sequence: null },
      usage,
    });
    return out + event('message_stop', {});
  }

  /** Reached message_stop. */
  complete(): boolean {
    return this.#done && this.#error === undefined;
  }

  /** Why the stream failed (an error chunk, a chunk that is not JSON). */
  get error(): string | undefined {
    return this.#error;
  }

  usage(): TokenCounts | undefined {
    return this.#usage;
  }

  #fail(message: string) {
    this.#error = message;
    this.#done = true;
  }

  #start(c: Json): string {
    if (this.#started) return '';
    this.#started = true;
    const message = {
      id: messageId(c.id),
      type: 'message',
      role: 'assistant',
      model: this.#model,
      content: [],
      stop_reason: null,
      stop_sequence: null,
      usage: { input_tokens: 0, output_tokens: 0 },
    };
    return event('message_start', { message }) + event('ping', {});
  }

  #text(text: string): string {
    let out = '';
    if (this.#open === undefined || this.#open.tool !== undefined) {
      out += this.#closeBlock();
      out += this.#openBlock({ type: 'text', text: '' });
    }
    const delta = { type: 'text_delta', text };
    return out + event('content_block_delta', { index: this.#open!.index, delta });
  }

  #toolCall(call: Json): string {
    const n = typeof call.index === 'number' ? call.index : 0;
    const fn = (isObj(call.function) ? call.function : {}) as Json;
    let out = '';
    let index = this.#tools.get(n);
    if (index === undefined) {
      out += this.#closeBlock();
      const block = { type: 'tool_use', id: call.id, name: fn.name, input: {} };
      out += this.#openBlock(block, n);
      index = this.#open!.index;
      this.#tools.set(n, index);
    }
    const args = fn.arguments;
    if (typeof args === 'string' && args !== '') {
      const delta = { type: 'input_json_delta', partial_json: args };
      out += event('content_block_delta', { index, delta });
    }
    return out;
  }

  #openBlock(block: Json, tool?: number): string {
    const index = this.#blocks++;
    this.#open = tool === undefined ? { index } : { index, tool };
    return event('content_block_start', { index, content_block: block });
  }

  #closeBlock(): string {
    if (this.#open === undefined) return '';
    const { index } = this.#open;
    this.#open = undefined;
    return event('content_block_stop', { index });
  }
}
