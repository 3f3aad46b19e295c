import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CreatedKey } from '../../core/keys/api-key.ts';
import type { MockUpstream } from '../../mock-upstream/server.ts';
import { CHANNEL_KEY, chat, configYaml, startMocks } from '../helpers/harness.ts';
import { type Postgres, startPostgres } from '../helpers/postgres.ts';
import { freePort, kuberelay, type Proc } from '../helpers/process.ts';

/**
 * The key lifecycle as an operator lives it: `kuberelay keys …` and `kuberelay migrate` as real
 * processes, relays as real processes, clients through the official SDK.
 */

const ADMIN_TOKEN = 'admin-token-never-logged-5f2a9c';

async function run(args: string[], env: Record<string, string>) {
  const p = kuberelay(args, env);
  const code = await p.exited();
  return { code, out: p.output() };
}

async function createKey(args: string[], env: Record<string, string>): Promise<CreatedKey> {
  const r = await run(['keys', 'create', '--json', ...args], env);
  expect(r.code, r.out).toBe(0);
  return JSON.parse(r.out.slice(r.out.indexOf('{'))) as CreatedKey;
}

interface RelayProc {
  proc: Proc;
  url: string;
  adminUrl: string;
}

async function startRelayProc(configFile: string, env: Record<string, string>): Promise<RelayProc> {
  const port = await freePort();
  const proc = kuberelay(['relay', '--config', configFile, '--port', String(port), '--host', '127.0.0.1'], {
    ADMIN_PORT: '0',
    LOG_LEVEL: 'debug',
    ...env,
  });
  const m = await proc.waitFor(/"url":"([^"]+)","token":"[^"]*","msg":"admin API listening"/, 30_000);
  await proc.waitFor(/relay listening/);
  return { proc, url: `http://127.0.0.1:${port}`, adminUrl: m[1]! };
}

async function stop(r: RelayProc) {
  r.proc.child.kill('SIGTERM');
  return r.proc.exited();
}

const sdk = (url: string, apiKey: string) => new OpenAI({ baseURL: `${url}/v1`, apiKey, maxRetries: 0 });

