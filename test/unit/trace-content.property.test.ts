import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createRelayMetrics } from '../../relay/metrics.ts';
import { exposition, prefersOpenMetrics } from '../../relay/metrics-exposition.ts';
import { CompletionRecorder } from '../../relay/trace-content.ts';

// A chat completion and its stream as OpenAI documents them (API reference, "The chat completion
// object" and "The chat completion chunk object").
const ANSWER = {
  id: 'chatcmpl-123',
  object: 'chat.completion',
  created: 1677652288,
  model: 'gpt-4o-mini',
  choices: [
    {
      index: 0,
      message: { role: 'assistant', content: '\n\nHello there, how may I assist you today?' },
      logprobs: null,
      finish_reason: 'stop',
    },
  ],
  usage: { prompt_tokens: 9, completion_tokens: 12, total_tokens: 21 },
};

function chunk(delta: Record<string, unknown>, finish: string | null = null) {
  return {
    id: 'chatcmpl-123',
    object: 'chat.completion.chunk',
    created: 1694268190,
    model: 'gpt-4o-mini',
    choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
  };
}

/** An SSE body of `parts`, with the spacing and line ends that real peers vary. */
function sse(parts: string[], o: { crlf: boolean; space: boolean; pretty: boolean }) {
  const nl = o.crlf ? '\r\n' : '\n';
  const data = (v: unknown) =>
    `data:${o.space ? ' ' : ''}${o.pretty ? JSON.stringify(v, null, 1).replaceAll('\n', '') : JSON.stringify(v)}${nl}${nl}`;
  return [
    data(chunk({ role: 'assistant', content: '' })),
    ...parts.map((p) => data(chunk({ content: p }))),
    data(chunk({}, 'stop')),
    `data:${o.space ? ' ' : ''}[DONE]${nl}${nl}`,
  ].join('');
}

/** `text` cut at the given offsets (as Buffers: a cut may split a UTF-8 character). */
function cut(text: string, offsets: number[]): Buffer[] {
  const bytes = Buffer.from(text);
  const at = [...new Set(offsets.map((o) => o % (bytes.length + 1)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let prev = 0;
  for (const o of [...at, bytes.length]) {
    out.push(bytes.subarray(prev, o));
    prev = o;
  }
  return out;
}

describe('CompletionRecorder', () => {
  it('a JSON answer: its message, whatever the chunking', () => {
    fc.assert(
      fc.property(fc.array(fc.nat(), { maxLength: 8 }), (offsets) => {
        const r = new CompletionRecorder(false);
        for (const c of cut(JSON.stringify(ANSWER), offsets)) r.push(c);
        expect(r.messages()).toEqual([
          {
            role: 'assistant',
            parts: [{ type: 'text', content: ANSWER.choices[0]!.message.content }],
            finish_reason: 'stop',
          },
        ]);
      }),
    );
  });

  it('a stream: the deltas joined, whatever the chunk boundaries, line ends and spacing', () => {
    fc.assert(
      fc.property(
        fc.array(fc.string({ unit: 'grapheme', maxLength: 12 }), { maxLength: 20 }),
        fc.array(fc.nat(), { maxLength: 12 }),
        fc.boolean(),
        fc.boolean(),
        fc.boolean(),
        (parts, offsets, crlf, space, pretty) => {
          const r = new CompletionRecorder(true);
          for (const c of cut(sse(parts, { crlf, space, pretty }), offsets)) r.push(c);
          expect(r.messages()).toEqual([
            { role: 'assistant', parts: [{ type: 'text', content: parts.join('') }], finish_reason: 'stop' },
          ]);
        },
      ),
    );
  });

  it('holds at most its limit of text, and marks the cut', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 64 }),
        fc.array(fc.string({ maxLength: 30 }), { maxLength: 40 }),
        (limit, parts) => {
          const r = new CompletionRecorder(true, limit);
          r.push(sse(parts, { crlf: false, space: true, pretty: false }));
          const text = r.messages()![0]!.parts[0]!.content;
          const whole = parts.join('');
          if (whole.length <= limit) expect(text).toBe(whole);
          else expect(text).toBe(`${whole.slice(0, limit)}…[truncated]`);
        },
      ),
    );
  });

  it('records nothing from what is not a completion', () => {
    const r = new CompletionRecorder(false);
    r.push('{"error":{"message":"no","type":"server_error","code":null}}');
    expect(r.messages()).toBeUndefined();
    const s = new CompletionRecorder(true);
    s.push('event: ping\ndata: not json\n\n: comment\n\n');
    expect(s.messages()).toBeUndefined();
  });
});

describe('/metrics format negotiation', () => {
  it('OpenMetrics only when the Accept header prefers it', () => {
    // What Prometheus 2.x sends, then what curl and promtool send.
    expect(
      prefersOpenMetrics(
        'application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1',
      ),
    ).toBe(true);
    expect(prefersOpenMetrics('*/*')).toBe(false);
    expect(prefersOpenMetrics(undefined)).toBe(false);
    expect(prefersOpenMetrics('text/plain;version=0.0.4;q=1, application/openmetrics-text;q=0.5')).toBe(
      false,
    );
    expect(prefersOpenMetrics('application/openmetrics-text; q=0')).toBe(false);
  });

  it('both formats from one registry, any number of times, in either order', async () => {
    const m = createRelayMetrics({ defaultMetrics: false, exemplars: true });
    m.requests.inc({ route: '/v1/chat/completions', model: 'm', channel: 'c', code: '200' });
    m.observeRequestDuration({ route: '/v1/chat/completions', model: 'm' }, 0.02, 'abc');
    for (let i = 0; i < 2; i++) {
      const om = await exposition(m.registry, 'application/openmetrics-text');
      expect(om.body).toContain('# TYPE kuberelay_requests counter\n');
      expect(om.body).toContain('kuberelay_requests_total{route="/v1/chat/completions"');
      expect(om.body).toMatch(/_bucket\{le="0.025",.*\} 1 # \{trace_id="abc"\} 0.02 \d/);
      expect(om.body.endsWith('# EOF\n')).toBe(true);
      const text = await exposition(m.registry, undefined);
      expect(text.body).toContain('# TYPE kuberelay_requests_total counter\n');
      expect(text.body).not.toContain('trace_id');
    }
  });
});
