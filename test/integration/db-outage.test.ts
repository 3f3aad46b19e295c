import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../../db/database.ts';
import { applyMigrations } from '../../db/migrate.ts';
import type { MockUpstream } from '../../mock-upstream/server.ts';
import {
  chat,
  configYaml,
  type Harness,
  metric,
  post,
  startHarness,
  startMocks,
} from '../helpers/harness.ts';
import { type Postgres, startPostgres } from '../helpers/postgres.ts';

const MAX_BUFFER = 50;

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 15_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('PostgreSQL goes down under load', () => {
  let pg: Postgres;
  let mocks: MockUpstream[];
  let h: Harness;
  let dataDir: string;

  beforeAll(async () => {
    pg = await startPostgres();
    const url = await pg.createDatabase('outage');
    dataDir = await mkdtemp(join(tmpdir(), 'kuberelay-outage-'));
    const db = await openDatabase({ url, dataDir });
    await applyMigrations(db);
    await db.close();
    mocks = await startMocks(['main']);
    h = await startHarness(configYaml([{ name: 'main', mock: mocks[0] }]), {
      auth: 'keys',
      persistence: {
        databaseUrl: url,
        dataDir,
        requestLog: { flushIntervalMs: 100, batchSize: 20, maxBuffer: MAX_BUFFER },
        // Cached keys go stale quickly here, so the outage outlasts them.
        keyAuth: { cacheTtlMs: 200, pollMs: 100 },
      },
    });
  });
  afterAll(async () => {
    await h?.close();
    await Promise.all((mocks ?? []).map((m) => m.close()));
    await pg?.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('serves cached keys, buffers logs up to the bound, counts the drops, and catches up when it returns', async () => {
    const p = h.relay.persistence!;
    const { key, secret } = await p.keys.create({ name: 'load' });
    // Two polls: the second surely started after the creation, so the relay has seen it (a key
    // changed within a poll of the outage would not be cached yet).
    await p.authenticator!.poll();
    await p.authenticator!.poll();
    const client = new OpenAI({ baseURL: `${h.url}/v1`, apiKey: secret, maxRetries: 0 });
    await client.chat.completions.create(chat()); // cached from here on
    await p.recorder.flush();
    const written = await metric(h.url, 'kuberelay_request_logs_written_total');
    expect(written).toBe(1);

    await pg.stop();
    await until('the relay to notice', async () => (await metric(h.url, 'kuberelay_database_up')) === 0);
    // Degraded, not unready: failing readiness would take every replica out of the Service at once.
    const ready = await fetch(`${h.url}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: 'ok', message: 'degraded: database unreachable' });

    // 12 waves of 10 concurrent requests, spread past the cache TTL: every one is served.
    let served = 0;
    for (let wave = 0; wave < 12; wave++) {
      const res = await Promise.all(Array.from({ length: 10 }, () => client.chat.completions.create(chat())));
      served += res.filter((r) => r.choices.length === 1).length;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(served).toBe(120);
    expect(await metric(h.url, 'kuberelay_auth_cache_lookups_total', { result: 'stale' })).toBeGreaterThan(0);

    // A key the relay never saw cannot be checked: 503, not a false 401.
    const unknown = await post(h.url, '/v1/chat/completions', chat(), {
      authorization: `Bearer sk-kr-${'Z'.repeat(43)}`,
    });
    expect(unknown.status).toBe(503);
    expect(unknown.json.error.code).toBe('auth_unavailable');
    expect(unknown.headers.get('retry-after')).toBe('1');

    // 121 records while down: the buffer holds its bound, the rest are counted as dropped.
    await until(
      'a failed flush',
      async () => (await metric(h.url, 'kuberelay_database_errors_total', { operation: 'write_usage' })) > 0,
    );
    const buffered = await metric(h.url, 'kuberelay_request_logs_buffered');
    const dropped = await metric(h.url, 'kuberelay_request_logs_dropped_total', { reason: 'buffer_full' });
    expect(buffered).toBe(MAX_BUFFER);
    expect(buffered + dropped).toBe(121);
    expect(await metric(h.url, 'kuberelay_request_logs_written_total')).toBe(written);

    // Back up, no restart: the backlog and the usage rollups are written.
    await pg.start();
    await until(
      'the backlog to drain',
      async () => (await metric(h.url, 'kuberelay_request_logs_buffered')) === 0,
    );
    await until('the relay to notice', async () => (await metric(h.url, 'kuberelay_database_up')) === 1);
    expect(await metric(h.url, 'kuberelay_request_logs_written_total')).toBe(written + MAX_BUFFER);
    expect(await (await fetch(`${h.url}/readyz`)).json()).toEqual({ status: 'ok' });
    expect(await (await p.db.prisma()).requestLog.count()).toBe(1 + MAX_BUFFER);
    await until('usage to be written', async () => {
      const rows = await p.accounting.usage({ keyId: key.id, groupBy: ['keyId'] });
      return rows[0]?.requests === 121; // every request counted, none sampled or dropped
    });

    // Keys are read from the database again: a new one works at once.
    const fresh = await p.keys.create({ name: 'after' });
    const res = await new OpenAI({
      baseURL: `${h.url}/v1`,
      apiKey: fresh.secret,
      maxRetries: 0,
    }).chat.completions.create(chat());
    expect(res.choices).toHaveLength(1);
  });
});
