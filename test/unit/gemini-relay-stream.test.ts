// The documented Gemini stream through the relay's stream writer (SSE bytes in, client SSE out):
// Gemini's stream has no end marker and older models set finishReason on every event, so the
// whole stream must reach the client, [DONE] once at the end, whatever the chunk boundaries.
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { GeminiChatStream } from '../../providers/gemini/chat-stream.ts';
import { TranslatedStream } from '../../relay/client-stream.ts';

const f = JSON.parse(
  readFileSync(new URL('../fixtures/providers/gemini/stream-text.json', import.meta.url), 'utf8'),
) as { events: string[]; options: ConstructorParameters<typeof GeminiChatStream>[0]; expected: unknown[] };

// As documented: the first event ends in CRLF, the others in LF.
const wire = f.events.map((e, i) => `data: ${e}${i === 0 ? '\r\n\r\n' : '\n\n'}`).join('');

function relay(bytes: Buffer, cuts: number[]): string {
  const s = new TranslatedStream(new GeminiChatStream(f.options));
  const bounds = [...new Set([0, ...cuts.map((c) => c % (bytes.length + 1)), bytes.length])].sort(
    (a, b) => a - b,
  );
  let out = '';
  for (let k = 1; k < bounds.length; k++) out += s.push(bytes.subarray(bounds[k - 1], bounds[k]));
  return out + s.finish();
}

describe('gemini stream through the relay stream writer', () => {
  it('every documented event reaches the client, then one [DONE], for any chunking', () => {
    const bytes = Buffer.from(wire, 'utf8');
    fc.assert(
      fc.property(fc.array(fc.nat(), { maxLength: 12 }), (cuts) => {
        const out = relay(bytes, cuts);
        const data = out
          .split('\n\n')
          .filter((e) => e.startsWith('data: '))
          .map((e) => e.slice(6));
        expect(data.at(-1)).toBe('[DONE]');
        expect(data.slice(0, -1).map((d) => JSON.parse(d))).toEqual(f.expected);
      }),
    );
  });

  it('a stream cut before any finishReason gets no [DONE]', () => {
    const cut = `data: ${JSON.stringify({ candidates: [{ content: { role: 'model', parts: [{ text: 'x' }] }, index: 0 }] })}\n\n`;
    const out = relay(Buffer.from(cut), []);
    expect(out).not.toContain('[DONE]');
  });
});
