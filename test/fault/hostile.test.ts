import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  call,
  expectSettled,
  isOpenAIError,
  metric,
  type RelayProc,
  sseData,
  startRelayProc,
  startUpstream,
  type Upstream,
} from '../helpers/fault-rig.ts';
import { configYaml } from '../helpers/harness.ts';
import { openRaw, parseResponse } from '../helpers/raw-http.ts';

/**
 * Hostile clients and the upstream faults of issue 11 against a relay process as a default install
 * runs it (the chart's environment, embedded database, client keys on, default deadlines): each
 * ends in bounded time with an answer in OpenAI's shape, the relay stays responsive and alive,
 * nothing is left in flight, and only the upstream's own failures count against a channel.
 */

const BOUND_MS = 8000;

describe('hostile clients and misbehaving upstreams, default install', () => {
  let primary: Upstream;
  let fallback: Upstream;
  let relay: RelayProc;
  let secret: string;

  beforeAll(async () => {
    [primary, fallback] = await Promise.all([startUpstream('primary'), startUpstream('fallback')]);
    const pricing = '{ inputPer1M: "1", outputPer1M: "2" }';
    relay = await startRelayProc({
      yaml: configYaml([
        {
          name: 'primary',
          baseURL: `${primary.url}/v1`,
          models: `[{ name: pair-model, pricing: ${pricing} }]`,
          extra: '  cooldown: { failureThreshold: 3, duration: 60s }\n',
        },
        {
          name: 'fallback',
          baseURL: `${fallback.url}/v1`,
          priority: 1,
          models: `[{ name: pair-model, pricing: ${pricing} }]`,
        },
      ]),
    });
    ({ secret } = await relay.createKey());
  });

  afterAll(async () => {
    const code = await relay?.stop();
    expect(code).toBe(0);
    await Promise.all([primary, fallback].map((u) => u?.stop()));
  });

  const auth = () => ({ authorization: `Bearer ${secret}` });
  const chat = (extra: Record<string, unknown> = {}) => ({
    model: 'pair-model',
    messages: [{ role: 'user', content: 'hello' }],
    max_tokens: 8,
    ...extra,
  });
  const healthzMs = async () => (await call(`${relay.url}/healthz`, { timeoutMs: BOUND_MS })).ms;

  it('a keyless client is refused before its body is read, in OpenAI shape', async () => {
    const c = await openRaw(relay.url);
    // Declares 10 MiB and sends a few bytes: the relay must answer without waiting for the rest.
    c.write(
      'POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 10485760\r\n\r\n{"model":',
    );
    const { afterMs, received } = await c.closed;
    expect(afterMs).toBeLessThan(BOUND_MS);
    const res = parseResponse(received);
    expect(res.status).toBe(401);
    expect(isOpenAIError(res.json)).toBe(true);
  });

  it('headers dripped a byte at a time are cut off within the default headers deadline', async () => {
    const c = await openRaw(relay.url);
    c.write('POST /v1/chat/completions HTTP/1.1\r\n');
    c.drip('x', 500);
    const { afterMs } = await c.closed;
    expect(afterMs).toBeLessThan(20_000); // KUBERELAY_HEADERS_TIMEOUT_MS default 10 s, checked every 1 s
    expect(await healthzMs()).toBeLessThan(BOUND_MS);
  }, 40_000);

  it('100k-deep JSON is a 400 in OpenAI shape, and the relay is still up', async () => {
    const deep = `{"model":"pair-model","messages":${'['.repeat(100_000)}${']'.repeat(100_000)}}`;
    const res = await fetch(`${relay.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { ...auth(), 'content-type': 'application/json' },
      body: deep,
      signal: AbortSignal.timeout(BOUND_MS),
    });
    expect(res.status).toBe(400);
    expect(isOpenAIError(await res.json())).toBe(true);
    expect(await healthzMs()).toBeLessThan(BOUND_MS);
  });

  it('Expect: 100-continue (curl, large bodies) is served and never cools a channel down', async () => {
    const body = JSON.stringify(chat());
    const send = () =>
      new Promise<number>((resolve, reject) => {
        const { hostname, port } = new URL(relay.url);
        const req = request(
          {
            host: hostname,
            port,
            method: 'POST',
            path: '/v1/chat/completions',
            headers: { ...auth(), 'content-type': 'application/json', expect: '100-continue' },
            timeout: BOUND_MS,
          },
          (res) => {
            res.resume();
            res.on('end', () => resolve(res.statusCode ?? 0));
          },
        );
        req.on('continue', () => req.end(body));
        req.on('error', reject);
      });
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) statuses.push(await send());
    expect(statuses).toEqual(Array(6).fill(200));
    expect(await metric(relay.url, 'kuberelay_cooldowns_total')).toBe(0);
  });

  it('an HTML 200 from the upstream fails over before the first byte', async () => {
    await primary.setFaults({ html: true, count: 1 });
    const res = await call(`${relay.url}/v1/chat/completions`, {
      headers: auth(),
      body: chat(),
      timeoutMs: BOUND_MS,
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-kuberelay-channel')).toBe('default/fallback');
    expect(res.headers.get('x-kuberelay-attempts')).toBe('2');
  });

  it('after [DONE] the answer ends though the upstream keeps its socket open', async () => {
    await primary.setFaults({ holdAfterDone: true, count: 1 });
    const res = await call(`${relay.url}/v1/chat/completions`, {
      headers: auth(),
      body: chat({ stream: true }),
      timeoutMs: BOUND_MS,
    });
    expect(res.status).toBe(200);
    expect(res.ms).toBeLessThan(BOUND_MS);
    expect(sseData(res.text).at(-1)).toBe('[DONE]');
  });

  it('one 16 MB SSE event is forwarded as it arrives and does not freeze the relay', async () => {
    const size = 16 * 1024 * 1024;
    await primary.setFaults({ streamEventBytes: size, count: 1 }); // the event never finishes
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(), 30_000);
    const res = await fetch(`${relay.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { ...auth(), 'content-type': 'application/json' },
      body: JSON.stringify(chat({ stream: true })),
      signal: ac.signal,
    });
    expect(res.status).toBe(200);
    const probes: number[] = [];
    const probing = (async () => {
      while (!ac.signal.aborted && probes.length < 50) {
        probes.push(await healthzMs());
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    let received = 0;
    const reader = res.body!.getReader();
    while (received < size) {
      const { value, done } = await reader.read();
      if (done) break;
      received += value.byteLength;
    }
    clearTimeout(timer);
    ac.abort(); // the client leaves; the relay must let go of the upstream too
    await probing;
    expect(received).toBeGreaterThanOrEqual(size);
    expect(Math.max(...probes)).toBeLessThan(2000);
    await expectSettled(relay.url);
  }, 60_000);

  it('streams that always break mid-way cool the channel down (a stream succeeds only when complete)', async () => {
    await primary.setFaults({ streamDieAfter: 1 });
    try {
      const seen: string[] = [];
      for (let i = 0; i < 5; i++) {
        const res = await call(`${relay.url}/v1/chat/completions`, {
          headers: auth(),
          body: chat({ stream: true }),
          timeoutMs: BOUND_MS,
        });
        seen.push(res.headers.get('x-kuberelay-channel') ?? '');
      }
      // Three broken streams on primary, then primary is cooling down and fallback serves.
      expect(seen.slice(0, 3)).toEqual(Array(3).fill('default/primary'));
      expect(seen.slice(3)).toEqual(Array(2).fill('default/fallback'));
      expect(await metric(relay.url, 'kuberelay_cooldowns_total')).toBe(1);
    } finally {
      await primary.setFaults(null);
    }
    await expectSettled(relay.url);
  });
});
