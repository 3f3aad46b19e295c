import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MockUpstream } from '../../mock-upstream/server.ts';
import { chat, configYaml, type Harness, post, startHarness, startMocks } from '../helpers/harness.ts';
import { openRaw, parseResponse } from '../helpers/raw-http.ts';

/**
 * Clients nobody on the project wrote: no key but a large body, bodies and headers sent at a byte
 * a second, connections opened and left, JSON nested 100k deep, headers over the limit. Each gets
 * an answer in OpenAI's error shape in bounded time, and the relay keeps serving everyone else.
 */

const openAIError = (code: string) => ({
  error: { code, type: expect.any(String), message: expect.any(String), param: null },
});

describe('hostile clients: auth before the body', () => {
  let mocks: MockUpstream[];
  let h: Harness;
  let dataDir: string;
  let key: string;

  beforeAll(async () => {
    mocks = await startMocks(['one']);
    dataDir = await mkdtemp(join(tmpdir(), 'kuberelay-hostile-'));
    h = await startHarness(configYaml([{ name: 'one', mock: mocks[0] }]), {
      auth: 'keys',
      persistence: { dataDir, admin: { port: 0, token: 'admin-token-hostile-0123456789' } },
    });
    key = (await h.relay.persistence!.keys.create({ name: 'ok', models: ['gpt-4o-mini'] })).secret;
  });
  afterAll(async () => {
    await h?.close();
    await Promise.all((mocks ?? []).map((m) => m.close()));
    await rm(dataDir, { recursive: true, force: true });
  });

  it('a keyless client with a malformed body gets 401, not a verdict on its JSON', async () => {
    const res = await post(h.url, '/v1/chat/completions', '{"model": "gpt-4o-mini", ');
    expect(res.status).toBe(401);
    expect(res.json).toEqual(openAIError('invalid_api_key'));
  });

  it('a keyless client declaring 10 MiB gets its 401 before sending it, and the connection closes', async () => {
    const c = await openRaw(h.url);
    c.write(
      'POST /v1/chat/completions HTTP/1.1\r\nHost: relay\r\nContent-Type: application/json\r\n' +
        `Content-Length: ${10 * 1024 * 1024}\r\n\r\n{"model":"gpt-4o-mini","pad":"`,
    );
    // Only a few bytes of the declared 10 MiB are ever sent: the answer cannot wait for them.
    const { received } = await c.closed;
    const res = parseResponse(received);
    expect(res.status).toBe(401);
    expect(res.json).toEqual(openAIError('invalid_api_key'));
    expect(res.headers).toMatch(/connection: close/i);
  });

  it('an unknown key is refused the same way before its body is read', async () => {
    const c = await openRaw(h.url);
    c.write(
      'POST /v1/embeddings HTTP/1.1\r\nHost: relay\r\nContent-Type: application/json\r\n' +
        `Authorization: Bearer sk-kr-${'A'.repeat(43)}\r\nContent-Length: 1000000\r\n\r\n{`,
    );
    const res = parseResponse((await c.closed).received);
    expect(res.status).toBe(401);
    expect(res.json).toEqual(openAIError('invalid_api_key'));
  });

  it('with a key the body is read: bad JSON is a 400, another model a 403, a good request a 200', async () => {
    const auth = { authorization: `Bearer ${key}` };
    const bad = await post(h.url, '/v1/chat/completions', '{"model": ', auth);
    expect(bad.status).toBe(400);
    expect(bad.json.error.code).toBe('invalid_json');
    const other = await post(h.url, '/v1/chat/completions', chat({ model: 'gpt-4o' }), auth);
    expect(other.status).toBe(403);
    expect(other.json.error).toMatchObject({ code: 'model_not_allowed', param: 'model' });
    const ok = await post(h.url, '/v1/chat/completions', chat(), auth);
    expect(ok.status).toBe(200);
    expect(mocks[0]!.stats().requests).toBe(1);
  });
});

