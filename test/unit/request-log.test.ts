import pino from 'pino';
import { describe, expect, it } from 'vitest';
import type { AccountingSink, RequestRecord, UsageIncrement } from '../../core/accounting.ts';
import { DatabaseHealth } from '../../relay/db-health.ts';
import { createRelayMetrics } from '../../relay/metrics.ts';
import {
  DEFAULT_REQUEST_LOG_OPTIONS,
  type RequestLogOptions,
  RequestLogWriter,
} from '../../relay/request-log.ts';

/** A sink that can be switched off, like a database going away. */
class SwitchableSink implements AccountingSink {
  up = true;
  logs: RequestRecord[] = [];
  usage: UsageIncrement[] = [];
  async writeLogs(records: readonly RequestRecord[]) {
    if (!this.up) throw new Error('connection refused');
    this.logs.push(...records);
  }
  async addUsage(increments: readonly UsageIncrement[]) {
    if (!this.up) throw new Error('connection refused');
    this.usage.push(...increments);
  }
}

function setup(o: Partial<RequestLogOptions> = {}) {
  const sink = new SwitchableSink();
  const metrics = createRelayMetrics({ defaultMetrics: false });
  const health = new DatabaseHealth(metrics, pino({ level: 'silent' }));
  const writer = new RequestLogWriter(sink, metrics, health, { ...DEFAULT_REQUEST_LOG_OPTIONS, ...o });
  const value = async (name: string, labels: Record<string, string> = {}) => {
    const m = (await metrics.registry.getSingleMetric(name)?.get())?.values ?? [];
    return m
      .filter((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l))
      .reduce((s, v) => s + v.value, 0);
  };
  return { sink, writer, value, health };
}

let n = 0;
const rec = (over: Partial<RequestRecord> = {}): RequestRecord => ({
  requestId: `r${++n}`,
  at: Date.parse('2026-06-15T12:00:00Z'),
  keyId: 'key_a',
  route: '/v1/chat/completions',
  model: 'gpt-4o-mini',
  channel: 'default/main',
  status: 200,
  durationMs: 20,
  attempts: 1,
  stream: false,
  promptTokens: 5,
  completionTokens: 7,
  cachedTokens: 1,
  cacheWriteTokens: 2,
  reasoningTokens: 3,
  usageSource: 'reported',
  cost: 0.25,
  ...over,
});

