import { describe, expect, it } from 'vitest';
import { MAX_HELD_CHARS, SseTap, sseErrorEvent } from '../../relay/sse.ts';

const chunk = (content: string) =>
  `data: {"choices":[{"index":0,"delta":{"content":"${content}"}}],"usage":null}\n\n`;
/** The same chunk as OpenAI sends it when the client did not ask for usage. */
const plain = (content: string) => `data: {"choices":[{"index":0,"delta":{"content":"${content}"}}]}\n\n`;
const usageChunk =
  'data: {"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7}}\n\n';
const done = 'data: [DONE]\n\n';

function run(tap: SseTap, pieces: (string | Buffer)[]): string {
  let out = '';
  for (const p of pieces) out += tap.push(Buffer.from(p));
  return out + tap.flush();
}

describe('SseTap', () => {
  const stream = chunk('Hel') + chunk('lo') + usageChunk + done;

  it('passes events through untouched and captures usage', () => {
    const tap = new SseTap(false);
    expect(run(tap, [stream])).toBe(stream);
    expect(tap.usage).toEqual({
      promptTokens: 5,
      completionTokens: 2,
      cachedTokens: 0,
      cacheWriteTokens: 0,
      reasoningTokens: 0,
      estimated: false,
    });
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
      const out = run(tap, [bytes.subarray(0, cut), bytes.subarray(cut, cut + 3), bytes.subarray(cut + 3)]);
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

  it('bills a usage chunk written with spaces, and CR-only framing', () => {
    const s =
      'data: {"choices": [], "usage": {"prompt_tokens": 4, "completion_tokens": 3}}\r\rdata: [DONE]\r\r';
    const tap = new SseTap(true);
    expect(run(tap, [s])).toBe('data: [DONE]\r\r');
    expect(tap.usage).toMatchObject({ promptTokens: 4, completionTokens: 3 });
  });

  it('forwards a 16 MB event as it arrives, holding at most MAX_HELD_CHARS of it', () => {
    const content = 'x'.repeat(16 * 1024 * 1024);
    const input = Buffer.from(chunk(content) + usageChunk + done);
    const tap = new SseTap(true);
    let inBytes = 0;
    let outBytes = 0;
    let out = '';
    for (let i = 0; i < input.length; i += 65_536) {
      const part = input.subarray(i, i + 65_536);
      inBytes += part.length;
      const o = tap.push(part);
      outBytes += Buffer.byteLength(o);
      out += o;
      expect(inBytes - outBytes).toBeLessThanOrEqual(MAX_HELD_CHARS + 65_536);
    }
    out += tap.flush();
    expect(tap.contentEvents).toBe(1);
    expect(tap.usage?.promptTokens).toBe(5);
    expect(tap.sawDone).toBe(true);
    // The big event passes as it comes; the usage chunk is hidden.
    expect(out).toBe(plain(content) + done);
  });

  it('writes an OpenAI-shaped error event', () => {
    const ev = sseErrorEvent('boom', 'upstream_stream_interrupted');
    expect(ev.endsWith('\n\n')).toBe(true);
    expect(JSON.parse(ev.slice(6))).toEqual({
      error: { message: 'boom', type: 'upstream_error', param: null, code: 'upstream_stream_interrupted' },
    });
  });
});