describe('hostile clients: slow and idle connections are cut in bounded time', () => {
  let mocks: MockUpstream[];
  let h: Harness;
  const timeouts = { headersMs: 1_000, requestMs: 1_500, keepAliveMs: 1_000 };

  beforeAll(async () => {
    // The stream below lasts ~2.4 s, longer than every deadline above.
    mocks = await startMocks(['slow'], { chunkDelayMs: 300 });
    h = await startHarness(configYaml([{ name: 'slow', mock: mocks[0] }]), { timeouts });
  });
  afterAll(async () => {
    await h?.close();
    await Promise.all((mocks ?? []).map((m) => m.close()));
  });

  // Generous bounds: the deadline plus Node's 1 s check interval plus slack for a loaded machine.
  const BOUND_MS = 10_000;

  it('a body sent at a byte at a time gets 408 in the OpenAI shape and is closed', async () => {
    const c = await openRaw(h.url);
    c.write(
      'POST /v1/chat/completions HTTP/1.1\r\nHost: relay\r\nContent-Type: application/json\r\n' +
        'Content-Length: 100000\r\n\r\n{',
    );
    c.drip(' ', 100);
    const { afterMs, received } = await c.closed;
    expect(afterMs).toBeGreaterThanOrEqual(timeouts.requestMs - 50);
    expect(afterMs).toBeLessThan(BOUND_MS);
    const res = parseResponse(received);
    expect(res.status).toBe(408);
    expect(res.json).toEqual(openAIError('request_timeout'));
  });

  it('headers dripped a byte at a time get 408 and are closed', async () => {
    const c = await openRaw(h.url);
    c.write('GET /v1/models HTTP/1.1\r\nHost: relay\r\nX-Slow: ');
    c.drip('a', 100);
    const { afterMs, received } = await c.closed;
    expect(afterMs).toBeLessThan(BOUND_MS);
    expect(parseResponse(received).json).toEqual(openAIError('request_timeout'));
  });

  it('a connection that never sends a request is closed', async () => {
    const c = await openRaw(h.url);
    const { afterMs } = await c.closed;
    expect(afterMs).toBeLessThan(BOUND_MS);
  });

  it('an idle keep-alive connection is closed after its answer', async () => {
    const c = await openRaw(h.url);
    c.write('GET /healthz HTTP/1.1\r\nHost: relay\r\n\r\n');
    const { afterMs, received } = await c.closed;
    expect(parseResponse(received).status).toBe(200);
    expect(afterMs).toBeLessThan(BOUND_MS);
  });

  it('a stream that outlasts every deadline is not cut', async () => {
    const started = performance.now();
    const res = await post(h.url, '/v1/chat/completions', chat({ stream: true, max_tokens: 8 }));
    expect(performance.now() - started).toBeGreaterThan(timeouts.requestMs);
    expect(res.status).toBe(200);
    expect(res.text.trim().endsWith('data: [DONE]')).toBe(true);
  });
});

describe('hostile clients (default settings): parser-level rejections and deadlines', () => {
  let mocks: MockUpstream[];
  let h: Harness;
  beforeAll(async () => {
    mocks = await startMocks(['one']);
    h = await startHarness(configYaml([{ name: 'one', mock: mocks[0] }]));
  });
  afterAll(async () => {
    await h?.close();
    await Promise.all((mocks ?? []).map((m) => m.close()));
  });

  const deep = (n: number) =>
    `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"x":${'['.repeat(n)}${']'.repeat(n)}}`;

  it('JSON nested 100k deep is a 400, and the relay keeps serving', async () => {
    const res = await post(h.url, '/v1/chat/completions', deep(100_000));
    expect(res.status).toBe(400);
    expect(res.json).toEqual(openAIError('invalid_json'));
    expect(mocks[0]!.stats().requests).toBe(0);
    expect((await post(h.url, '/v1/chat/completions', chat())).status).toBe(200);
  });

  it('JSON nested as deep as real payloads go is served', async () => {
    const res = await post(h.url, '/v1/chat/completions', deep(100));
    expect(res.status).toBe(200);
  });

  it('with the default deadlines, a connection that never sends a request is closed well under 88 s', {
    timeout: 60_000,
  }, async () => {
    const c = await openRaw(h.url);
    const { afterMs, received } = await c.closed;
    expect(afterMs).toBeLessThan(30_000);
    expect(parseResponse(received).json).toEqual(openAIError('request_timeout'));
  });

  it('headers over the size limit: 431', async () => {
    const c = await openRaw(h.url);
    c.write(`GET /v1/models HTTP/1.1\r\nHost: relay\r\nX-Big: ${'a'.repeat(64 * 1024)}\r\n\r\n`);
    const res = parseResponse((await c.closed).received);
    expect(res.status).toBe(431);
    expect(res.json).toEqual(openAIError('request_headers_too_large'));
  });

  it('a request Node cannot parse: 400', async () => {
    const c = await openRaw(h.url);
    c.write('POST /v1/chat/completions HTTP/1.1\r\nHost: relay\r\nContent-Length: abc\r\n\r\n');
    const res = parseResponse((await c.closed).received);
    expect(res.status).toBe(400);
    expect(res.json).toEqual(openAIError('malformed_request'));
  });
});
