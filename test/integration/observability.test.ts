import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MockUpstream } from '../../mock-upstream/server.ts';
import { CHANNEL_KEY, configYaml, startMocks } from '../helpers/harness.ts';
import { type CollectedSpan, type Collector, startCollector } from '../helpers/otel-collector.ts';
import { freePort, kuberelay, type Proc } from '../helpers/process.ts';

/**
 * Traces and access logs of a real relay process: a failover request (the first channel answers
 * 503, the second serves) reaches a real OpenTelemetry Collector as one request span with two
 * attempt spans under the client's trace, and leaves one access-log line.
 */

// W3C trace context, the example of the spec (www.w3.org/TR/trace-context, section 3.2).
const CLIENT_TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const CLIENT_SPAN = '00f067aa0ba902b7';
const TRACEPARENT = `00-${CLIENT_TRACE}-${CLIENT_SPAN}-01`;

describe('observability: OpenTelemetry traces and access logs', () => {
  let collector: Collector;
  let mocks: MockUpstream[];
  let relay: Proc;
  let url: string;

  beforeAll(async () => {
    collector = await startCollector();
    mocks = await startMocks(['primary', 'fallback']);
    mocks[0]!.setFaults({ status: 503 });
    const dir = await mkdtemp(join(tmpdir(), 'kuberelay-otel-'));
    const file = join(dir, 'config.yaml');
    await writeFile(
      file,
      configYaml([
        { name: 'primary', mock: mocks[0], priority: 0 },
        { name: 'fallback', mock: mocks[1], priority: 1 },
      ]),
    );
    const port = await freePort();
    relay = kuberelay(['relay', '--config', file, '--port', String(port), '--host', '127.0.0.1'], {
      KUBERELAY_AUTH: 'none',
      OTEL_EXPORTER_OTLP_ENDPOINT: collector.endpoint,
      OTEL_SERVICE_NAME: 'relay-under-test',
      OTEL_BSP_SCHEDULE_DELAY: '200',
    });
    await relay.waitFor(/relay listening/, 60_000);
    url = `http://127.0.0.1:${port}`;
  }, 1_800_000); // the first run builds the collector (~minutes), later runs reuse it

  afterAll(async () => {
    relay?.child.kill('SIGTERM');
    await relay?.exited();
    await collector?.close();
    await Promise.all((mocks ?? []).map((m) => m.close()));
  });

  it('a failover request: request span under the client trace, two attempt spans, the failed one with its error', async () => {
    const client = new OpenAI({
      baseURL: `${url}/v1`,
      apiKey: 'unused',
      maxRetries: 0,
      defaultHeaders: { traceparent: TRACEPARENT },
    });
    const { data, response } = await client.chat.completions
      .create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'secret prompt text' }] })
      .withResponse();
    expect(data.choices[0]!.message.content).toBeTruthy();
    expect(response.headers.get('x-kuberelay-attempts')).toBe('2');

    let spans: CollectedSpan[] = [];
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline) {
      spans = collector.spans().filter((s) => s.traceId === CLIENT_TRACE);
      if (spans.length >= 3) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(spans, collector.proc.output().slice(-4000)).toHaveLength(3);
    const request = spans.find((s) => s.kind.includes('Server'))!;
    expect(request).toMatchObject({ name: 'POST /v1/chat/completions', parentId: CLIENT_SPAN });
    expect(request.attributes).toMatchObject({
      'gen_ai.operation.name': 'chat',
      'gen_ai.request.model': 'gpt-4o-mini',
      'kuberelay.attempts': 2,
      'kuberelay.channel': 'default/fallback',
      'http.response.status_code': 200,
      'gen_ai.response.model': data.model,
    });
    expect(request.attributes['gen_ai.usage.input_tokens']).toBeGreaterThan(0);
    expect(request.attributes['gen_ai.usage.output_tokens']).toBeGreaterThan(0);

    const attempts = spans
      .filter((s) => s.kind.includes('Client'))
      .sort((a, b) => Number(a.attributes['kuberelay.attempt']) - Number(b.attributes['kuberelay.attempt']));
    expect(attempts).toHaveLength(2);
    for (const a of attempts) {
      expect(a.parentId).toBe(request.id);
      expect(a.name).toBe('chat gpt-4o-mini');
      expect(a.attributes).toMatchObject({
        'gen_ai.operation.name': 'chat',
        'gen_ai.provider.name': 'openai-compatible',
        'gen_ai.request.model': 'gpt-4o-mini',
      });
    }
    expect(attempts[0]!.attributes).toMatchObject({
      'kuberelay.channel': 'default/primary',
      'kuberelay.attempt': 1,
      'kuberelay.failover': false,
      'error.type': 'status_503',
      'http.response.status_code': 503,
      // One 503 of the default five: no cooldown yet.
      'kuberelay.channel.cooldown': false,
    });
    // Without KUBERELAY_TRACE_CONTENT the completion is not recorded either.
    expect(attempts[1]!.attributes['gen_ai.output.messages']).toBeUndefined();
    expect(attempts[1]!.attributes['gen_ai.input.messages']).toBeUndefined();
    expect(request.attributes['kuberelay.ratelimit.policy']).toBeUndefined();
    expect(attempts[0]!.status).toContain('Error');
    expect(attempts[1]!.attributes).toMatchObject({
      'kuberelay.channel': 'default/fallback',
      'kuberelay.attempt': 2,
      'kuberelay.failover': true,
      'http.response.status_code': 200,
      'gen_ai.response.model': data.model,
    });
    expect(attempts[0]!.attributes['gen_ai.response.model']).toBeUndefined();
    expect(attempts[1]!.status).not.toContain('Error');
    // Each upstream saw the traceparent of its own attempt span, not the client's.
    expect(mocks[0]!.stats().last?.headers.traceparent).toBe(`00-${CLIENT_TRACE}-${attempts[0]!.id}-01`);
    expect(mocks[1]!.stats().last?.headers.traceparent).toBe(`00-${CLIENT_TRACE}-${attempts[1]!.id}-01`);
    // Prompts are not recorded without KUBERELAY_TRACE_CONTENT=true; the channel key never is.
    expect(collector.proc.output()).not.toContain('secret prompt text');
    expect(collector.proc.output()).not.toContain(CHANNEL_KEY);
    expect(collector.proc.output()).toContain('service.name: Str(relay-under-test)');

    // One access-log line, with the trace id that links it to the spans.
    const line = await relay.waitFor(/^\{.*"msg":"request".*$/m);
    const access = JSON.parse(line[0]);
    expect(access).toMatchObject({
      level: 30,
      msg: 'request',
      requestId: response.headers.get('x-request-id'),
      traceId: CLIENT_TRACE,
      route: '/v1/chat/completions',
      model: 'gpt-4o-mini',
      channel: 'default/fallback',
      attempts: 2,
      status: 200,
      stream: false,
      usageSource: 'reported',
    });
    expect(access.tokens.prompt).toBe(data.usage!.prompt_tokens);
    expect(access.tokens.completion).toBe(data.usage!.completion_tokens);
    expect(access.latencyMs).toBeGreaterThan(0);
    expect(relay.output()).not.toContain(CHANNEL_KEY);
  });

  it('a stream: time to first token on the request span and in the access log', async () => {
    const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'unused', maxRetries: 0 });
    const traceId = 'a3ce929d0e0e47364bf92f3577b34da6';
    const stream = await client.chat.completions.create(
      { model: 'gpt-4o-mini', stream: true, messages: [{ role: 'user', content: 'hi' }] },
      { headers: { traceparent: `00-${traceId}-${CLIENT_SPAN}-01` } },
    );
    for await (const _ of stream) {
      // drain
    }
    const line = await relay.waitFor(new RegExp(`^\\{.*"traceId":"${traceId}".*$`, 'm'));
    const access = JSON.parse(line[0]);
    expect(access).toMatchObject({ stream: true, status: 200, attempts: 2 });
    expect(access.ttftMs).toBeGreaterThan(0);
    expect(access.ttftMs).toBeLessThanOrEqual(access.latencyMs);
    let request: CollectedSpan | undefined;
    const deadline = Date.now() + 20_000;
    while (!request && Date.now() < deadline) {
      request = collector.spans().find((s) => s.traceId === traceId && s.kind.includes('Server'));
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(request?.attributes['gen_ai.server.time_to_first_token']).toBeGreaterThan(0);
    expect(request?.events).toContain('gen_ai.first_token');
    expect(request?.attributes['gen_ai.response.model']).toBe('gpt-4o-mini');
  });
});

