import { spawn } from 'node:child_process';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import OpenAI from 'openai';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type MockUpstream, startMockUpstream } from '../../mock-upstream/server.ts';

const words = (s: string) => s.split(/\s+/).filter(Boolean).length;

function client(mock: MockUpstream, apiKey = 'sk-test'): OpenAI {
  return new OpenAI({ baseURL: `${mock.url}/v1`, apiKey, maxRetries: 0, timeout: 10_000 });
}

function postJson(mock: MockUpstream, path: string, body: unknown, headers: Record<string, string> = {}) {
  return fetch(mock.url + path, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

/** Params for the SDK. */
const chatParams = {
  model: 'gpt-4o-mini',
  messages: [{ role: 'user', content: 'say something' }] as OpenAI.ChatCompletionMessageParam[],
};

/** A raw JSON body for fetch. */
const chatBody = (extra: Record<string, unknown> = {}) => ({
  model: 'gpt-4o-mini',
  messages: [{ role: 'user', content: 'say something' }],
  ...extra,
});

/** Parses the `data:` payloads of an SSE text. */
function sseData(text: string): string[] {
  return text
    .split('\n\n')
    .filter((e) => e.startsWith('data: '))
    .map((e) => e.slice(6));
}

/** Reads from a fetch body reader until `timeoutMs` passes with nothing new; returns the text and whether it ended. */
async function readUntilQuiet(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  timeoutMs: number,
): Promise<{ text: string; done: boolean; timedOut: boolean }> {
  const dec = new TextDecoder();
  let text = '';
  for (;;) {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<'timeout'>((r) => {
      timer = setTimeout(() => r('timeout'), timeoutMs);
    });
    const r = await Promise.race([reader.read(), timeout]);
    clearTimeout(timer);
    if (r === 'timeout') return { text, done: false, timedOut: true };
    if (r.done) return { text, done: true, timedOut: false };
    text += dec.decode(r.value, { stream: true });
  }
}

/** A raw HTTP/1.1 request over node:net, so a test can watch the socket itself. */
function rawRequest(mock: MockUpstream, path: string, body: unknown, headers: Record<string, string> = {}) {
  const payload = JSON.stringify(body);
  const socket = net.connect(mock.port, '127.0.0.1');
  const state = {
    data: '',
    ended: false,
    closed: false,
    error: undefined as NodeJS.ErrnoException | undefined,
  };
  socket.setEncoding('utf8');
  socket.on('data', (d: string) => {
    state.data += d;
  });
  socket.on('end', () => {
    state.ended = true;
  });
  socket.on('close', () => {
    state.closed = true;
  });
  socket.on('error', (e) => {
    state.error = e;
  });
  const extra = Object.entries(headers)
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('');
  socket.write(
    `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n` +
      `Content-Length: ${Buffer.byteLength(payload)}\r\n${extra}\r\n${payload}`,
  );
  return { socket, state };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor(cond: () => boolean, timeoutMs = 2000): Promise<void> {
  const start = Date.now();
  while (!cond()) {
    if (Date.now() - start > timeoutMs) throw new Error('condition not met in time');
    await sleep(5);
  }
}

let mock: MockUpstream;

beforeAll(async () => {
  mock = await startMockUpstream({ name: 'up-a' });
});
afterAll(async () => {
  await mock.close();
});
afterEach(() => {
  mock.setFaults(null);
  mock.resetStats();
});

describe('chat completions', () => {
  it('non-stream: echoes the model, deterministic content and usage', async () => {
    const res = await client(mock).chat.completions.create({
      model: 'some-unknown-model',
      messages: [
        { role: 'system', content: 'you are terse' },
        { role: 'user', content: [{ type: 'text', text: 'one two  three' }] },
      ],
    });
    expect(res.object).toBe('chat.completion');
    expect(res.model).toBe('some-unknown-model');
    expect(res.choices).toHaveLength(1);
    expect(res.choices[0]!.message.role).toBe('assistant');
    expect(res.choices[0]!.finish_reason).toBe('stop');
    const content = res.choices[0]!.message.content!;
    expect(words(content)).toBe(8);
    expect(res.usage).toEqual({ prompt_tokens: 6, completion_tokens: 8, total_tokens: 14 });

    const again = await client(mock).chat.completions.create(chatParams);
    expect(again.choices[0]!.message.content).toBe(content);
  });

  it('completion tokens follow max_tokens / max_completion_tokens (capped)', async () => {
    const c = client(mock);
    const a = await c.chat.completions.create({ ...chatParams, max_tokens: 3 });
    expect(a.usage!.completion_tokens).toBe(3);
    expect(words(a.choices[0]!.message.content!)).toBe(3);
    const b = await c.chat.completions.create({ ...chatParams, max_completion_tokens: 21 });
    expect(b.usage!.completion_tokens).toBe(21);
    expect(words(b.choices[0]!.message.content!)).toBe(21);
    const big = await c.chat.completions.create({ ...chatParams, max_tokens: 1_000_000 });
    expect(big.usage!.completion_tokens).toBe(4096);
    expect(words(big.choices[0]!.message.content!)).toBe(4096);
    const empty = await c.chat.completions.create({
      model: 'm',
      messages: [{ role: 'user', content: '' }],
    });
    expect(empty.usage!.prompt_tokens).toBe(1);
  });

  it('stream: role chunk, one chunk per token, stop, [DONE], no usage without include_usage', async () => {
    const stream = await client(mock).chat.completions.create({
      model: 'gpt-4o',
      messages: [{ role: 'user', content: 'hi' }],
      max_tokens: 5,
      stream: true,
    });
    const chunks: OpenAI.ChatCompletionChunk[] = [];
    for await (const ch of stream) chunks.push(ch);
    expect(chunks).toHaveLength(1 + 5 + 1);
    expect(chunks[0]!.choices[0]!.delta.role).toBe('assistant');
    const text = chunks.map((c) => c.choices[0]?.delta.content ?? '').join('');
    expect(words(text)).toBe(5);
    expect(chunks.every((c) => c.model === 'gpt-4o' && c.object === 'chat.completion.chunk')).toBe(true);
    expect(chunks.at(-1)!.choices[0]!.finish_reason).toBe('stop');
    expect(chunks.some((c) => c.usage)).toBe(false);

    // Same text as the non-streamed answer; and the raw stream ends with [DONE].
    const plain = await client(mock).chat.completions.create({ ...chatParams, max_tokens: 5 });
    expect(plain.choices[0]!.message.content).toBe(text);
    const raw = await (await postJson(mock, '/v1/chat/completions', chatBody({ stream: true }))).text();
    const data = sseData(raw);
    expect(data.at(-1)).toBe('[DONE]');
    expect(data.filter((d) => d.includes('"usage":{'))).toHaveLength(0);
  });

  it('stream with include_usage ends with a usage chunk with empty choices', async () => {
    const stream = await client(mock).chat.completions.create({
      model: 'gpt-4o',
      messages: [{ role: 'user', content: 'a b c d' }],
      max_tokens: 4,
      stream: true,
      stream_options: { include_usage: true },
    });
    const chunks: OpenAI.ChatCompletionChunk[] = [];
    for await (const ch of stream) chunks.push(ch);
    const last = chunks.at(-1)!;
    expect(last.choices).toEqual([]);
    expect(last.usage).toEqual({ prompt_tokens: 4, completion_tokens: 4, total_tokens: 8 });
    expect(chunks.at(-2)!.choices[0]!.finish_reason).toBe('stop');
    expect(chunks.filter((c) => c.usage)).toHaveLength(1);
  });

  it('chunk delay spreads chunk arrival (instance option and per-request header)', async () => {
    const slow = await startMockUpstream({ name: 'slow', chunkDelayMs: 40 });
    try {
      const stream = await client(slow).chat.completions.create({
        ...chatParams,
        max_tokens: 5,
        stream: true,
      });
      const times: number[] = [];
      for await (const ch of stream) if (ch.choices[0]?.delta.content) times.push(performance.now());
      expect(times).toHaveLength(5);
      for (let i = 1; i < times.length; i++) expect(times[i]! - times[i - 1]!).toBeGreaterThanOrEqual(25);
      expect(times.at(-1)! - times[0]!).toBeGreaterThanOrEqual(4 * 30);
    } finally {
      await slow.close();
    }

    const t0 = performance.now();
    const viaHeader = await client(mock).chat.completions.create(
      { ...chatParams, max_tokens: 4, stream: true },
      { headers: { 'x-mock-chunk-delay-ms': '50' } },
    );
    const times: number[] = [];
    for await (const ch of viaHeader) if (ch.choices[0]?.delta.content) times.push(performance.now() - t0);
    expect(times).toHaveLength(4);
    expect(times.at(-1)! - times[0]!).toBeGreaterThanOrEqual(3 * 40);
  });
});

describe('other endpoints', () => {
  it('legacy completions, non-stream and stream', async () => {
    const c = client(mock);
    const res = await c.completions.create({
      model: 'gpt-3.5-turbo-instruct',
      prompt: 'one two',
      max_tokens: 6,
    });
    expect(res.object).toBe('text_completion');
    expect(res.model).toBe('gpt-3.5-turbo-instruct');
    expect(words(res.choices[0]!.text)).toBe(6);
    expect(res.usage).toEqual({ prompt_tokens: 2, completion_tokens: 6, total_tokens: 8 });

    const stream = await c.completions.create({
      model: 'x',
      prompt: ['a b', 'c'],
      max_tokens: 3,
      stream: true,
      stream_options: { include_usage: true },
    });
    const chunks: OpenAI.Completion[] = [];
    for await (const ch of stream) chunks.push(ch);
    expect(chunks).toHaveLength(3 + 1 + 1);
    expect(chunks.map((ch) => ch.choices[0]?.text ?? '').join('')).toBe(
      res.choices[0]!.text.split(' ').slice(0, 3).join(' '),
    );
    expect(chunks.at(-1)!.usage).toEqual({ prompt_tokens: 3, completion_tokens: 3, total_tokens: 6 });
  });

  it('embeddings: deterministic unit vectors, dimensions, float and base64 encodings', async () => {
    const c = client(mock);
    // The SDK asks for base64 by default and decodes it.
    const res = await c.embeddings.create({ model: 'text-embedding-3-small', input: ['hello world', 'bye'] });
    expect(res.model).toBe('text-embedding-3-small');
    expect(res.data).toHaveLength(2);
    expect(res.usage).toEqual({ prompt_tokens: 3, total_tokens: 3 });
    const v0 = Array.from(res.data[0]!.embedding);
    expect(v0).toHaveLength(8);
    expect(Math.hypot(...v0)).toBeCloseTo(1, 4);
    expect(Array.from(res.data[1]!.embedding)).not.toEqual(v0);

    const floats = await c.embeddings.create({ model: 'e', input: 'hello world', encoding_format: 'float' });
    expect(floats.data).toHaveLength(1);
    expect(floats.data[0]!.embedding).toEqual(v0);

    const wide = await c.embeddings.create({ model: 'e', input: 'x', dimensions: 64 });
    expect(wide.data[0]!.embedding).toHaveLength(64);
    const tokens = await c.embeddings.create({ model: 'e', input: [1, 2, 3, 4] });
    expect(tokens.data).toHaveLength(1);
    expect(tokens.usage.prompt_tokens).toBe(4);
  });

  it('images: b64_json per n (gpt-image with usage), url for dall-e served by the mock', async () => {
    const c = client(mock);
    const b64 = await c.images.generate({ model: 'gpt-image-1', prompt: 'a red fox', n: 3 });
    expect(b64.created).toBeTypeOf('number');
    expect(b64.data).toHaveLength(3);
    const png = Buffer.from(b64.data![0]!.b64_json!, 'base64');
    expect(png.subarray(1, 4).toString()).toBe('PNG');
    expect(b64.usage!.input_tokens).toBe(3);

    const urls = await c.images.generate({ model: 'dall-e-3', prompt: 'a cat' });
    expect(urls.data).toHaveLength(1);
    const url = urls.data![0]!.url!;
    expect(url.startsWith(mock.url)).toBe(true);
    const img = await fetch(url);
    expect(img.headers.get('content-type')).toBe('image/png');
    expect(
      Buffer.from(await img.arrayBuffer())
        .subarray(1, 4)
        .toString(),
    ).toBe('PNG');

    const forced = await c.images.generate({
      model: 'dall-e-3',
      prompt: 'a cat',
      response_format: 'b64_json',
    });
    expect(forced.data![0]!.b64_json).toBeTruthy();
  });

  it('models: default list, custom list, retrieve any id', async () => {
    const list = await client(mock).models.list();
    const ids = list.data.map((m) => m.id);
    expect(ids).toEqual(
      expect.arrayContaining(['gpt-4o-mini', 'gpt-4o', 'text-embedding-3-small', 'dall-e-3']),
    );
    const custom = await startMockUpstream({ models: ['m1', 'm2'] });
    try {
      expect((await client(custom).models.list()).data.map((m) => m.id)).toEqual(['m1', 'm2']);
      expect((await client(custom).models.retrieve('whatever')).id).toBe('whatever');
    } finally {
      await custom.close();
    }
  });

  it('unknown paths 404 and malformed JSON 400, in the OpenAI error shape', async () => {
    for (const [method, path] of [
      ['POST', '/v1/nope'],
      ['POST', '/chat/completions'],
      ['GET', '/v1/chat/completions'],
    ] as const) {
      const res = await fetch(mock.url + path, { method, body: method === 'POST' ? '{}' : undefined });
      expect(res.status).toBe(404);
      const body = (await res.json()) as { error: Record<string, unknown> };
      expect(body.error).toMatchObject({ type: 'invalid_request_error', code: 'unknown_url' });
      expect(body.error['message']).toContain(path);
    }
    const bad = await postJson(mock, '/v1/chat/completions', '{"model": ');
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { code: string; message: string } }).error.code).toBe(
      'invalid_json',
    );
    const noModel = await postJson(mock, '/v1/chat/completions', { messages: [] });
    expect(noModel.status).toBe(400);
  });
});

