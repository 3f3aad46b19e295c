import { describe, expect, it } from 'vitest';
import { SseTap, sseErrorEvent } from '../../relay/sse.ts';

const chunk = (content: string) =>
  `data: {"choices":[{"index":0,"delta":{"content":"${content}"}}],"usage":null}\n\n`;
/** The same chunk as OpenAI sends it when the client did not ask for usage. */
const plain = (content: string) => `data: {"choices":[{"index":0,"delta":{"content":"${content}"}}]}\n\n`;
const usageChunk =
  'data: {"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7}}\n\n';
const done = 'data: [DONE]\n\n';

function run(tap: SseTap, pieces: string[]): string {
  let out = '';
  for (const p of pieces) out += tap.push(Buffer.from(p));
  return out + tap.flush();
}

describe('SseTap', () => {
  const stream = chunk('Hel') + chunk('lo') + usageChunk + done;

  it('passes events through untouched and captures usage', () => {
    const tap = new SseTap(false);
    expect(run(tap, [stream])).toBe(stream);
    expect(tap.usage).toEqual({ promptTokens: 5, completionTokens: 2, cachedTokens: 0, estimated: false });
    expect(tap.sawDone).toBe(true);
    expect(tap.contentEvents).toBe(2);
  });

  it("hides the usage chunk it asked for on the client's behalf", () => {
    const tap = new SseTap(true);
    expect(run(tap, [stream])).toBe(plain('Hel') + plain('lo') + done);
    expect(tap.usage?.promptTokens).toBe(5);
  });

  it('handles events and multi-byte characters split across chunks at every position', () => {
    const s = chunk('héllo ✓') + usageChunk + done;
    const bytes = Buffer.from(s);
    for (let cut = 1; cut < bytes.length; cut += 7) {
      const tap = new SseTap(true);
      const out =
        tap.push(bytes.subarray(0, cut)) +
        tap.push(bytes.subarray(cut, cut + 3)) +
        tap.push(bytes.subarray(cut + 3)) +
        tap.flush();
      expect(out).toBe(plain('héllo ✓') + done);
      expect(tap.usage?.completionTokens).toBe(2);
    }
  });

  it('accepts CRLF framing', () => {
    const s =
      'data: {"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":1}}\r\n\r\ndata: [DONE]\r\n\r\n';
    const tap = new SseTap(true);
    expect(run(tap, [s])).toBe('data: [DONE]\r\n\r\n');
    expect(tap.sawDone).toBe(true);
  });

  it('writes an OpenAI-shaped error event', () => {
    const ev = sseErrorEvent('boom', 'upstream_stream_interrupted');
    expect(ev.endsWith('\n\n')).toBe(true);
    expect(JSON.parse(ev.slice(6))).toEqual({
      error: { message: 'boom', type: 'upstream_error', param: null, code: 'upstream_stream_interrupted' },
    });
  });
});