/** Waits for the spans of one trace: the request span and its attempts, by attempt number. */
async function traceOf(collector: Collector, traceId: string, attempts: number) {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const spans = collector.spans().filter((s) => s.traceId === traceId);
    const request = spans.find((s) => s.kind.includes('Server'));
    const tries = spans
      .filter((s) => s.kind.includes('Client'))
      .sort((a, b) => Number(a.attributes['kuberelay.attempt']) - Number(b.attributes['kuberelay.attempt']));
    if (request && tries.length >= attempts) return { request, attempts: tries };
    if (Date.now() > deadline) throw new Error(`trace ${traceId}: ${spans.length} spans`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const traceparent = (traceId: string) => `00-${traceId}-${CLIENT_SPAN}-01`;

describe('observability: content recording and the decisions on spans', () => {
  let collector: Collector;
  let mocks: MockUpstream[];
  let relay: Proc;
  let client: OpenAI;

  beforeAll(async () => {
    collector = await startCollector();
    mocks = await startMocks(['primary', 'fallback']);
    mocks[0]!.setFaults({ status: 503 });
    const dir = await mkdtemp(join(tmpdir(), 'kuberelay-otel-content-'));
    const file = join(dir, 'config.yaml');
    await writeFile(
      file,
      configYaml(
        [
          // One failure starts a cooldown.
          {
            name: 'primary',
            mock: mocks[0],
            priority: 0,
            extra: '  cooldown: { failureThreshold: 1, duration: 5m }\n',
          },
          { name: 'fallback', mock: mocks[1], priority: 1 },
        ],
        `apiVersion: kuberelay.io/v1alpha1
kind: RateLimitPolicy
metadata: { name: generous }
spec:
  limitBy: global
  limits: [{ requests: 1000, per: 1m }]
---
apiVersion: kuberelay.io/v1alpha1
kind: RateLimitPolicy
metadata: { name: strict }
spec:
  limitBy: global
  limits: [{ requests: 2, per: 1m }]
`,
      ),
    );
    const port = await freePort();
    relay = kuberelay(['relay', '--config', file, '--port', String(port), '--host', '127.0.0.1'], {
      KUBERELAY_AUTH: 'none',
      KUBERELAY_TRACE_CONTENT: 'true',
      OTEL_EXPORTER_OTLP_ENDPOINT: collector.endpoint,
      OTEL_BSP_SCHEDULE_DELAY: '200',
    });
    await relay.waitFor(/relay listening/, 60_000);
    client = new OpenAI({ baseURL: `http://127.0.0.1:${port}/v1`, apiKey: 'unused', maxRetries: 0 });
  }, 1_800_000);

  afterAll(async () => {
    relay?.child.kill('SIGTERM');
    await relay?.exited();
    await collector?.close();
    await Promise.all((mocks ?? []).map((m) => m.close()));
  });

  it('a failure that starts a cooldown, the channel skipped next, a rejected request; completions recorded', async () => {
    // 1: the primary's 503 starts its cooldown; the fallback answers; the completion is recorded.
    const t1 = '11111111111111111111111111111111';
    const answer = await client.chat.completions.create(
      { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'prompt one' }] },
      { headers: { traceparent: traceparent(t1) } },
    );
    const one = await traceOf(collector, t1, 2);
    expect(one.attempts[0]!.attributes).toMatchObject({
      'kuberelay.channel': 'default/primary',
      'error.type': 'status_503',
      'kuberelay.channel.cooldown': true,
    });
    expect(one.attempts[1]!.attributes['kuberelay.channel.cooldown']).toBeUndefined();
    const out1 = JSON.parse(String(one.attempts[1]!.attributes['gen_ai.output.messages']));
    expect(out1).toEqual([
      {
        role: 'assistant',
        parts: [{ type: 'text', content: answer.choices[0]!.message.content }],
        finish_reason: answer.choices[0]!.finish_reason,
      },
    ]);
    expect(one.attempts[1]!.attributes['gen_ai.input.messages']).toContain('prompt one');
    expect(JSON.parse(String(one.request.attributes['kuberelay.ratelimit.policy']))).toEqual([
      'default/generous',
      'default/strict',
    ]);
    expect(JSON.parse(String(one.request.attributes['kuberelay.ratelimit.decision']))).toEqual([
      'allowed',
      'allowed',
    ]);
    expect(one.request.attributes['kuberelay.channels.skipped_cooldown']).toBeUndefined();

    // 2: a stream; the primary is cooling down, so it is skipped; the streamed text is recorded.
    const t2 = '22222222222222222222222222222222';
    const stream = await client.chat.completions.create(
      { model: 'gpt-4o-mini', stream: true, messages: [{ role: 'user', content: 'prompt two' }] },
      { headers: { traceparent: traceparent(t2) } },
    );
    let streamed = '';
    let finish: string | null | undefined;
    for await (const chunk of stream) {
      streamed += chunk.choices[0]?.delta.content ?? '';
      finish ??= chunk.choices[0]?.finish_reason;
    }
    expect(streamed).not.toBe('');
    const two = await traceOf(collector, t2, 1);
    expect(two.attempts).toHaveLength(1);
    expect(two.attempts[0]!.attributes['kuberelay.channel']).toBe('default/fallback');
    expect(JSON.parse(String(two.request.attributes['kuberelay.channels.skipped_cooldown']))).toEqual([
      'default/primary',
    ]);
    const out2 = JSON.parse(String(two.attempts[0]!.attributes['gen_ai.output.messages']));
    expect(out2).toEqual([
      { role: 'assistant', parts: [{ type: 'text', content: streamed }], finish_reason: finish },
    ]);

    // 3: the strict policy's third request in the minute is rejected.
    const t3 = '33333333333333333333333333333333';
    const err = await client.chat.completions
      .create(
        { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'prompt three' }] },
        { headers: { traceparent: traceparent(t3) } },
      )
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.APIError);
    expect((err as InstanceType<typeof OpenAI.APIError>).status).toBe(429);
    const three = await traceOf(collector, t3, 0);
    expect(three.attempts).toHaveLength(0);
    expect(JSON.parse(String(three.request.attributes['kuberelay.ratelimit.decision']))).toEqual([
      'allowed',
      'rejected',
    ]);
    expect(three.request.attributes['http.response.status_code']).toBe(429);
  });
});
