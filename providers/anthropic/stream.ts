// Anthropic Messages SSE events -> chat.completion.chunk events, one event at a time
// (https://docs.anthropic.com/en/docs/build-with-claude/streaming).
import type { TokenCounts } from '../../core/usage.ts';
import type { CanonicalError, StreamTranslator } from '../contract.ts';
import { errorOf } from './errors.ts';
import { finishReason } from './response.ts';
import { openAIUsage, usageOf } from './usage.ts';

type Json = Record<string, unknown>;

export interface ChatStreamOptions {
  /** The model name the client asked for (chunks carry it, not the upstream's). */
  model: string;
  /** `stream_options.include_usage`: a last chunk with `choices: []` and the usage. */
  includeUsage?: boolean;
  created?: number;
}

/**
 * Feed it each upstream event (`push(event, data)`); it returns the chunks' JSON to send, in
 * order. `message_start` gives the role chunk, text and tool input deltas give content and
 * tool-call argument deltas (id, name on a call's first chunk), `message_delta` the finish
 * reason, `message_stop` the usage chunk. An `error` event or a stream cut before `message_stop`
 * leaves it incomplete: the relay sends no `[DONE]` but its own error event.
 */
export class AnthropicChatStream implements StreamTranslator {
  readonly #opts: ChatStreamOptions;
  readonly #created: number;
  #id = '';
  #usage: Json = {};
  #sawUsage = false;
  /** Content block index -> tool call index (tool calls are numbered from 0 among themselves). */
  readonly #tools = new Map<number, number>();
  #done = false;
  #failed = false;
  #error: CanonicalError | undefined;

  constructor(opts: ChatStreamOptions) {
    this.#opts = opts;
    this.#created = opts.created ?? Math.floor(Date.now() / 1000);
  }

  push(event: string | undefined, data: string): string[] {
    if (this.#done) return [];
    let d: Json;
    try {
      d = JSON.parse(data) as Json;
    } catch {
      const message = `the upstream sent an event that is not JSON (${event})`;
      return this.#fail({ message, type: 'upstream_error', code: 'upstream_invalid_event' });
    }
    switch (event || d.type) {
      case 'message_start': {
        const m = (d.message ?? {}) as Json;
        this.#id = typeof m.id === 'string' ? m.id : '';
        this.#mergeUsage(m.usage);
        return [this.#chunk({ role: 'assistant', content: '' })];
      }
      case 'content_block_start':
        return this.#blockStart(Number(d.index), (d.content_block ?? {}) as Json);
      case 'content_block_delta':
        return this.#blockDelta(Number(d.index), (d.delta ?? {}) as Json);
      case 'message_delta': {
        this.#mergeUsage(d.usage);
        const delta = (d.delta ?? {}) as Json;
        if (delta.stop_reason === undefined) return [];
        return [this.#chunk({}, finishReason(delta.stop_reason))];
      }
      case 'message_stop': {
        this.#done = true;
        if (!this.#opts.includeUsage) return [];
        return [JSON.stringify({ ...this.#head(), choices: [], usage: openAIUsage(usageOf(this.#usage)) })];
      }
      case 'error':
        // The event names its own error type; the status only matters when it does not.
        return this.#fail(errorOf(500, d));
      default:
        return []; // ping, content_block_stop, and event types added later (the docs say: ignore)
    }
  }

  /** The upstream's `error` event, in OpenAI's terms (for logs). */
  get error(): CanonicalError | undefined {
    return this.#error;
  }

  /** Nothing is held back: every event's chunks were returned by push. */
  end(): string[] {
    return [];
  }

  /** Reached message_stop (not an error event, not a cut). */
  complete(): boolean {
    return this.#done && !this.#failed;
  }

  /** What the upstream reported so far (cumulative, as Anthropic reports it); undefined if nothing. */
  usage(): TokenCounts | undefined {
    return this.#sawUsage ? usageOf(this.#usage) : undefined;
  }

  #blockStart(index: number, block: Json): string[] {
    if (block.type === 'text') {
      return typeof block.text === 'string' && block.text !== ''
        ? [this.#chunk({ content: block.text })]
        : [];
    }
    if (block.type !== 'tool_use') return [];
    const n = this.#tools.size;
    this.#tools.set(index, n);
    const call = { index: n, id: block.id, type: 'function', function: { name: block.name, arguments: '' } };
    return [this.#chunk({ tool_calls: [call] })];
  }

  #blockDelta(index: number, delta: Json): string[] {
    if (delta.type === 'text_delta' && typeof delta.text === 'string')
      return [this.#chunk({ content: delta.text })];
    if (delta.type === 'input_json_delta' && typeof delta.partial_json === 'string') {
      const n = this.#tools.get(index);
      if (n === undefined || delta.partial_json === '') return [];
      return [this.#chunk({ tool_calls: [{ index: n, function: { arguments: delta.partial_json } }] })];
    }
    return []; // thinking and signature deltas: extended thinking is never requested
  }

  /**
   * The stream failed (Anthropic closes it after an error event): nothing more to emit; the relay
   * ends the client's stream with its own error event (and fails over if no token was sent yet).
   */
  #fail(error: CanonicalError): string[] {
    this.#error = error;
    this.#done = true;
    this.#failed = true;
    return [];
  }

  #mergeUsage(u: unknown) {
    if (u === null || typeof u !== 'object') return;
    this.#sawUsage = true;
    for (const [k, v] of Object.entries(u)) if (typeof v === 'number') this.#usage[k] = v;
  }

  #head() {
    return { id: this.#id, object: 'chat.completion.chunk', created: this.#created, model: this.#opts.model };
  }

  #chunk(delta: Json, finish: string | null = null): string {
    return JSON.stringify({
      ...this.#head(),
      choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
    });
  }
}