describe('per-request fault headers', () => {
  it('status + retry-after: OpenAI error body, header, SDK sees the status', async () => {
    const res = await postJson(mock, '/v1/chat/completions', chatBody(), {
      'x-mock-status': '429',
      'x-mock-retry-after': '7',
    });
    expect(res.status).toBe(429);
    expect(res.headers.get('retry-after')).toBe('7');
    expect(res.headers.get('x-mock-name')).toBe('up-a');
    const body = (await res.json()) as { error: Record<string, unknown> };
    expect(Object.keys(body.error)).toEqual(expect.arrayContaining(['message', 'type', 'code']));
    expect(body.error['code']).toBe('rate_limit_exceeded');

    const err = await client(mock)
      .chat.completions.create(chatParams, { headers: { 'x-mock-status': '503' } })
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(err).toBeInstanceOf(OpenAI.APIError);
    expect((err as InstanceType<typeof OpenAI.APIError>).status).toBe(503);
    expect((err as InstanceType<typeof OpenAI.APIError>).headers?.get('retry-after')).toBeNull();
  });

  it('latency delays the response headers', async () => {
    const t0 = performance.now();
    const res = await postJson(mock, '/v1/chat/completions', chatBody(), { 'x-mock-latency-ms': '250' });
    expect(performance.now() - t0).toBeGreaterThanOrEqual(240);
    expect(res.status).toBe(200);
  });

  it('reset destroys the connection without a response', async () => {
    const err = await postJson(mock, '/v1/chat/completions', chatBody(), { 'x-mock-reset': '1' }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(TypeError);
    // The request still reached the mock.
    expect(mock.stats().byPath['/v1/chat/completions']).toBe(1);

    const raw = rawRequest(mock, '/v1/chat/completions', chatBody(), { 'x-mock-reset': '1' });
    await waitFor(() => raw.state.closed);
    expect(raw.state.data).toBe('');
    expect(raw.state.error?.code).toBe('ECONNRESET');
  });

  it('stream stall: N content chunks, then silence with the socket open', async () => {
    const res = await postJson(mock, '/v1/chat/completions', chatBody({ stream: true }), {
      'x-mock-stream-stall-after': '2',
    });
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    const got = await readUntilQuiet(reader, 300);
    expect(got.timedOut).toBe(true);
    expect(got.done).toBe(false);
    const data = sseData(got.text);
    expect(data).toHaveLength(1 + 2); // role chunk + 2 content chunks
    expect(got.text).not.toContain('[DONE]');
    await reader.cancel();

    const raw = rawRequest(mock, '/v1/chat/completions', chatBody({ stream: true }), {
      'x-mock-stream-stall-after': '3',
      'x-mock-chunk-delay-ms': '10',
    });
    await waitFor(() => raw.state.data.split('"content":"').length - 1 === 1 + 3);
    await sleep(300);
    expect(raw.state.ended).toBe(false);
    expect(raw.state.closed).toBe(false);
    expect(raw.state.data).not.toContain('finish_reason":"stop');
    raw.socket.destroy();
  });

  it('stream die-after: the stream errors after N content chunks', async () => {
    const stream = await client(mock).chat.completions.create(
      { ...chatParams, max_tokens: 10, stream: true },
      { headers: { 'x-mock-stream-die-after': '3' } },
    );
    const contents: string[] = [];
    const consume = async () => {
      for await (const ch of stream)
        if (ch.choices[0]?.delta.content) contents.push(ch.choices[0].delta.content);
    };
    await expect(consume()).rejects.toThrow();
    expect(contents).toHaveLength(3);

    // Paced, raw: the socket is closed by the server without the chunked terminator.
    const raw = rawRequest(mock, '/v1/chat/completions', chatBody({ stream: true, max_tokens: 10 }), {
      'x-mock-stream-die-after': '2',
      'x-mock-chunk-delay-ms': '10',
    });
    await waitFor(() => raw.state.closed);
    expect(raw.state.data.split('"content":"').length - 1).toBe(1 + 2);
    expect(raw.state.data).not.toContain('[DONE]');
    expect(raw.state.data).not.toContain('\r\n0\r\n\r\n');
  });

  it('legacy completions streams honour stall/die too', async () => {
    const res = await postJson(
      mock,
      '/v1/completions',
      { model: 'x', prompt: 'p', stream: true },
      {
        'x-mock-stream-die-after': '0',
      },
    );
    expect(res.status).toBe(200);
    await expect(res.text()).rejects.toThrow();
  });

  it('invalid fault headers are rejected with 400', async () => {
    const res = await postJson(mock, '/v1/chat/completions', chatBody(), { 'x-mock-status': 'teapot' });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('invalid_mock_header');
  });
});

describe('instance faults', () => {
  it('setFaults with count applies to the next N requests, then clears', async () => {
    mock.setFaults({ status: 503, retryAfter: 2, count: 2 });
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) {
      const res = await postJson(mock, '/v1/chat/completions', chatBody());
      statuses.push(res.status);
      if (i === 0) expect(res.headers.get('retry-after')).toBe('2');
      await res.arrayBuffer();
    }
    expect(statuses).toEqual([503, 503, 200]);
  });

  it('without count they persist until changed; per-request headers override them', async () => {
    mock.setFaults({ status: 500 });
    for (let i = 0; i < 3; i++)
      expect((await postJson(mock, '/v1/embeddings', { model: 'e', input: 'x' })).status).toBe(500);
    const overridden = await postJson(
      mock,
      '/v1/embeddings',
      { model: 'e', input: 'x' },
      { 'x-mock-status': '200' },
    );
    expect(overridden.status).toBe(200);
    const other = await postJson(
      mock,
      '/v1/embeddings',
      { model: 'e', input: 'x' },
      { 'x-mock-status': '502' },
    );
    expect(other.status).toBe(502);
    mock.setFaults(null);
    expect((await postJson(mock, '/v1/embeddings', { model: 'e', input: 'x' })).status).toBe(200);
  });

  it('instance latency and stream faults', async () => {
    mock.setFaults({ latencyMs: 200, count: 1 });
    const t0 = performance.now();
    await (await fetch(`${mock.url}/v1/models`)).arrayBuffer();
    expect(performance.now() - t0).toBeGreaterThanOrEqual(190);

    mock.setFaults({ streamDieAfter: 1 });
    const res = await postJson(mock, '/v1/chat/completions', chatBody({ stream: true }));
    await expect(res.text()).rejects.toThrow();
  });

  it('setFaults rejects invalid descriptions', () => {
    expect(() => mock.setFaults({ status: 42 })).toThrow(TypeError);
    expect(() => mock.setFaults({ statusCode: 500 } as never)).toThrow(/unknown fault/);
    expect(() => mock.setFaults({ latencyMs: -1 })).toThrow(TypeError);
  });
});

