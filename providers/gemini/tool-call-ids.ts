// Tool call ids. OpenAI clients pair a tool result with its call by id; Gemini pairs them by function
// name and order, and only newer models send a `functionCall.id`. So:
// - the upstream's `id` is passed on when it sends one;
// - otherwise the id is derived from what identifies the call in its answer (candidate, position,
//   name, arguments), so the same answer always yields the same ids (retries, replays, tests);
// - Gemini 3 wants each call's `thoughtSignature` back on the next turn (it answers 400 without it);
//   an OpenAI client has nowhere to keep it but the id it echoes, so it travels inside the id,
//   after SIGNATURE_MARK, and is put back on the functionCall part when the call comes back.
// Ids are not sent back upstream: Gemini pairs results by name and order, and an id made by another
// provider (after a failover) would mean nothing to it.
import { createHash } from 'node:crypto';

const SIGNATURE_MARK = '__sig__';

export function toolCallId(
  call: { id?: unknown; name: string; args: unknown },
  candidate: number,
  position: number,
  signature?: unknown,
): string {
  const base =
    typeof call.id === 'string' && call.id !== ''
      ? call.id
      : 'call_' +
        createHash('sha256')
          .update(`${candidate}\0${position}\0${call.name}\0${JSON.stringify(call.args ?? {})}`)
          .digest('hex')
          .slice(0, 24);
  return typeof signature === 'string' && signature !== '' ? base + SIGNATURE_MARK + signature : base;
}

/** The thought signature carried in an id made by toolCallId, if any. */
export function signatureOf(id: string): string | undefined {
  const at = id.indexOf(SIGNATURE_MARK);
  return at < 0 ? undefined : id.slice(at + SIGNATURE_MARK.length);
}
