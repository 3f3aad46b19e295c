import type { Usage } from '../../core/usage.ts';
import type {
  CanonicalError,
  Operation,
  OperationTranslator,
  ProviderAdapter,
} from '../../providers/contract.ts';
import type { ClientStream } from '../client-stream.ts';

/**
 * An ingress API other than OpenAI's (Anthropic Messages): how a request on its route reaches
 * each channel, and how its errors look. A channel whose provider speaks the API gets the body
 * passed through (model renamed); any other gets it translated to chat completions and sent
 * through the channel's own chat translation, the answer translated back.
 */
export interface Ingress {
  /** How this channel serves the route's operation. Throws UntranslatableError when it cannot. */
  plan(adapter: ProviderAdapter, operation: Operation): IngressPlan;
  /** The client's error body for a status and an error (`native`: the upstream's body, if any). */
  errorBody(status: number, error: CanonicalError, native?: unknown): unknown;
  /** The event that ends a stream that failed after its first byte. */
  streamError(message: string): string;
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
  /** Usage from the answer's `usage` object. */
  usage(u: unknown): Usage | undefined;
  /** Watches a passed-through event stream (its end, usage, content). */
  stream(): ClientStream;
  /** The answer is free (e.g. counting tokens): no estimate is billed when it reports no usage. */
  unbilled?: boolean;
}
