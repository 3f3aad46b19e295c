import type { Usage } from '../../core/usage.ts';
import type {
  CanonicalError,
  Operation,
  OperationTranslator,
  ProviderAdapter,
} from '../../providers/contract.ts';
import type { ClientStream } from '../client-stream.ts';

/**
 * An ingress API other than chat completions (Anthropic Messages: relay/ingress/messages.ts;
 * OpenAI's Responses API: relay/ingress/responses/ingress.ts), set as a RelayRoute's `ingress`.
 * It decides, per channel, how a request on its route reaches that channel's provider:
 * - natively, where the provider speaks the API: the body passes through (model renamed) and
 *   `native` says how to read the answer (usage, and the event stream as a ClientStream);
 * - otherwise through chat completions: `translator` turns the request into a chat request, sends
 *   it through the channel's own chat translation, and turns the answer back. Its stream
 *   translator is `framed` (it emits the API's own SSE events), which relay/client-stream.ts's
 *   TranslatedStream sends as they are.
 * The request path (relay/upstream-request.ts, proxy.ts, respond.ts) knows no ingress by name.
 */
export interface Ingress {
  /** How this channel serves the route's operation. Throws UntranslatableError when it cannot. */
  plan(adapter: ProviderAdapter, operation: Operation): IngressPlan;
  /**
   * The client's error body for a status and an error (`native`: the upstream's body, if any).
   * Absent: OpenAI's `{"error": {...}}` (an OpenAI API such as Responses).
   */
  errorBody?(status: number, error: CanonicalError, native?: unknown): unknown;
  /** The event that ends a stream that failed after its first byte. Absent: OpenAI's error event. */
  streamError?(message: string): string;
}

export interface IngressPlan {
  /** The operation the adapter builds the upstream URL for. */
  operation: Operation;
  /** Translates to and from the channel's native shape; undefined: pass-through. */
  translator: OperationTranslator | undefined;
  /** Pass-through only: reading the native answer. */
  native?: NativeAnswer;
}

export interface NativeAnswer {
  /** Client headers that go upstream as they came (they win over the channel's). */
  clientHeaders?: readonly string[];
  /** Usage from the answer's `usage` object. Absent: OpenAI's usage object. */
  usage?(u: unknown): Usage | undefined;
  /** Watches a passed-through event stream (its end, usage, content, the object's id). */
  stream(): ClientStream;
  /** The answer is free (e.g. counting tokens): no estimate is billed when it reports no usage. */
  unbilled?: boolean;
}
