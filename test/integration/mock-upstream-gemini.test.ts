// The mock upstream's Gemini API: its auth, answers, stream, embeddings and the shared faults, in
// Gemini's own shapes.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type MockUpstream, startMockUpstream } from '../../mock-upstream/server.ts';

let mock: MockUpstream;
const KEY = 'gemini-test-key';

beforeAll(async () => {
  mock = await startMockUpstream({ apiKey: KEY });
});
afterAll(() => mock.close());

const call = (method: string, body: unknown, headers: Record<string, string> = { 'x-goog-api-key': KEY }) =>
  fetch(`${mock.url}/v1beta/models/gemini-2.5-flash:${method}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });

const hello = { contents: [{ role: 'user', parts: [{ text: 'Hello there' }] }] };

describe('mock upstream: Gemini API', () => {
  it('checks x-goog-api-key and answers in Gemini error shape', async () => {
    const wrong = await call('generateContent', hello, { 'x-goog-api-key': 'nope' });
    expect(wrong.status).toBe(400);
    const body = (await wrong.json()) as { error: { status: string; details: { reason: string }[] } };
    expect(body.error.status).toBe('INVALID_ARGUMENT');
    expect(body.error.details[0]!.reason).toBe('API_KEY_INVALID');
    expect((await call('generateContent', hello, {})).status).toBe(400);
    // a Bearer key is not how Gemini authenticates
    expect((await call('generateContent', hello, { authorization: `Bearer ${KEY}` })).status).toBe(400);
    expect((await call('generateContent', hello, { 'x-goog-api-key': KEY })).status).toBe(200);
  });

  it('generateContent: text, usageMetadata, a thinking budget and an implicit cache hit', async () => {
    const body = {
      contents: [{ role: 'user', parts: [{ text: 'Fresh start' }] }], // not sent before: no cache hit yet
      generationConfig: { maxOutputTokens: 3, thinkingConfig: { thinkingBudget: 100 } },
    };
    const first = (await (await call('generateContent', body)).json()) as {
      candidates: { content: { parts: { text: string }[] }; finishReason: string }[];
      usageMetadata: Record<string, number>;
    };
    expect(first.candidates[0]!.content.parts[0]!.text).toBe('This is a');
    expect(first.candidates[0]!.finishReason).toBe('STOP');
    expect(first.usageMetadata).toMatchObject({
      promptTokenCount: 2,
      candidatesTokenCount: 3,
      thoughtsTokenCount: 8,
    });
    expect(first.usageMetadata['totalTokenCount']).toBe(13);
    expect(first.usageMetadata['cachedContentTokenCount']).toBeUndefined();
    const again = (await (await call('generateContent', body)).json()) as {
      usageMetadata: Record<string, number>;
    };
    expect(again.usageMetadata['cachedContentTokenCount']).toBe(2);
  });

  it('answers with a functionCall when one is due, with text after the function result', async () => {
    const tools = [
      {
        functionDeclarations: [
          { name: 'get_weather', parametersJsonSchema: { type: 'object', required: ['city'] } },
        ],
      },
    ];
    const r = (await (await call('generateContent', { ...hello, tools })).json()) as {
      candidates: { content: { parts: { functionCall?: unknown; text?: string }[] } }[];
    };
    expect(r.candidates[0]!.content.parts[0]!.functionCall).toEqual({
      name: 'get_weather',
      args: { city: 'mock' },
    });
    const answered = {
      tools,
      contents: [
        ...hello.contents,
        { role: 'model', parts: [{ functionCall: { name: 'get_weather', args: { city: 'mock' } } }] },
        {
          role: 'user',
          parts: [{ functionResponse: { name: 'get_weather', response: { result: 'sunny' } } }],
        },
      ],
    };
    const r2 = (await (await call('generateContent', answered)).json()) as typeof r;
    expect(typeof r2.candidates[0]!.content.parts[0]!.text).toBe('string');
  });

  it('streamGenerateContent?alt=sse: one GenerateContentResponse per event, the last with finishReason', async () => {
    const res = await fetch(`${mock.url}/v1beta/models/g:streamGenerateContent?alt=sse`, {
      method: 'POST',
      headers: { 'x-goog-api-key': KEY },
      body: JSON.stringify({ ...hello, generationConfig: { maxOutputTokens: 4 } }),
    });
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const events = (await res.text())
      .split('\n\n')
      .filter((e) => e.startsWith('data: '))
      .map((e) => JSON.parse(e.slice(6)));
    expect(events).toHaveLength(5);
    expect(events.map((e) => e.candidates[0].content.parts[0].text).join('')).toBe('This is a mock');
    expect(events.at(-1).candidates[0].finishReason).toBe('STOP');
    expect(events.at(-1).usageMetadata.candidatesTokenCount).toBe(4);
  });

  it('embedContent and batchEmbedContents, outputDimensionality honoured', async () => {
    const one = (await (
      await call('embedContent', { content: { parts: [{ text: 'a' }] }, outputDimensionality: 4 })
    ).json()) as { embedding: { values: number[] } };
    expect(one.embedding.values).toHaveLength(4);
    const req = (text: string) => ({ model: 'models/gemini-2.5-flash', content: { parts: [{ text }] } });
    const batch = (await (await call('batchEmbedContents', { requests: [req('a'), req('b')] })).json()) as {
      embeddings: { values: number[] }[];
    };
    expect(batch.embeddings).toHaveLength(2);
    const plain = (await (await call('embedContent', { content: { parts: [{ text: 'a' }] } })).json()) as {
      embedding: { values: number[] };
    };
    expect(batch.embeddings[0]!.values).toEqual(plain.embedding.values); // same text, same vector
    expect(batch.embeddings[1]!.values).not.toEqual(plain.embedding.values);
    const wrongModel = await call('batchEmbedContents', {
      requests: [{ ...req('a'), model: 'models/other' }],
    });
    expect(wrongModel.status).toBe(400);
  });

  it('injected status faults come back in Gemini error shape, with Retry-After', async () => {
    const res = await call('generateContent', hello, {
      'x-goog-api-key': KEY,
      'x-mock-status': '429',
      'x-mock-retry-after': '2',
    });
    expect(res.status).toBe(429);
    expect(res.headers.get('retry-after')).toBe('2');
    expect(((await res.json()) as { error: { code: number; status: string } }).error).toMatchObject({
      code: 429,
      status: 'RESOURCE_EXHAUSTED',
    });
  });
});