async function status(url: string, key: string): Promise<number> {
  const res = await fetch(`${url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify(chat()),
  });
  await res.arrayBuffer();
  return res.status;
}

describe('keys CLI on the embedded database (PGlite)', () => {
  let mocks: MockUpstream[];
  let dir: string;
  let config: string;
  const relays: RelayProc[] = [];

  beforeAll(async () => {
    mocks = await startMocks(['cli-embedded']);
    dir = await mkdtemp(join(tmpdir(), 'kuberelay-keys-cli-'));
    config = join(dir, 'config.yaml');
    await writeFile(config, configYaml([{ name: 'main', mock: mocks[0] }]));
  });
  afterAll(async () => {
    for (const r of relays) r.proc.child.kill('SIGKILL');
    await Promise.all((mocks ?? []).map((m) => m.close()));
    await rm(dir, { recursive: true, force: true });
  });

  it('works directly while no relay runs, through the relay while one does, and survives restarts', async () => {
    const env = { KUBERELAY_DATA_DIR: join(dir, 'data') };
    const empty = await run(['keys', 'list'], env);
    expect(empty.code, empty.out).toBe(0);
    expect(empty.out).toContain('no API keys yet: create one with `kuberelay keys create --name NAME`');
    // A first database: the CLI says where and why there.
    expect(empty.out).toContain(
      `creating a new embedded database in ${env.KUBERELAY_DATA_DIR} (KUBERELAY_DATA_DIR)`,
    );

    // Directly on the data directory.
    const first = await createKey(['--name', 'first', '--label', 'team=a'], env);
    expect(first.secret).toMatch(/^sk-kr-[0-9A-Za-z]{43}$/);
    expect(first.key.labels).toEqual({ team: 'a' });

    // The relay takes the data directory; the CLI now goes through its admin API (found in the
    // data directory's lock file, with the token the relay generated for itself).
    const relay = await startRelayProc(config, env);
    relays.push(relay);
    expect((await sdk(relay.url, first.secret).chat.completions.create(chat())).choices).toHaveLength(1);
    const viaApi = await run(
      ['keys', 'create', '--json', '--name', 'second', '--models', 'gpt-4o-mini'],
      env,
    );
    expect(viaApi.code, viaApi.out).toBe(0);
    expect(viaApi.out).toContain('going through its admin API');
    const second = JSON.parse(viaApi.out.slice(viaApi.out.indexOf('{'))) as CreatedKey;
    expect(await status(relay.url, second.secret)).toBe(200);

    const migrate = await run(['migrate'], env);
    expect(migrate.code).toBe(0);
    expect(migrate.out).toContain('migrated the embedded database when it started; nothing to do');

    // PGlite is single-process: a second relay on the same directory refuses to start.
    const other = kuberelay(['relay', '--config', config, '--port', String(await freePort())], env);
    expect(await other.exited()).toBe(1);
    expect(other.output()).toMatch(/data directory .* is in use by `kuberelay relay` \(pid \d+/);
    expect(other.output()).not.toMatch(/\n\s+at /); // a message, not a stack trace

    // Rotate with a grace period: both secrets work, then only the new one.
    const rot = await run(['keys', 'rotate', '--id', first.key.id, '--grace-period', '2s', '--json'], env);
    expect(rot.code, rot.out).toBe(0);
    const rotated = JSON.parse(rot.out.slice(rot.out.indexOf('{'))) as CreatedKey;
    expect(await status(relay.url, first.secret)).toBe(200);
    expect(await status(relay.url, rotated.secret)).toBe(200);
    const graceEnd = Date.parse(rotated.key.secrets.find((s) => s.expiresAt)!.expiresAt!);
    await new Promise((r) => setTimeout(r, graceEnd - Date.now() + 50));
    expect(await status(relay.url, first.secret)).toBe(401);
    expect(await status(relay.url, rotated.secret)).toBe(200);

    const revoke = await run(['keys', 'revoke', '--id', second.key.id], env);
    expect(revoke.code, revoke.out).toBe(0);
    expect(await status(relay.url, second.secret)).toBe(401);

    const table = await run(['keys', 'list'], env);
    expect(table.out).toMatch(/ID\s+NAME\s+PREFIX\s+STATUS/);
    expect(table.out).toContain(rotated.secret.slice(0, 14));
    expect(table.out).not.toContain(rotated.secret);
    expect(table.out).not.toContain(second.key.id); // revoked keys only with --all

    expect(await stop(relay)).toBe(0);
    // Restarted with an explicit ADMIN_TOKEN: the lock file no longer carries a token, so the CLI
    // says what it needs.
    const again = await startRelayProc(config, { ...env, ADMIN_TOKEN });
    relays.push(again);
    expect(await status(again.url, rotated.secret)).toBe(200); // the key survived the restart
    const needsToken = await run(['keys', 'list'], env);
    expect(needsToken.code).toBe(1);
    expect(needsToken.out).toContain(`held by \`kuberelay relay\``);
    expect(needsToken.out).toContain(`--admin-url ${again.adminUrl}`);
    const withToken = await run(['keys', 'list', '--all', '--json'], { ...env, ADMIN_TOKEN });
    expect(withToken.code, withToken.out).toBe(0);
    const all = JSON.parse(withToken.out.slice(withToken.out.indexOf('{'))) as {
      data: { id: string; status: string }[];
    };
    expect(all.data.map((k) => [k.id, k.status])).toEqual([
      [first.key.id, 'active'],
      [second.key.id, 'revoked'],
    ]);
    const wrongToken = await run(['keys', 'list', '--admin-url', again.adminUrl], {
      ...env,
      ADMIN_TOKEN: 'nope',
    });
    expect(wrongToken.code).toBe(1);
    expect(wrongToken.out).toContain('refused the token');
    expect(await stop(again)).toBe(0);

    // With the relay gone, the CLI works on the directory directly again.
    const direct = await run(['keys', 'list'], env);
    expect(direct.code).toBe(0);
    expect(direct.out).not.toContain('admin API');
    expect(direct.out).not.toContain('creating a new embedded database');

    // Nothing active left: the listing says why it is empty.
    expect((await run(['keys', 'revoke', '--id', first.key.id], env)).code).toBe(0);
    const none = await run(['keys', 'list'], env);
    expect(none.code, none.out).toBe(0);
    expect(none.out).toContain('no active API keys (2 revoked; `kuberelay keys list --all` shows them)');
  }, 300_000); // a dozen real processes, each opening PGlite
});

