// Gemini streamGenerateContent?alt=sse -> OpenAI chat.completion.chunk events. Each SSE `data` is a
// whole GenerateContentResponse holding the next piece of each candidate.
// - The role goes out with a candidate's first content, never alone, so nothing is sent before
//   there is something to say (failover stays possible until then).
// - Finish reasons are emitted at the end of the stream: older models set finishReason on every
//   event (Google's documented stream shows STOP on each), newer ones only on the last. Gemini's
//   stream has no end marker either, so it is complete only once it ended (end()) with a
//   finishReason for every candidate.
// - usageMetadata is cumulative; the last one counts.
import type { TokenCounts } from '../../core/usage.ts';
import { candidateIndex, candidatesOf, piecesOf } from './candidate.ts';
import { errorOf, type OpenAIError } from './errors.ts';
import { finishReasonOf } from './finish-reason.ts';
import { asObject, type Json } from './json.ts';
import { openAIUsage, usageOf } from './usage.ts';

export interface ChatStreamOptions {
  model: string;
  /** Used when the upstream sends no responseId. */
  id: string;
  created: number;
  /** The client asked for `stream_options.include_usage`: a last chunk with usage, `usage: null` before. */
  includeUsage: boolean;
}

interface ChoiceState {
  started: boolean;
  calls: number;
  finishReason?: unknown;
}

export class GeminiChatStream {
  readonly #opts: ChatStreamOptions;
  #id: string | undefined;
  readonly #choices = new Map<number, ChoiceState>();
  #usage: TokenCounts | undefined;
  #blocked = false;
  #failed = false;
  #error: OpenAIError | undefined;
  #ended = false;

  constructor(opts: ChatStreamOptions) {
    this.#opts = opts;
  }

  /**
   * One SSE event -> the chunk JSON strings to send, in order. An error event inside the stream
   * (after the status line said 200) ends it incomplete: nothing more is emitted, and the relay
   * ends the client's stream with its one error event (or fails over if no token was sent yet).
   */
  push(_event: string | undefined, data: string): string[] {
    if (data.trim() === '' || this.#failed) return [];
    const native = JSON.parse(data) as Json;
    const error = asObject(native['error']);
    if (error) {
      this.#failed = true;
      this.#error = errorOf(typeof error['code'] === 'number' ? error['code'] : 500, native);
      return [];
    }
    this.#id ??=
      typeof native['responseId'] === 'string' ? `chatcmpl-${native['responseId']}` : this.#opts.id;
    this.#usage = usageOf(native) ?? this.#usage;
    if (asObject(native['promptFeedback'])?.['blockReason'] !== undefined) this.#blocked = true;
    const out: string[] = [];
    candidatesOf(native).forEach((c, i) => {
      const index = candidateIndex(c, i);
      let state = this.#choices.get(index);
      if (!state) {
        state = { started: false, calls: 0 };
        this.#choices.set(index, state);
      }
      const { text, toolCalls } = piecesOf(c, index, state.calls);
      if (c['finishReason'] !== undefined) state.finishReason = c['finishReason'];
      if (text === '' && toolCalls.length === 0) return;
      const delta: Json = {};
      if (!state.started) delta['role'] = 'assistant';
      state.started = true;
      if (text !== '' || toolCalls.length === 0) delta['content'] = text;
      if (toolCalls.length > 0) {
        delta['tool_calls'] = toolCalls.map((call, k) => ({ index: state.calls + k, ...call }));
        state.calls += toolCalls.length;
      }
      out.push(this.#chunk([{ index, delta, logprobs: null, finish_reason: null }]));
    });
    return out;
  }

  /** The upstream stream ended: finish reasons, then usage when asked for. */
  end(): string[] {
    this.#ended = true;
    if (!this.complete()) return [];
    this.#id ??= this.#opts.id;
    const out: string[] = [];
    if (this.#choices.size === 0 && this.#blocked) {
      out.push(
        this.#chunk([
          { index: 0, delta: { role: 'assistant' }, logprobs: null, finish_reason: 'content_filter' },
        ]),
      );
    }
    for (const index of [...this.#choices.keys()].sort((a, b) => a - b)) {
      const state = this.#choices.get(index)!;
      const delta: Json = state.started ? {} : { role: 'assistant', content: '' };
      const reason = finishReasonOf(state.finishReason, state.calls > 0);
      out.push(this.#chunk([{ index, delta, logprobs: null, finish_reason: reason }]));
    }
    if (this.#opts.includeUsage && this.#usage) {
      out.push(JSON.stringify({ ...this.#base(), choices: [], usage: openAIUsage(this.#usage) }));
    }
    return out;
  }

  /** Did the stream end with a finishReason for every candidate (or the prompt blocked)? */
  complete(): boolean {
    if (this.#failed || !this.#ended) return false;
    if (this.#choices.size === 0) return this.#blocked;
    for (const state of this.#choices.values()) if (state.finishReason === undefined) return false;
    return true;
  }

  /** The upstream's error event, in OpenAI's terms (for logs). */
  get error(): OpenAIError | undefined {
    return this.#error;
  }

  /** What the stream used so far (the last usageMetadata seen). */
  usage(): TokenCounts | undefined {
    return this.#usage;
  }

  #base(): Json {
    return {
      id: this.#id,
      object: 'chat.completion.chunk',
      created: this.#opts.created,
      model: this.#opts.model,
    };
  }

  #chunk(choices: Json[]): string {
    const c: Json = { ...this.#base(), choices };
    if (this.#opts.includeUsage) c['usage'] = null;
    return JSON.stringify(c);
  }
}
