import { Writable } from 'node:stream';
import fc from 'fast-check';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import type { RequestRecord } from '../../core/accounting.ts';
import { AccessLog, accessLogFromEnv } from '../../relay/access-log.ts';
import { formatPretty, logDestination, logFormatFromEnv } from '../../relay/logger.ts';
import { traceIdOf } from '../../relay/tracing.ts';

const record = (over: Partial<RequestRecord> = {}): RequestRecord => ({
  requestId: 'req-1',
  at: Date.UTC(2026, 11, 1, 13, 7, 41, 613),
  keyId: 'key_abc',
  route: '/v1/chat/completions',
  model: 'gpt-4o-mini',
  channel: 'default/primary',
  status: 200,
  durationMs: 12.3456,
  attempts: 1,
  stream: true,
  promptTokens: 10,
  completionTokens: 5,
  cachedTokens: 0,
  cacheWriteTokens: 0,
  reasoningTokens: 0,
  usageSource: 'reported',
  cost: 0.0000045,
  ttftMs: 3.2,
  traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
  ...over,
});

function capture() {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _e, cb) {
      for (const l of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(l));
      cb();
    },
  });
  return { log: pino({ level: 'info' }, stream), lines };
}

describe('access log', () => {
  it('one line per request with the documented fields', async () => {
    const { log, lines } = capture();
    new AccessLog(() => log, { sampleRate: 1, slowMs: 1000 }).record(record());
    await new Promise((r) => setImmediate(r));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({
      msg: 'request',
      requestId: 'req-1',
      traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
      keyId: 'key_abc',
      route: '/v1/chat/completions',
      model: 'gpt-4o-mini',
      channel: 'default/primary',
      attempts: 1,
      status: 200,
      stream: true,
      tokens: { prompt: 10, completion: 5, cached: 0, cacheWrite: 0, reasoning: 0 },
      usageSource: 'reported',
      cost: 0.0000045,
      latencyMs: 12.346,
      ttftMs: 3.2,
    });
  });

  it('sampled like the request log: errors and slow requests always, the rest at the rate', () => {
    fc.assert(
      fc.property(
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.double({ min: 0, max: 0.999_999, noNaN: true }),
        fc.constantFrom(200, 429, 502),
        fc.integer({ min: 0, max: 3000 }),
        (rate, draw, status, durationMs) => {
          let logged = false;
          const spy = { info: () => (logged = true) } as unknown as pino.Logger;
          new AccessLog(
            () => spy,
            { sampleRate: rate, slowMs: 1000 },
            () => draw,
          ).record(record({ status, durationMs }));
          const always = status >= 400 || durationMs > 1000;
          expect(logged).toBe(always || rate >= 1 || draw < rate);
        },
      ),
    );
  });

  it('KUBERELAY_ACCESS_LOG and the sampling variables are checked', () => {
    expect(accessLogFromEnv({})).toEqual({ sampleRate: 1, slowMs: 1000 });
    expect(accessLogFromEnv({ KUBERELAY_ACCESS_LOG: 'off' })).toBe(false);
    expect(accessLogFromEnv({ KUBERELAY_LOG_SAMPLE_RATE: '0.1', KUBERELAY_LOG_SLOW_MS: '250' })).toEqual({
      sampleRate: 0.1,
      slowMs: 250,
    });
    expect(() => accessLogFromEnv({ KUBERELAY_ACCESS_LOG: 'yes' })).toThrow(/KUBERELAY_ACCESS_LOG="yes"/);
    expect(() => accessLogFromEnv({ KUBERELAY_LOG_SAMPLE_RATE: '2' })).toThrow(/KUBERELAY_LOG_SAMPLE_RATE/);
  });
});

describe('LOG_FORMAT', () => {
  it('json by default, pretty on request, anything else refused', () => {
    expect(logFormatFromEnv({})).toBe('json');
    expect(logFormatFromEnv({ LOG_FORMAT: 'pretty' })).toBe('pretty');
    expect(() => logFormatFromEnv({ LOG_FORMAT: 'text' })).toThrow('LOG_FORMAT="text" is not valid');
  });

  it('pretty: time, level, message, then fields; one line per record whatever the chunking', async () => {
    const out: string[] = [];
    const sink = new Writable({
      write(c: Buffer, _e, cb) {
        out.push(c.toString());
        cb();
      },
    });
    const dest = logDestination('pretty', sink)!;
    const line = JSON.stringify({
      level: 40,
      time: Date.UTC(2026, 11, 1, 13, 7, 41, 613),
      pid: 1,
      hostname: 'h',
      msg: 'channel cooling down',
      channel: 'default/primary',
      reason: 'status 503',
      n: 2,
    });
    const text = `${line}\n${line}\n`;
    // Split anywhere, even inside a line (and a multi-byte character would be kept whole by Buffer).
    for (const piece of [text.slice(0, 17), text.slice(17, 150), text.slice(150)]) dest.write(piece);
    await new Promise<void>((r) => dest.end(r));
    const lines = out.join('').split('\n').filter(Boolean);
    expect(lines).toEqual([
      '13:07:41.613 WARN  channel cooling down channel=default/primary reason="status 503" n=2',
      '13:07:41.613 WARN  channel cooling down channel=default/primary reason="status 503" n=2',
    ]);
    expect(formatPretty('not json')).toBe('not json');
  });
});

describe('traceparent', () => {
  it('the trace id of a valid header only', () => {
    expect(traceIdOf('00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01')).toBe(
      '4bf92f3577b34da6a3ce929d0e0e4736',
    );
    expect(traceIdOf('00-00000000000000000000000000000000-00f067aa0ba902b7-01')).toBeUndefined();
    expect(traceIdOf('garbage')).toBeUndefined();
    expect(traceIdOf(undefined)).toBeUndefined();
    expect(traceIdOf(['a', 'b'])).toBeUndefined();
  });
});
