import { AzureOpenAI } from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type MockUpstream, startMockUpstream } from '../../mock-upstream/server.ts';

// The mock's Azure OpenAI shape, exercised with the official SDK's Azure client (the peer whose
// URLs and headers it must accept) and with raw requests for what the SDK never sends.
describe('mock upstream: azure-openai', () => {
  let mock: MockUpstream;
  beforeAll(async () => {
    mock = await startMockUpstream({ name: 'az', apiKey: 'az-key' });
  });
  afterAll(() => mock.close());

  it('dated API: deployment URL, api-version, api-key header (AzureOpenAI SDK client)', async () => {
    const client = new AzureOpenAI({
      endpoint: mock.url,
      apiKey: 'az-key',
      apiVersion: '2024-10-21',
      deployment: 'my-gpt4o',
      maxRetries: 0,
    });
    const r = await client.chat.completions.create({
      model: 'ignored',
      messages: [{ role: 'user', content: 'hi' }],
    });
    expect(r.model).toBe('my-gpt4o');
    expect(r.choices[0]!.message.content).toBeTruthy();
    const last = mock.stats().last!;
    expect(last.path).toBe('/openai/deployments/my-gpt4o/chat/completions');
    expect(last.headers['api-key']).toBe('az-key');
    const chunks = [];
    const s = await client.chat.completions.create({
      model: 'ignored',
      messages: [{ role: 'user', content: 'hi' }],
      stream: true,
    });
    for await (const c of s) chunks.push(c);
    expect(chunks.map((c) => c.choices[0]?.delta.content ?? '').join('')).toBeTruthy();
  });

  it('v1 API: /openai/v1/..., model in the body', async () => {
    const res = await fetch(`${mock.url}/openai/v1/embeddings`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'api-key': 'az-key' },
      body: JSON.stringify({ model: 'emb', input: 'x' }),
    });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { model: string }).model).toBe('emb');
  });

  it("a wrong key gets Azure's 401 body; a deployment URL without api-version a 404", async () => {
    const bad = await fetch(`${mock.url}/openai/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer az-key' },
      body: JSON.stringify({ model: 'm', messages: [] }),
    });
    expect(bad.status).toBe(401);
    expect(((await bad.json()) as { error: { code: string } }).error.code).toBe('401');
    const noVersion = await fetch(`${mock.url}/openai/deployments/d/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'api-key': 'az-key' },
      body: JSON.stringify({ messages: [] }),
    });
    expect(noVersion.status).toBe(404);
  });
});

describe('mock upstream: preambleThenStallMs', () => {
  it('sends the role-only chunk at once and the content only after the stall', async () => {
    const mock = await startMockUpstream();
    try {
      const t0 = Date.now();
      const res = await fetch(`${mock.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-mock-preamble-then-stall-ms': '400' },
        body: JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'hi' }], stream: true }),
      });
      const reader = res.body!.getReader();
      const first = new TextDecoder().decode((await reader.read()).value);
      expect(first).toContain('"role":"assistant"');
      expect(first).not.toContain('[DONE]');
      let rest = '';
      for (;;) {
        const r = await reader.read();
        if (r.done) break;
        rest += new TextDecoder().decode(r.value);
      }
      expect(rest).toContain('[DONE]');
      expect(Date.now() - t0).toBeGreaterThanOrEqual(350); // a lower bound only
    } finally {
      await mock.close();
    }
  });
});
