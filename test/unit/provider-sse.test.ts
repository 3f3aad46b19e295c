import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SseParser } from '../../providers/sse.ts';

// Anthropic's documented stream framing (event + data lines), as peers send it.
const EVENTS = [
  { event: 'message_start', data: '{"type":"message_start","message":{"id":"msg_1"}}' },
  { event: 'ping', data: '{"type": "ping"}' },
  { event: 'content_block_delta', data: '{"type":"content_block_delta","delta":{"text":"Hé"}}' },
  { event: undefined, data: 'line one\nline two' },
];

function frame(nl: string): string {
  return EVENTS.map(
    (e) =>
      `: comment${nl}${e.event ? `event: ${e.event}${nl}` : ''}${e.data
        .split('\n')
        .map((l) => `data: ${l}`)
        .join(nl)}${nl}${nl}`,
  ).join('');
}

describe('SseParser', () => {
  it('parses any line ending, split at any byte', () => {
    fc.assert(
      fc.property(fc.constantFrom('\n', '\r\n', '\r'), fc.array(fc.nat(), { maxLength: 8 }), (nl, cuts) => {
        const bytes = Buffer.from(frame(nl));
        const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
        const p = new SseParser();
        const got = [];
        let at = 0;
        for (const c of [...points, bytes.length]) {
          got.push(...p.push(bytes.subarray(at, c)));
          at = c;
        }
        got.push(...p.end());
        expect(got).toEqual(EVENTS);
      }),
    );
  });

  it('dispatches a last event that lacks its blank line at the end', () => {
    const p = new SseParser();
    expect(p.push('data: {"a":1}\n')).toEqual([]);
    expect(p.end()).toEqual([{ event: undefined, data: '{"a":1}' }]);
  });
});
