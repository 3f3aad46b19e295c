import type { Usage } from '../core/usage.ts';
import type { StreamTranslator } from '../providers/contract.ts';
import { SseParser } from '../providers/sse.ts';
import { SseTap } from './sse.ts';

/**
 * An upstream event stream on its way to the client, as client-ready SSE text. The pass-through
 * kind forwards the upstream's own bytes (relay/sse.ts); the translated kind parses the native
 * events and emits OpenAI chunks from the provider's StreamTranslator, or an ingress API's own
 * events from a framed one (relay/ingress/contract.ts). An ingress API's native stream is its
 * NativeAnswer's.
 */
export interface ClientStream {
  /** Upstream bytes in; SSE text for the client out ('' when none). */
  push(chunk: Buffer): string;
  /** The upstream ended: the rest for the client. */
  finish(): string;
  /** The answer reached its end ([DONE], or the native stream's documented end). */
  readonly done: boolean;
  /** Events that carried generated content (what a client that left is billed for). */
  readonly contentEvents: number;
  usage(): Usage | undefined;
  /** The id of the object the answer created upstream (a Responses API response), once seen. */
  readonly objectId?: string | undefined;
}

export class PassThroughStream implements ClientStream {
  readonly #tap: SseTap;
  constructor(hideUsageChunk: boolean) {
    this.#tap = new SseTap(hideUsageChunk);
  }
  push(chunk: Buffer) {
    return this.#tap.push(chunk);
  }
  finish() {
    return this.#tap.sawDone ? '' : this.#tap.flush();
  }
  get done() {
    return this.#tap.sawDone;
  }
  get contentEvents() {
    return this.#tap.contentEvents;
  }
  usage() {
    return this.#tap.usage;
  }
}

export class TranslatedStream implements ClientStream {
  readonly #parser = new SseParser();
  readonly #translator: StreamTranslator;
  #done = false;
  /** Content events read from the chunks' text (a framed translator may count its own). */
  readonly #seen = { contentEvents: 0 };

  constructor(translator: StreamTranslator) {
    this.#translator = translator;
  }

  push(chunk: Buffer) {
    if (this.#done) return '';
    return this.#emit(this.#parser.push(chunk).flatMap((e) => this.#translator.push(e.event, e.data)));
  }

  finish() {
    if (this.#done) return '';
    const last = this.#parser.end().flatMap((e) => this.#translator.push(e.event, e.data));
    return this.#emit(last, true);
  }

  get done() {
    return this.#done;
  }

  get contentEvents() {
    return this.#translator.contentEvents ?? this.#seen.contentEvents;
  }

  usage(): Usage | undefined {
    const u = this.#translator.usage();
    return u && { ...u, estimated: false };
  }

  // Chunks out; once the native stream completed, the translator's last chunks and [DONE].
  #emit(chunks: string[], ended = false): string {
    const out = [...chunks];
    if (this.#translator.complete() || ended) {
      out.push(...this.#translator.end());
      // read after end(): a stream without an end marker (Gemini's) is complete once it ended
      const complete = this.#translator.complete();
      this.#done = complete;
      let text = frame(out, this.#seen, this.#translator.framed);
      if (complete && !this.#translator.framed) text += 'data: [DONE]\n\n';
      return text;
    }
    return frame(out, this.#seen, this.#translator.framed);
  }
}

function frame(chunks: string[], s: { contentEvents: number }, framed = false): string {
  let text = '';
  for (const c of chunks) {
    if (carriesToken(c)) s.contentEvents++;
    text += framed ? c : `data: ${c}\n\n`;
  }
  return text;
}

const TOKEN =
  /"(?:content|text|reasoning_content|reasoning|refusal|arguments|partial_json)"\s*:\s*"[^"]|"tool_calls"\s*:\s*\[\s*\{|"type"\s*:\s*"tool_use"/;

/**
 * Does this SSE text carry the first token: non-empty content, reasoning, refusal or a tool call?
 * A role-only or empty chunk (what many providers send at once, long before the first token) does
 * not, and is held (the preamble hold) so that a slow first token can still fail over.
 */
export function carriesToken(text: string): boolean {
  return TOKEN.test(text);
}
