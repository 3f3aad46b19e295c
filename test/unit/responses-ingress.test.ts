import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { anthropic } from '../../providers/anthropic/index.ts';
import { gemini } from '../../providers/gemini/index.ts';
import { openai, openaiCompatible } from '../../providers/openai/index.ts';
import { SseParser } from '../../providers/sse.ts';
import { type ClientStream, carriesToken, TranslatedStream } from '../../relay/client-stream.ts';
import { responsesIngress } from '../../relay/ingress/responses/ingress.ts';
import { chatStream } from '../helpers/openai-examples.ts';

// The Responses API as an Ingress: a channel that speaks it gets the body passed through and its
// native stream read; any other gets chat completions, its stream turned into Responses events by
// the same TranslatedStream that serves every translated stream.

const ctx = { model: 'gpt-4o', includeUsage: false, request: { input: 'Hi' } };
const anthropicStream = JSON.parse(
  readFileSync(new URL('../fixtures/providers/anthropic/stream-text.json', import.meta.url), 'utf8'),
) as { events: [string, string][] };

function translated(adapter: typeof anthropic): ClientStream {
  const plan = responsesIngress.plan(adapter, 'responses');
  expect(plan.operation).toBe('chat');
  expect(plan.native).toBeUndefined();
  const t = plan.translator?.stream?.(ctx);
  if (!t) throw new Error('no stream translator');
  return new TranslatedStream(t);
}

const events = (sse: string) =>
  new SseParser()
    .push(Buffer.from(sse))
    .concat()
    .map(
      (e) => JSON.parse(e.data) as { type: string; sequence_number: number; response?: { usage?: unknown } },
    );

describe('responses ingress', () => {
  it('openai and azure-style channels: native pass-through, its stream read for the id to pin', () => {
    const plan = responsesIngress.plan(openai, 'responses');
    expect(plan).toMatchObject({ operation: 'responses', translator: undefined });
    const s = plan.native!.stream();
    const created = {
      type: 'response.created',
      sequence_number: 0,
      response: { id: 'resp_abc', status: 'in_progress' },
    };
    const delta = { type: 'response.output_text.delta', sequence_number: 1, item_id: 'msg_1', delta: 'Hi' };
    const out = s.push(
      Buffer.from(
        `event: response.created\r\ndata: ${JSON.stringify(created)}\r\n\r\nevent: response.output_text.delta\r\ndata: ${JSON.stringify(delta)}\r\n\r\n`,
      ),
    );
    expect(s.objectId).toBe('resp_abc');
    expect(s.contentEvents).toBe(1);
    expect(out).toContain('"delta":"Hi"');
  });

  it('an OpenAI-compatible channel: chat chunks out as Responses events, no [DONE], content counted', () => {
    const s = translated(openaiCompatible);
    let out = '';
    for (const c of chatStream) {
      out += s.push(Buffer.from(`data: ${JSON.stringify(c)}\n\n`));
      // The first content delta releases the preamble hold: the stream counts it, though its
      // text (`"delta":"Hello"`) is not a chat chunk's.
      if (out.includes('output_text.delta')) expect(s.contentEvents).toBeGreaterThan(0);
    }
    expect(carriesToken(out.slice(0, out.indexOf('output_text.delta') + 60))).toBe(false);
    out += s.push(Buffer.from('data: [DONE]\n\n'));
    expect(s.done).toBe(true);
    expect(s.contentEvents).toBe(2);
    expect(out).not.toContain('[DONE]');
    const evs = events(out);
    expect(evs.map((e) => e.sequence_number)).toEqual(evs.map((_, i) => i));
    expect(evs.at(-1)?.type).toBe('response.completed');
    expect(s.usage()).toMatchObject({ promptTokens: 9, completionTokens: 12, estimated: false });
    expect(s.objectId).toBeUndefined(); // translated responses are never stored upstream: nothing to pin
  });

  it('an Anthropic channel: its documented stream through its chat translation, as Responses events', () => {
    const s = translated(anthropic);
    let out = '';
    for (const [event, data] of anthropicStream.events)
      out += s.push(Buffer.from(`event: ${event}\ndata: ${data}\n\n`));
    expect(s.done).toBe(true);
    const evs = events(out);
    expect(evs[0]?.type).toBe('response.created');
    expect(evs.filter((e) => e.type === 'response.output_text.delta').length).toBe(s.contentEvents);
    expect(s.contentEvents).toBeGreaterThan(0);
    expect(evs.at(-1)?.type).toBe('response.completed');
    expect(evs.at(-1)?.response?.usage).toBeDefined();
  });

  it('a Gemini channel (no end marker): complete once the upstream ended', () => {
    const s = translated(gemini);
    const chunk = {
      candidates: [
        { content: { role: 'model', parts: [{ text: 'Hello' }] }, finishReason: 'STOP', index: 0 },
      ],
      usageMetadata: { promptTokenCount: 3, candidatesTokenCount: 1, totalTokenCount: 4 },
    };
    let out = s.push(Buffer.from(`data: ${JSON.stringify(chunk)}\r\n\r\n`));
    out += s.finish();
    expect(s.done).toBe(true);
    expect(events(out).at(-1)?.type).toBe('response.completed');
  });

  it('a stream cut before its end is not done (the relay then ends it with an error event)', () => {
    const s = translated(openaiCompatible);
    s.push(Buffer.from(`data: ${JSON.stringify(chatStream[1])}\n\n`));
    expect(s.finish()).not.toContain('response.completed');
    expect(s.done).toBe(false);
  });
});
