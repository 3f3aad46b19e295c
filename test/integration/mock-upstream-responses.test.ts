import OpenAI, { AzureOpenAI } from 'openai';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { completionText } from '../../mock-upstream/content.ts';
import { type MockUpstream, startMockUpstream } from '../../mock-upstream/server.ts';

// The mock's Responses API, exercised with the official SDK (OpenAI's and Azure's clients): the
// peer whose parsing its answers and events must pass, and its fault injection.
describe('mock upstream: the Responses API', () => {
  let mock: MockUpstream;
  let client: OpenAI;
  beforeAll(async () => {
    mock = await startMockUpstream({ name: 'resp', apiKey: 'k' });
    client = new OpenAI({ baseURL: `${mock.url}/v1`, apiKey: 'k', maxRetries: 0 });
  });
  afterEach(() => mock.setFaults(null));
  afterAll(() => mock.close());

  it('create, stream, retrieve, input_items, delete', async () => {
    const r = await client.responses.create({ model: 'gpt-4o-mini', input: 'one two', max_output_tokens: 3 });
    expect(r.output_text).toBe(completionText(3));
    expect(r.usage).toMatchObject({ input_tokens: 2, output_tokens: 3, total_tokens: 5 });
    const final = await client.responses
      .stream({ model: 'gpt-4o-mini', input: 'hi', max_output_tokens: 5 })
      .finalResponse();
    expect(final.output_text).toBe(completionText(5));
    expect((await client.responses.retrieve(r.id)).output_text).toBe(r.output_text);
    const items = await client.responses.inputItems.list(r.id);
    expect(items.data[0]).toMatchObject({
      type: 'message',
      role: 'user',
      content: [{ type: 'input_text', text: 'one two' }],
    });
    await client.responses.delete(r.id);
    await expect(client.responses.retrieve(r.id)).rejects.toBeInstanceOf(OpenAI.NotFoundError);
  });

  it('background responses are cancelled; others refuse to be', async () => {
    const bg = await client.responses.create({ model: 'm', input: 'x', background: true });
    expect(bg.status).toBe('queued');
    expect((await client.responses.cancel(bg.id)).status).toBe('cancelled');
    const fg = await client.responses.create({ model: 'm', input: 'x' });
    await expect(client.responses.cancel(fg.id)).rejects.toBeInstanceOf(OpenAI.BadRequestError);
  });

  it('a forced function tool is called with arguments that fit its schema (streamed too)', async () => {
    const tools = [
      {
        type: 'function' as const,
        name: 'f',
        parameters: { type: 'object', properties: { city: { type: 'string' }, n: { type: 'integer' } } },
        strict: false,
      },
    ];
    const r = await client.responses.create({ model: 'm', input: 'x', tools, tool_choice: 'required' });
    expect(r.output[0]).toMatchObject({
      type: 'function_call',
      name: 'f',
      arguments: '{"city":"mock","n":1}',
    });
    const s = await client.responses
      .stream({ model: 'm', input: 'x', tools, tool_choice: 'required' })
      .finalResponse();
    expect(s.output[0]).toMatchObject({ type: 'function_call', arguments: '{"city":"mock","n":1}' });
  });

  it('faults: a status fault in OpenAI shape; a stream cut after N deltas', async () => {
    mock.setFaults({ status: 503, count: 1 });
    await expect(client.responses.create({ model: 'm', input: 'x' })).rejects.toMatchObject({ status: 503 });
    mock.setFaults({ streamDieAfter: 2, count: 1 });
    const s = client.responses.stream({ model: 'm', input: 'x' });
    await expect(s.finalResponse()).rejects.toThrow();
  });

  it("Azure's client: /openai/v1/responses, and /openai/responses?api-version= for a dated version", async () => {
    const v1 = new OpenAI({
      baseURL: `${mock.url}/openai/v1`,
      apiKey: 'unused',
      defaultHeaders: { 'api-key': 'k' },
      maxRetries: 0,
    });
    expect((await v1.responses.create({ model: 'dep', input: 'x' })).output_text).toBeTruthy();
    expect(mock.stats().last!.path).toBe('/openai/v1/responses');
    const dated = new AzureOpenAI({
      endpoint: mock.url,
      apiKey: 'k',
      apiVersion: '2025-04-01-preview',
      maxRetries: 0,
    });
    const r = await dated.responses.create({ model: 'dep', input: 'x' });
    expect(mock.stats().last!.path).toBe('/openai/responses');
    expect((await dated.responses.retrieve(r.id)).id).toBe(r.id);
    expect(mock.stats().last!.path).toBe(`/openai/responses/${r.id}`);
  });
});