describe('request log writer', () => {
  it('logs errors and slow requests always, successes at the sample rate; usage counts everything', async () => {
    const draws = [0.05, 0.5, 0.09, 0.95];
    const { sink, writer, value } = setup({ sampleRate: 0.1, random: () => draws.shift()! });
    writer.record(rec()); // 0.05 < 0.1: kept
    writer.record(rec()); // 0.5: sampled out
    writer.record(rec({ status: 502, errorCode: 'upstream_error' })); // error: kept without a draw
    writer.record(rec({ durationMs: 1500 })); // slow: kept without a draw
    writer.record(rec()); // 0.09: kept
    writer.record(rec()); // 0.95: sampled out
    await writer.flush();
    expect(sink.logs.map((r) => [r.status, r.durationMs])).toEqual([
      [200, 20],
      [502, 20],
      [200, 1500],
      [200, 20],
    ]);
    expect(await value('kuberelay_request_logs_sampled_out_total')).toBe(2);
    expect(sink.usage).toEqual([
      {
        day: '2026-06-15',
        keyId: 'key_a',
        channel: 'default/main',
        model: 'gpt-4o-mini',
        requests: 6,
        errors: 1,
        promptTokens: 30,
        completionTokens: 42,
        cachedTokens: 6,
        cacheWriteTokens: 12,
        reasoningTokens: 18,
        cost: 1.5,
      },
    ]);
  });

  it('flush() writes everything recorded before the call, even while an earlier flush is running', async () => {
    const { sink, writer } = setup();
    let release!: () => void;
    const addUsage = sink.addUsage.bind(sink);
    sink.addUsage = async (u) => {
      await new Promise<void>((r) => {
        release = r;
      });
      sink.addUsage = addUsage;
      return addUsage(u);
    };
    writer.record(rec({ requestId: 'early' }));
    const first = writer.flush(); // e.g. the interval timer's flush, held up in the database
    writer.record(rec({ requestId: 'late', model: 'late-model' }));
    const second = writer.flush();
    release();
    await Promise.all([first, second]);
    expect(sink.usage.map((u) => u.model).sort()).toEqual(['gpt-4o-mini', 'late-model']);
    expect(sink.logs.map((r) => r.requestId)).toEqual(['early', 'late']);
  });

  it('sums usage per day, key, channel and model; no key and no channel are empty strings', async () => {
    const { sink, writer } = setup();
    writer.record(rec());
    writer.record(rec({ keyId: undefined, channel: undefined, status: 401, errorCode: 'invalid_api_key' }));
    writer.record(rec({ at: Date.parse('2026-06-16T00:00:00Z') }));
    writer.record(rec({ model: 'other' }));
    await writer.flush();
    expect(sink.usage.map((u) => [u.day, u.keyId, u.channel, u.model, u.requests, u.errors])).toEqual([
      ['2026-06-15', 'key_a', 'default/main', 'gpt-4o-mini', 1, 0],
      ['2026-06-15', '', '', 'gpt-4o-mini', 1, 1],
      ['2026-06-16', 'key_a', 'default/main', 'gpt-4o-mini', 1, 0],
      ['2026-06-15', 'key_a', 'default/main', 'other', 1, 0],
    ]);
  });

  it('writes in batches of batchSize, oldest first', async () => {
    const { sink, writer, value } = setup({ batchSize: 3 });
    for (let i = 0; i < 7; i++) writer.record(rec({ requestId: `b${i}` }));
    await writer.flush();
    expect(sink.logs.map((r) => r.requestId)).toEqual(['b0', 'b1', 'b2', 'b3', 'b4', 'b5', 'b6']);
    expect(await value('kuberelay_request_logs_written_total')).toBe(7);
    expect(writer.buffered).toBe(0);
  });

  it('while the sink is down: holds up to maxBuffer, counts every drop, keeps usage, then catches up', async () => {
    const { sink, writer, value, health } = setup({ maxBuffer: 5, batchSize: 2 });
    sink.up = false;
    for (let i = 0; i < 8; i++) writer.record(rec({ requestId: `d${i}` }));
    // Fails twice: the batch trigger's flush (at d1, before d2-d7's usage arrived) and the
    // follow-up flush() needs for d2-d7; nothing lost beyond the bound.
    await writer.flush();
    for (let i = 8; i < 10; i++) writer.record(rec({ requestId: `d${i}` }));
    await writer.flush();
    expect(health.up).toBe(false);
    expect(writer.buffered).toBe(5);
    expect(await value('kuberelay_request_logs_dropped_total', { reason: 'buffer_full' })).toBe(5);
    expect(await value('kuberelay_request_logs_buffered')).toBe(5);
    expect(await value('kuberelay_database_up')).toBe(0);
    expect(await value('kuberelay_database_errors_total', { operation: 'write_usage' })).toBe(3);

    sink.up = true;
    await writer.flush();
    expect(health.up).toBe(true);
    expect(sink.logs.map((r) => r.requestId)).toEqual(['d0', 'd1', 'd2', 'd3', 'd4']);
    expect(sink.usage.reduce((s, u) => s + u.requests, 0)).toBe(10); // usage kept every request
    expect(await value('kuberelay_request_logs_buffered')).toBe(0);
  });

  it('a log write failing after usage succeeded puts the batch back in front', async () => {
    const { sink, writer, value } = setup({ maxBuffer: 4, batchSize: 2 });
    for (let i = 0; i < 4; i++) writer.record(rec({ requestId: `f${i}` }));
    const write = sink.writeLogs.bind(sink);
    let calls = 0;
    sink.writeLogs = async (r) => {
      if (++calls === 2 || calls === 3) throw new Error('timeout');
      return write(r);
    };
    // The batch trigger (at f1) writes f0,f1 and fails f2,f3; flush() retries them, fails again,
    // and they go back to the front.
    await writer.flush();
    writer.record(rec({ requestId: 'f4' }));
    writer.record(rec({ requestId: 'f5' })); // buffer: f2 f3 f4 f5 (full)
    writer.record(rec({ requestId: 'f6' })); // dropped
    await writer.flush();
    expect(sink.logs.map((r) => r.requestId)).toEqual(['f0', 'f1', 'f2', 'f3', 'f4', 'f5']);
    expect(await value('kuberelay_request_logs_dropped_total', { reason: 'buffer_full' })).toBe(1);
  });

  it('close flushes what it can and counts the rest as dropped at shutdown', async () => {
    const { sink, writer, value } = setup();
    writer.record(rec());
    await writer.close(1000);
    expect(sink.logs).toHaveLength(1);
    sink.up = false;
    writer.record(rec());
    writer.record(rec());
    await writer.close(200);
    expect(await value('kuberelay_request_logs_dropped_total', { reason: 'shutdown' })).toBe(2);
    expect(await value('kuberelay_usage_rollups_dropped_total')).toBe(1);
  });

  it('record() never throws and never waits, even with a sink that hangs', async () => {
    const { sink, writer } = setup({ batchSize: 1, maxBuffer: 10 });
    sink.writeLogs = () => new Promise(() => {});
    sink.addUsage = () => new Promise(() => {});
    for (let i = 0; i < 1000; i++) expect(writer.record(rec())).toBeUndefined(); // synchronous, returns
    expect(writer.buffered).toBeLessThanOrEqual(10);
  });
});