describe('control API, stats and names', () => {
  it('PUT /_mock/faults sets and clears faults; control requests are not counted', async () => {
    const put = (body: string) => fetch(`${mock.url}/_mock/faults`, { method: 'PUT', body });
    const set = await put(JSON.stringify({ status: 429, count: 3 }));
    expect(set.status).toBe(200);
    expect(await set.json()).toEqual({ status: 429, count: 3 });
    expect((await postJson(mock, '/v1/chat/completions', chatBody())).status).toBe(429);
    expect(await (await fetch(`${mock.url}/_mock/faults`)).json()).toEqual({ status: 429, count: 2 });

    expect((await put('null')).status).toBe(200);
    expect((await postJson(mock, '/v1/chat/completions', chatBody())).status).toBe(200);
    await put(JSON.stringify({ reset: true }));
    await expect(postJson(mock, '/v1/chat/completions', chatBody())).rejects.toThrow();
    await put('{}');
    expect((await postJson(mock, '/v1/chat/completions', chatBody())).status).toBe(200);

    const invalid = await put('{"status":"x"}');
    expect(invalid.status).toBe(400);
    expect(((await invalid.json()) as { error: { code: string } }).error.code).toBe('invalid_faults');

    const stats = (await (await fetch(`${mock.url}/_mock/stats`)).json()) as ReturnType<
      MockUpstream['stats']
    >;
    expect(stats.requests).toBe(4); // the reset request counts too
    expect(stats.byPath).toEqual({ '/v1/chat/completions': 4 });
    expect(stats).toEqual(mock.stats());

    const reset = await fetch(`${mock.url}/_mock/reset-stats`, { method: 'POST' });
    expect(reset.status).toBe(204);
    expect(mock.stats()).toEqual({ requests: 0, byPath: {}, connections: 0 });
  });

  it('stats record the last request: method, path, headers and parsed body', async () => {
    await client(mock, 'sk-client').chat.completions.create({
      model: 'renamed-upstream-model',
      messages: [{ role: 'user', content: 'x' }],
    });
    await (await fetch(`${mock.url}/v1/models?limit=1`)).arrayBuffer();
    await postJson(
      mock,
      '/v1/embeddings',
      { model: 'e', input: 'q' },
      { authorization: 'Bearer upstream-key' },
    );
    const s = mock.stats();
    expect(s.requests).toBe(3);
    expect(s.byPath).toEqual({ '/v1/chat/completions': 1, '/v1/models': 1, '/v1/embeddings': 1 });
    expect(s.last).toMatchObject({
      method: 'POST',
      path: '/v1/embeddings',
      body: { model: 'e', input: 'q' },
    });
    expect(s.last!.headers['authorization']).toBe('Bearer upstream-key');
  });

  it('every response carries x-mock-name, and each instance its own', async () => {
    const other = await startMockUpstream({ name: 'up-b' });
    try {
      expect((await fetch(`${other.url}/v1/models`)).headers.get('x-mock-name')).toBe('up-b');
      expect((await fetch(`${mock.url}/nope`)).headers.get('x-mock-name')).toBe('up-a');
      expect((await fetch(`${mock.url}/_mock/stats`)).headers.get('x-mock-name')).toBe('up-a');
      const sse = await postJson(mock, '/v1/chat/completions', chatBody({ stream: true }));
      expect(sse.headers.get('x-mock-name')).toBe('up-a');
      expect(sse.headers.get('content-type')).toMatch(/^text\/event-stream/);
      await sse.text();
    } finally {
      await other.close();
    }
  });
});

