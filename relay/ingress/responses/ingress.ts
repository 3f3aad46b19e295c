import type { ProviderAdapter } from '../../../providers/contract.ts';
import type { Ingress, NativeAnswer } from '../contract.ts';
import { NativeResponsesStream } from './native-stream.ts';
import { responsesViaChat } from './via-chat.ts';

/**
 * OpenAI's Responses API (`POST /v1/responses`) as an ingress: natively to providers that serve
 * it (openai, azure-openai; the body passed through, model renamed), translated through chat
 * completions for the others. Its errors are OpenAI's own, so it keeps the default error shapes.
 */
export const responsesIngress: Ingress = {
  plan(adapter, operation) {
    if (speaksResponses(adapter)) return { operation, translator: undefined, native: NATIVE_RESPONSES };
    return { operation: 'chat', translator: responsesViaChat(adapter) };
  },
};

/** Usage is read from the answer's `usage` object as OpenAI's (the default). */
const NATIVE_RESPONSES: NativeAnswer = { stream: () => new NativeResponsesStream() };

/** Does this channel's provider serve `/v1/responses` itself (openai, azure-openai)? */
export function speaksResponses(adapter: ProviderAdapter): boolean {
  return adapter.supports('responses');
}
