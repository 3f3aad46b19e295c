import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  call,
  expectSettled,
  isOpenAIError,
  metric,
  type RelayProc,
  startRelayProc,
  startUpstream,
  type Upstream,
  until,
} from '../helpers/fault-rig.ts';
import { configYaml } from '../helpers/harness.ts';
import { type Postgres, startPostgres } from '../helpers/postgres.ts';
import { findProcess, stallTree } from '../helpers/stall.ts';

/**
 * A stalled PostgreSQL (every server process SIGSTOPped: connections stay open, nothing answers),
 * then resumed. The design: "Database and budget reads have timeouts: a stalled database never
 * hangs a request." Keys the relay has seen keep working (past their cache TTL), a key it has
 * not seen gets 503 auth_unavailable, a key with a budget is decided without the database, and
 * every answer comes within REQUEST_BOUND_MS. After SIGCONT it recovers by itself and no usage is
 * lost.
 */

// Ten Redis command timeouts (KUBERELAY_REDIS_TIMEOUT_MS): what "never hangs" allows for at most.
const REQUEST_BOUND_MS = 5000;
// Longer than the key cache's TTL (5 s), so cached keys go stale during the stall.
const STALL_MS = 7000;

describe('a stalled database', () => {
  let pg: Postgres;
  let up: Upstream;
  let relay: RelayProc;

  beforeAll(async () => {
    [pg, up] = await Promise.all([startPostgres(), startUpstream('main')]);
    const yaml = configYaml([
      {
        name: 'main',
        baseURL: `${up.url}/v1`,
        models: '[{ name: gpt-4o-mini, pricing: { inputPer1M: "1", outputPer1M: "2" } }]',
      },
    ]);
    relay = await startRelayProc({ yaml, databaseUrl: await pg.createDatabase('stall') });
  });
  afterAll(async () => {
    await relay?.stop('SIGKILL');
    await up?.stop();
    await pg?.close();
  });

  const chat = (secret: string) =>
    call(`${relay.url}/v1/chat/completions`, {
      headers: { authorization: `Bearer ${secret}` },
      body: { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'while the database sleeps' }] },
      timeoutMs: REQUEST_BOUND_MS,
    }).catch((err: Error) => {
      throw new Error(`no answer within ${REQUEST_BOUND_MS} ms while the database is stalled (${err.name})`);
    });

  it('answers every request within the bound while stalled, and recovers by itself', async () => {
    const seen = await relay.createKey({ name: 'seen' });
    const budgeted = await relay.createKey({ name: 'budgeted', budget: { amount: 100, period: 'day' } });
    const unseen = await relay.createKey({ name: 'unseen' });
    let sent = 0;
    // Used, then used again after the key poll has seen their creation (which drops them from the
    // cache once): both are cached when the database stalls.
    for (let round = 0; round < 2; round++) {
      for (const k of [seen, budgeted]) {
        expect((await chat(k.secret)).status).toBe(200);
        sent++;
      }
      if (round === 0) await new Promise((r) => setTimeout(r, 1500));
    }
    await until(
      'request logs written',
      async () => (await metric(relay.url, 'kuberelay_request_logs_buffered')) === 0,
    );

    const resume = stallTree(findProcess('postgres', ['-p', String(pg.port)]));
    let resumed = false;
    try {
      const t0 = Date.now();
      let unseenRefused = 0;
      while (Date.now() - t0 < STALL_MS) {
        for (const k of [seen, budgeted]) {
          const r = await chat(k.secret);
          sent++;
          expect(r.ms).toBeLessThan(REQUEST_BOUND_MS);
          // Served from the cache, stale or not: never refused for want of the database.
          expect(r.status, r.text).toBe(200);
        }
        const u = await chat(unseen.secret);
        expect(u.status).toBe(503);
        expect(isOpenAIError(u.json)).toBe(true);
        expect((u.json as { error: { code: string } }).error.code).toBe('auth_unavailable');
        unseenRefused++;
        const ready = await call(`${relay.url}/readyz`, { timeoutMs: REQUEST_BOUND_MS });
        expect(ready.status).toBe(200);
        await new Promise((r) => setTimeout(r, 250));
      }
      expect(unseenRefused).toBeGreaterThan(0);
      // Reported, not hidden: the relay knows it is running without its database.
      expect(await metric(relay.url, 'kuberelay_database_up')).toBe(0);
      // A key the relay had seen is still served after its cache TTL ran out during the stall.
      expect((await chat(seen.secret)).status).toBe(200);
      sent++;
    } finally {
      resume();
      resumed = true;
    }
    expect(resumed).toBe(true);

    // Recovered without a restart: the unseen key works, and every served request is recorded.
    await until(
      'the unseen key to be accepted',
      async () => (await chat(unseen.secret)).status === 200,
      20_000,
    );
    await expectSettled(relay.url);
    await until(
      'kuberelay_database_up back to 1',
      async () => (await metric(relay.url, 'kuberelay_database_up')) === 1,
    );
    type Row = { requests: number };
    const total = async (keyId: string) =>
      ((await relay.admin(`/admin/usage?keyId=${keyId}`)) as { data: Row[] }).data.reduce(
        (s, r) => s + r.requests,
        0,
      );
    await until(
      'the usage rollups to hold every request of the two known keys',
      async () => (await total(seen.id)) + (await total(budgeted.id)) === sent,
      20_000,
    );
    expect(relay.proc.child.exitCode).toBeNull();
  });
});
