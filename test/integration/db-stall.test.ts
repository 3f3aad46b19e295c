import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import pg from 'pg';
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

// A database that stops answering (not one that is down: connections stay open, nothing comes
// back) never holds a request past its deadline: key lookups (2 s, then 503 unless the key is
// cached) and budget reads (1 s, then the live spend counter alone decides).

// Far above both deadlines: only a request that waits on the database without one gets here.
const HANG_MS = 15_000;

function answered<T>(p: Promise<T>): Promise<T | 'hung'> {
  let timer: NodeJS.Timeout | undefined;
  const hung = new Promise<'hung'>((r) => {
    timer = setTimeout(() => r('hung'), HANG_MS);
  });
  return Promise.race([p, hung]).finally(() => clearTimeout(timer));
}

describe('a stalled database', () => {
  let pgServer: Postgres;
  let url: string;
  let mocks: MockUpstream[];
  let h: Harness;
  let dataDir: string;

  beforeAll(async () => {
    pgServer = await startPostgres();
    url = await pgServer.createDatabase('stall');
    dataDir = await mkdtemp(join(tmpdir(), 'kuberelay-stall-'));
    const db = await openDatabase({ url, dataDir });
    await applyMigrations(db);
    await db.close();
    mocks = await startMocks(['main']);
    h = await startHarness(configYaml([{ name: 'main', mock: mocks[0] }]), {
      auth: 'keys',
      persistence: { databaseUrl: url, dataDir, keyAuth: { cacheTtlMs: 200, pollMs: 100 } },
    });
  });
  afterAll(async () => {
    pgServer?.resume();
    await h?.close();
    await Promise.all((mocks ?? []).map((m) => m.close()));
    await pgServer?.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  const client = (apiKey: string) => new OpenAI({ baseURL: `${h.url}/v1`, apiKey, maxRetries: 0 });

  it('a budget read held by a lock does not hold the request: the live counter decides', async () => {
    const p = h.relay.persistence!;
    const { secret } = await p.keys.create({ name: 'budgeted', budget: { amount: 50, period: 'day' } });
    // A migration or a VACUUM FULL holding the rollups: keys answer, budget reads wait.
    const locker = new pg.Client({ connectionString: url });
    await locker.connect();
    try {
      await locker.query('BEGIN');
      await locker.query('LOCK TABLE usage_daily IN ACCESS EXCLUSIVE MODE');
      const res = await answered(client(secret).chat.completions.create(chat()));
      expect(res).not.toBe('hung');
      expect(res).toMatchObject({ object: 'chat.completion' });
      expect(await metric(h.url, 'kuberelay_database_errors_total', { operation: 'spend' })).toBeGreaterThan(
        0,
      );
    } finally {
      await locker.query('COMMIT').catch(() => {});
      await locker.end();
    }
  });

  it('SIGSTOP: cached keys are served, unknown keys get a 503, none waits past its deadline', async () => {
    const p = h.relay.persistence!;
    const plain = await p.keys.create({ name: 'plain' });
    const budgeted = await p.keys.create({ name: 'budgeted-2', budget: { amount: 50, period: 'day' } });
    await p.authenticator!.poll();
    await p.authenticator!.poll();
    for (const k of [plain, budgeted]) await client(k.secret).chat.completions.create(chat()); // cached

    pgServer.pause();
    try {
      await new Promise((r) => setTimeout(r, 300)); // past the key cache TTL: lookups go to the database
      for (const k of [plain, budgeted, plain]) {
        const res = await answered(client(k.secret).chat.completions.create(chat()));
        expect(res).toMatchObject({ object: 'chat.completion' });
      }
      const unknown = await answered(
        post(h.url, '/v1/chat/completions', chat(), { authorization: `Bearer sk-kr-${'Z'.repeat(43)}` }),
      );
      expect(unknown).not.toBe('hung');
      if (unknown === 'hung') return;
      expect(unknown.status).toBe(503);
      expect(unknown.json.error).toMatchObject({ type: 'server_error', code: 'auth_unavailable' });
      expect(await metric(h.url, 'kuberelay_database_up')).toBe(0);
    } finally {
      pgServer.resume();
    }
    // Back: the database answers again and new keys work.
    const fresh = await p.keys.create({ name: 'after' });
    expect(await client(fresh.secret).chat.completions.create(chat())).toMatchObject({
      object: 'chat.completion',
    });
  });
});
