import { Writable } from 'node:stream';
import fc from 'fast-check';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import type { RequestRecord } from '../../core/accounting.ts';
import { AccessLog, accessLineJson, accessLogFromEnv, accessLogOutput } from '../../relay/access-log.ts';
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
  const log = pino({ level: 'info' }, stream);
  return { log, out: accessLogOutput(log, stream), lines };
}

/** The access line's fields as the relay handed them to pino's `info(fields, 'request')` before. */
function pinoFields(r: RequestRecord) {
  const round = (ms: number) => Math.round(ms * 1000) / 1000;
  return {
    requestId: r.requestId,
    traceId: r.traceId,
    keyId: r.keyId,
    route: r.route,
    model: r.model,
    channel: r.channel,
    attempts: r.attempts,
    status: r.status,
    stream: r.stream,
    tokens: {
      prompt: r.promptTokens,
      completion: r.completionTokens,
      cached: r.cachedTokens,
      cacheWrite: r.cacheWriteTokens,
      reasoning: r.reasoningTokens,
    },
    usageSource: r.usageSource,
    cost: r.cost,
    latencyMs: round(r.durationMs),
    ttftMs: r.ttftMs === undefined ? undefined : round(r.ttftMs),
    errorCode: r.errorCode,
  };
}

// Any UTF-16 text: quotes, backslashes, control characters, astral characters, lone surrogates.
const text = fc.oneof(
  fc.string({ unit: 'binary' }),
  fc.string({ unit: fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)) }),
  fc.constantFrom('', '"', '\\', '\u2028', '</script>', 'ключ-é-😀'),
  // Around the length where the serializer stops looking for characters to escape itself.
  fc.string({ unit: 'grapheme-ascii', minLength: 60, maxLength: 70 }),
);
// Any double: NaN, ±Infinity, -0, subnormals, 1e21 and beyond.
const number = fc.oneof(fc.integer(), fc.double(), fc.constantFrom(0.1 + 0.2, 1e21, -0, 5e-324));
const anyRecord: fc.Arbitrary<RequestRecord> = fc.record(
  {
    requestId: text,
    at: fc.integer(),
    keyId: text,
    route: text,
    model: text,
    channel: text,
    status: number,
    durationMs: number,
    attempts: number,
    stream: fc.boolean(),
    promptTokens: number,
    completionTokens: number,
    cachedTokens: number,
    cacheWriteTokens: number,
    reasoningTokens: number,
    usageSource: fc.constantFrom('reported' as const, 'estimated' as const),
    cost: number,
    errorCode: text,
    ttftMs: fc.option(number, { nil: undefined }),
    traceId: fc.option(text, { nil: undefined }),
  },
  {
    requiredKeys: [
      'requestId',
      'at',
      'route',
      'model',
      'status',
      'durationMs',
      'attempts',
      'stream',
      'promptTokens',
      'completionTokens',
      'cachedTokens',
      'cacheWriteTokens',
      'reasoningTokens',
      'cost',
    ],
  },
);

describe('access log', () => {
  it('one line per request with the documented fields', async () => {
    const { out, lines } = capture();
    new AccessLog(() => out, { sampleRate: 1, slowMs: 1000 }).record(record());
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
          const spy = { enabled: () => true, bindings: '', write: () => (logged = true) };
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

  it('the line is the one pino wrote for the same fields, for any record (same text, same object)', () => {
    // The relay's logger (Fastify's pino, the relay's redaction) and its access-line child.
    let written = '';
    const dest = { write: (l: string) => (written = l) };
    const relayLog = pino({ level: 'info', redact: ['*.apiKey', 'apiKey'] }, dest);
    const viaPino = relayLog.child({}, { redact: [] });
    const bindings = accessLogOutput(relayLog, dest).bindings;
    expect(bindings).toMatch(/^,"pid":\d+,"hostname":/);
    fc.assert(
      fc.property(anyRecord, (r) => {
        viaPino.info(pinoFields(r), 'request');
        const time = JSON.parse(written).time as number;
        const line = accessLineJson(r, time, bindings);
        expect(JSON.parse(line)).toEqual(JSON.parse(written));
        // The same text, but for a lone surrogate: pino writes it raw (it leaves the process as
        // U+FFFD), JSON.stringify as a \uXXXX escape that keeps it.
        if (written.isWellFormed()) expect(line).toBe(written);
      }),
      { numRuns: 2000 },
    );
  });

  it('follows the logger: no lines when its level is above info, its bindings in every line', () => {
    const { log, out, lines } = capture();
    const access = new AccessLog(() => out, { sampleRate: 1, slowMs: 1000 });
    log.level = 'warn';
    access.record(record({ requestId: 'quiet' }));
    log.level = 'info';
    access.record(record({ requestId: 'loud', status: 502, errorCode: 'upstream_error' }));
    return new Promise<void>((done) =>
      setImmediate(() => {
        expect(lines.map((l) => l.requestId)).toEqual(['loud']);
        expect(lines[0]).toMatchObject({
          level: 30,
          pid: process.pid,
          msg: 'request',
          errorCode: 'upstream_error',
        });
        done();
      }),
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