describe('auth', () => {
  it('requires Authorization: Bearer <apiKey> when apiKey is set', async () => {
    const secured = await startMockUpstream({ apiKey: 'sk-upstream' });
    try {
      const ok = await client(secured, 'sk-upstream').chat.completions.create(chatParams);
      expect(ok.object).toBe('chat.completion');

      const err = await client(secured, 'sk-wrong')
        .chat.completions.create(chatParams)
        .then(
          () => undefined,
          (e: unknown) => e,
        );
      expect(err).toBeInstanceOf(OpenAI.AuthenticationError);
      expect((err as InstanceType<typeof OpenAI.AuthenticationError>).code).toBe('invalid_api_key');

      const none = await fetch(`${secured.url}/v1/models`);
      expect(none.status).toBe(401);
      expect(((await none.json()) as { error: { code: string } }).error.code).toBe('invalid_api_key');
    } finally {
      await secured.close();
    }
  });
});

describe('lifecycle', () => {
  it('close() ends stalled streams and frees the port', async () => {
    const m = await startMockUpstream({ faults: { streamStallAfter: 1 } });
    const raw = rawRequest(m, '/v1/chat/completions', chatBody({ stream: true }));
    await waitFor(() => raw.state.data.includes('"content":"This"'));
    const closed = await Promise.race([m.close().then(() => 'closed'), sleep(2000).then(() => 'hung')]);
    expect(closed).toBe('closed');
    await waitFor(() => raw.state.closed);
    await expect(fetch(`${m.url}/v1/models`)).rejects.toThrow();
    await m.close(); // idempotent
  });

  it('runMockUpstreamCli logs its URL and exits on SIGTERM', async () => {
    const serverPath = fileURLToPath(new URL('../../mock-upstream/server.ts', import.meta.url));
    const script =
      `const m = await import(${JSON.stringify(serverPath)});` +
      `await m.runMockUpstreamCli({ port: 0, host: '127.0.0.1', name: 'cli', status: 418 });`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    try {
      let out = '';
      child.stdout.setEncoding('utf8');
      child.stdout.on('data', (d: string) => {
        out += d;
      });
      await waitFor(() => out.includes('\n'), 10_000);
      const match = /^mock-upstream cli listening on (http:\/\/127\.0\.0\.1:\d+)\n$/.exec(out);
      expect(match).not.toBeNull();
      const res = await fetch(`${match![1]}/v1/models`);
      expect(res.status).toBe(418);
      const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });
});
