import Anthropic from '@anthropic-ai/sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type MockUpstream, startMockUpstream } from '../../mock-upstream/server.ts';

// The mock's Anthropic Messages shape, read by the official SDK (the peer whose parser it must
// satisfy, streams included), and raw requests for what the SDK never sends.
describe('mock upstream: anthropic', () => {
  let mock: MockUpstream;
  let client: Anthropic;
  beforeAll(async () => {
    mock = await startMockUpstream({ name: 'ant', apiKey: 'ant-key' });
    client = new Anthropic({ baseURL: mock.url, apiKey: 'ant-key', maxRetries: 0 });
  });
  afterAll(() => mock.close());

  const weather = {
    name: 'get_weather',
    description: 'Get the current weather in a given location',
    input_schema: {
      type: 'object' as const,
      properties: { location: { type: 'string' }, unit: { type: 'string', enum: ['celsius', 'fahrenheit'] } },
      required: ['location'],
    },
  };

  it('a Message: text, stop reason, usage (the SDK authenticates with a Bearer key)', async () => {
    const r = await client.messages.create({
      model: 'claude-sonnet-4-20250514',
      max_tokens: 1024,
      system: 'Be brief.',
      messages: [{ role: 'user', content: 'Hello there Claude' }],
    });
    expect(r.type).toBe('message');
    expect(r.content[0]).toMatchObject({
      type: 'text',
      text: 'This is a mock response from the kuberelay',
    });
    expect(r.stop_reason).toBe('end_turn');
    expect(r.usage).toMatchObject({ input_tokens: 5, output_tokens: 8 });
    const h = mock.stats().last!.headers;
    expect(h.authorization).toBe('Bearer ant-key');
    expect(h['anthropic-version']).toBeTruthy();
  });

  it('a stream the SDK assembles: text deltas, then a forced tool call with input_json_delta', async () => {
    const text = client.messages.stream({
      model: 'claude',
      max_tokens: 1024,
      messages: [{ role: 'user', content: 'Hi' }],
    });
    const events: string[] = [];
    text.on('streamEvent', (e) => events.push(e.type));
    const final = await text.finalMessage();
    expect(final.content[0]).toMatchObject({
      type: 'text',
      text: 'This is a mock response from the kuberelay',
    });
    expect(events[0]).toBe('message_start');
    expect(events.at(-1)).toBe('message_stop');

    const tool = client.messages.stream({
      model: 'claude',
      max_tokens: 1024,
      tools: [weather],
      tool_choice: { type: 'tool', name: 'get_weather' },
      messages: [{ role: 'user', content: 'What is the weather like in San Francisco?' }],
    });
    const msg = await tool.finalMessage();
    expect(msg.stop_reason).toBe('tool_use');
    expect(msg.content[0]).toMatchObject({
      type: 'tool_use',
      name: 'get_weather',
      input: { location: 'mock', unit: 'celsius' },
    });
  });

  it('stop sequences, max_tokens, and prompt caching (write, then read)', async () => {
    const stop = await client.messages.create({
      model: 'c',
      max_tokens: 1024,
      stop_sequences: [' mock'],
      messages: [{ role: 'user', content: 'Hi' }],
    });
    expect(stop).toMatchObject({ stop_reason: 'stop_sequence', stop_sequence: ' mock' });
    expect(stop.content[0]).toMatchObject({ text: 'This is a' });
    const short = await client.messages.create({
      model: 'c',
      max_tokens: 3,
      messages: [{ role: 'user', content: 'Hi' }],
    });
    expect(short).toMatchObject({ stop_reason: 'max_tokens', usage: { output_tokens: 3 } });
    const cached = () =>
      client.messages.create({
        model: 'c',
        max_tokens: 1024,
        system: [
          { type: 'text', text: 'a long shared prefix of six words', cache_control: { type: 'ephemeral' } },
        ],
        messages: [{ role: 'user', content: 'Hi there' }],
      });
    expect((await cached()).usage).toMatchObject({
      input_tokens: 2,
      cache_creation_input_tokens: 7,
      cache_read_input_tokens: 0,
    });
    expect((await cached()).usage).toMatchObject({
      input_tokens: 2,
      cache_creation_input_tokens: 0,
      cache_read_input_tokens: 7,
    });
  });

  it("errors in Anthropic's shape: wrong key, missing version, bad body, injected 529", async () => {
    const bad = new Anthropic({ baseURL: mock.url, apiKey: 'wrong', maxRetries: 0 });
    const e = await bad.messages
      .create({ model: 'c', max_tokens: 5, messages: [{ role: 'user', content: 'x' }] })
      .catch((err) => err);
    expect(e).toBeInstanceOf(Anthropic.AuthenticationError);
    expect(e.error).toEqual({
      type: 'error',
      error: { type: 'authentication_error', message: 'invalid x-api-key' },
    });

    const post = (headers: Record<string, string>, body: string) =>
      fetch(`${mock.url}/v1/messages`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-api-key': 'ant-key', ...headers },
        body,
      });
    const noVersion = await post(
      {},
      '{"model":"c","max_tokens":5,"messages":[{"role":"user","content":"x"}]}',
    );
    expect(noVersion.status).toBe(400);
    expect(await noVersion.json()).toMatchObject({ type: 'error', error: { type: 'invalid_request_error' } });
    const noMax = await post(
      { 'anthropic-version': '2023-06-01' },
      '{"model":"c","messages":[{"role":"user","content":"x"}]}',
    );
    expect(noMax.status).toBe(400);
    expect(await noMax.json()).toMatchObject({ error: { message: 'max_tokens: Field required' } });
    const overloaded = await post(
      { 'anthropic-version': '2023-06-01', 'x-mock-status': '529' },
      '{"model":"c","max_tokens":5,"messages":[{"role":"user","content":"x"}]}',
    );
    expect(overloaded.status).toBe(529);
    expect(await overloaded.json()).toEqual({
      type: 'error',
      error: { type: 'overloaded_error', message: 'Overloaded' },
    });
  });

  it('the shared stream faults apply: a stream that dies mid-way never reaches message_stop', async () => {
    const res = await fetch(`${mock.url}/v1/messages`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'x-api-key': 'ant-key',
        'anthropic-version': '2023-06-01',
        'x-mock-stream-die-after': '2',
      },
      body: '{"model":"c","max_tokens":100,"stream":true,"messages":[{"role":"user","content":"x"}]}',
    });
    const text = await res.text().catch(() => 'cut');
    expect(text).not.toContain('message_stop');
    const whole = await fetch(`${mock.url}/v1/messages`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'x-api-key': 'ant-key',
        'anthropic-version': '2023-06-01',
      },
      body: '{"model":"c","max_tokens":100,"stream":true,"messages":[{"role":"user","content":"x"}]}',
    });
    expect(whole.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const events = [...(await whole.text()).matchAll(/^event: (\w+)$/gm)].map((e) => e[1]);
    expect(events.slice(0, 3)).toEqual(['message_start', 'content_block_start', 'ping']);
    expect(events.slice(-3)).toEqual(['content_block_stop', 'message_delta', 'message_stop']);
  });
});
