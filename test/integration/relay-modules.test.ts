// A relay loads only what its mode uses (memory: every module is heap it keeps): without REDIS_URL
// no Redis client, since no route declares a schema no schema compilers, and with client keys in
// a database no Prisma (its runtime paths and the admin API's key management are plain SQL). The
// relay runs as a real process with a module-load hook that lists every file it loads; it serves
// a request first, so a module loaded on first use would show up too.
import { writeFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../../db/database.ts';
import { applyMigrations } from '../../db/migrate.ts';
import { configYaml, startMocks } from '../helpers/harness.ts';
import { type Postgres, startPostgres } from '../helpers/postgres.ts';
import { freePort, kuberelay, type Proc } from '../helpers/process.ts';
import { startRedis, type TestRedis } from '../helpers/redis.ts';

const HOOK = `import { registerHooks } from 'node:module';
import { appendFileSync } from 'node:fs';
registerHooks({ load(url, ctx, next) { appendFileSync(process.env.LOADED_LIST, url + '\\n'); return next(url, ctx); } });
`;

describe('modules a relay loads', () => {
  let dir: string;
  let mocks: Awaited<ReturnType<typeof startMocks>>;
  let redis: TestRedis | undefined;
  let postgres: Postgres | undefined;
  const procs: Proc[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'kuberelay-modules-'));
    writeFileSync(join(dir, 'hook.mjs'), HOOK);
    writeFileSync(join(dir, 'loaded.mjs'), '');
    mocks = await startMocks(['one']);
  });
  afterAll(async () => {
    for (const p of procs) p.child.kill('SIGKILL');
    await Promise.all(mocks.map((m) => m.close()));
    await redis?.close();
    await postgres?.close();
    await rm(dir, { recursive: true, force: true });
  });

  /** `authorize` runs once the relay listens and returns the request's headers (a key). */
  async function loadedBy(
    name: string,
    env: Record<string, string>,
    authorize: () => Promise<Record<string, string>> = async () => ({}),
  ): Promise<string[]> {
    const config = join(dir, `${name}.yaml`);
    writeFileSync(config, configYaml([{ name: 'one', mock: mocks[0]! }]));
    const list = join(dir, `${name}.txt`);
    const port = await freePort();
    const p = kuberelay(['relay', '--config', config, '--port', String(port), '--host', '127.0.0.1'], {
      KUBERELAY_AUTH: 'none',
      LOADED_LIST: list,
      NODE_OPTIONS: `--import ${join(dir, 'hook.mjs')}`,
      ...env,
    });
    procs.push(p);
    await p.waitFor(/relay listening/, 120_000);
    const res = await fetch(`http://127.0.0.1:${port}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(await authorize()) },
      body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }),
    });
    expect(res.status, await res.text()).toBe(200);
    p.child.kill('SIGTERM');
    await p.exited();
    return (await readFile(list, 'utf8')).split('\n').filter(Boolean);
  }

  it('without REDIS_URL: no Redis client and no schema compilers', { timeout: 180_000 }, async () => {
    const loaded = await loadedBy('local', {});
    expect(loaded.some((u) => u.includes('/relay/app.'))).toBe(true); // the hook saw the relay load
    expect(loaded.filter((u) => /\/node_modules\/(ioredis|@ioredis)\//.test(u))).toEqual([]);
    expect(loaded.filter((u) => /\/node_modules\/(ajv|@fastify\/ajv-compiler)\//.test(u))).toEqual([]);
    // Tracing is off without OTEL_EXPORTER_OTLP_ENDPOINT: no OpenTelemetry SDK or exporter (only
    // prom-client's dependency, the small @opentelemetry/api).
    expect(loaded.filter((u) => /\/node_modules\/@opentelemetry\/(?!api\/)/.test(u))).toEqual([]);
  });

  it('with REDIS_URL: the Redis client is loaded', { timeout: 180_000 }, async () => {
    redis = await startRedis();
    const loaded = await loadedBy('redis', { REDIS_URL: redis.url });
    expect(loaded.some((u) => /\/node_modules\/ioredis\//.test(u))).toBe(true);
  });

  it('keys on PostgreSQL: no Prisma, even after a key is created through the admin API', {
    timeout: 180_000,
  }, async () => {
    postgres = await startPostgres();
    const url = await postgres.createDatabase('modules');
    const db = await openDatabase({ url, dataDir: dir });
    await applyMigrations(db);
    await db.close();
    const [adminPort, token] = [await freePort(), 'modules-admin-token'];
    const loaded = await loadedBy(
      'postgres',
      { KUBERELAY_AUTH: 'keys', DATABASE_URL: url, ADMIN_PORT: String(adminPort), ADMIN_TOKEN: token },
      async () => {
        const res = await fetch(`http://127.0.0.1:${adminPort}/admin/keys`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
          body: JSON.stringify({ name: 'modules' }),
        });
        expect(res.status).toBe(201);
        return { authorization: `Bearer ${((await res.json()) as { secret: string }).secret}` };
      },
    );
    expect(loaded.some((u) => /\/node_modules\/pg\//.test(u))).toBe(true); // the hook saw the driver
    expect(
      loaded.filter((u) =>
        /\/node_modules\/(@prisma|prisma|pglite-prisma-adapter)\/|\/db\/generated\//.test(u),
      ),
    ).toEqual([]);
  });
});