describe('two relay processes sharing PostgreSQL', () => {
  let pg: Postgres;
  let mocks: MockUpstream[];
  let dir: string;
  let config: string;
  let env: Record<string, string>;
  const relays: RelayProc[] = [];

  beforeAll(async () => {
    pg = await startPostgres();
    mocks = await startMocks(['cli-pg']);
    dir = await mkdtemp(join(tmpdir(), 'kuberelay-keys-pg-'));
    config = join(dir, 'config.yaml');
    await writeFile(config, configYaml([{ name: 'main', mock: mocks[0] }]));
    env = { DATABASE_URL: await pg.createDatabase('relays') };
  });
  afterAll(async () => {
    for (const r of relays) r.proc.child.kill('SIGKILL');
    await Promise.all((mocks ?? []).map((m) => m.close()));
    await pg?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('migrate, create, use on both, rotate through one admin API, revoke: refused everywhere within a second; no secret in any output', async () => {
    const unmigrated = kuberelay(['relay', '--config', config, '--port', String(await freePort())], env);
    expect(await unmigrated.exited()).toBe(1);
    const migrations = (await readdir(new URL('../../prisma/migrations/', import.meta.url)))
      .filter((f) => /^\d{14}_/.test(f))
      .sort();
    expect(unmigrated.output()).toContain(
      `missing ${migrations.length} migration(s) (${migrations.join(', ')}): run \`kuberelay migrate\` first`,
    );

    const m1 = await run(['migrate'], env);
    expect(m1.code, m1.out).toBe(0);
    expect(m1.out).toMatch(/applied \d{14}_init/);
    expect(m1.out).not.toContain('kuberelay@'); // no credentials in what it prints
    expect((await run(['migrate'], env)).out).toContain('already up to date');
    expect((await run(['migrate', '--status'], env)).out).toContain(
      `${migrations.length} applied, 0 pending`,
    );

    const a = await startRelayProc(config, { ...env, ADMIN_TOKEN });
    const b = await startRelayProc(config, { ...env, ADMIN_TOKEN });
    relays.push(a, b);

    const k = await createKey(['--name', 'shared'], env);
    for (const r of [a, b]) expect(await status(r.url, k.secret)).toBe(200);

    // Rotated through relay A's admin API; relay B learns it from the database.
    const rot = await run(
      ['keys', 'rotate', '--id', k.key.id, '--grace-period', '3s', '--json', '--admin-url', a.adminUrl],
      { ...env, ADMIN_TOKEN },
    );
    expect(rot.code, rot.out).toBe(0);
    const rotated = JSON.parse(rot.out.slice(rot.out.indexOf('{'))) as CreatedKey;
    for (const r of [a, b]) {
      expect(await status(r.url, k.secret)).toBe(200);
      expect(await status(r.url, rotated.secret)).toBe(200);
    }
    const graceEnd = Date.parse(rotated.key.secrets.find((s) => s.expiresAt)!.expiresAt!);
    await new Promise((res) => setTimeout(res, graceEnd - Date.now() + 50));
    for (const r of [a, b]) {
      const res = await fetch(`${r.url}/v1/models`, { headers: { authorization: `Bearer ${k.secret}` } });
      expect(res.status).toBe(401);
      const body = await res.text();
      expect(body).toContain('api_key_rotated');
      expect(body).not.toContain(k.secret);
      expect(await status(r.url, rotated.secret)).toBe(200);
    }

    // Revoked directly in the database: both relays refuse within a second of the command.
    const revoke = await run(['keys', 'revoke', '--id', k.key.id], env);
    expect(revoke.code, revoke.out).toBe(0);
    const revokedAt = Date.now();
    const refusedAfter = await Promise.all(
      [a, b].map(async (r) => {
        while ((await status(r.url, rotated.secret)) !== 401) {
          if (Date.now() - revokedAt > 5000) throw new Error(`relay ${r.url} still accepts the revoked key`);
          await new Promise((res) => setTimeout(res, 20));
        }
        return Date.now() - revokedAt;
      }),
    );
    for (const ms of refusedAfter) expect(ms).toBeLessThan(1000);

    // Nothing secret anywhere the relays write or serve.
    const metrics = await Promise.all([a, b].map(async (r) => (await fetch(`${r.url}/metrics`)).text()));
    for (const r of [a, b]) expect(await stop(r)).toBe(0);
    const outputs = [...[a, b].map((r) => r.proc.output()), ...metrics].join('\n');
    expect(outputs).toContain('"msg":"relay listening"'); // the capture is real
    for (const secret of [k.secret, rotated.secret, CHANNEL_KEY, ADMIN_TOKEN]) {
      expect(outputs).not.toContain(secret);
      expect(outputs).not.toContain(secret.slice(-20));
    }
  }, 120_000);
});
