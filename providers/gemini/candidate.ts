// One Gemini candidate's parts -> OpenAI message pieces (text and tool calls), shared by the
// whole-response and the stream translation.
import { asArray, asObject, type Json } from './json.ts';
import { toolCallId } from './tool-call-ids.ts';

export interface CandidatePieces {
  text: string;
  toolCalls: Json[];
}

/**
 * `callsBefore` is how many tool calls this candidate already produced (earlier stream events), so
 * positions and therefore generated ids stay unique within the answer.
 */
export function piecesOf(candidate: Json, index: number, callsBefore = 0): CandidatePieces {
  let text = '';
  const toolCalls: Json[] = [];
  for (const p of asArray(asObject(candidate['content'])?.['parts'])) {
    const part = asObject(p);
    if (!part) continue;
    // Thought summaries only come when includeThoughts is asked for, which the relay never does.
    if (part['thought'] === true) continue;
    if (typeof part['text'] === 'string') text += part['text'];
    const call = asObject(part['functionCall']);
    if (call && typeof call['name'] === 'string') {
      const position = callsBefore + toolCalls.length;
      const args = call['args'] ?? {};
      toolCalls.push({
        id: toolCallId(
          { id: call['id'], name: call['name'], args },
          index,
          position,
          part['thoughtSignature'],
        ),
        type: 'function',
        function: { name: call['name'], arguments: JSON.stringify(args) },
      });
    }
  }
  return { text, toolCalls };
}

export const candidatesOf = (native: unknown): Json[] =>
  asArray(asObject(native)?.['candidates']).filter((c): c is Json => asObject(c) !== undefined);

export const candidateIndex = (c: Json, i: number): number =>
  typeof c['index'] === 'number' ? c['index'] : i;
