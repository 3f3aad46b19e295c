import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { metricsListenerFromEnv } from '../../cli/relay.ts';
import type { MockUpstream } from '../../mock-upstream/server.ts';
import { configYaml, type Harness, startHarness, startMocks } from '../helpers/harness.ts';
import { kuberelay, type Proc } from '../helpers/process.ts';

/**
 * Where the admin API listens: loopback unless told otherwise, on a free port when standalone
 * (so relays on one machine never collide), and optionally with GET /metrics moved there.
 */

describe('admin API: standalone relays on one machine', () => {
  let mocks: MockUpstream[];
  let dir: string;
  const procs: Proc[] = [];

  beforeAll(async () => {
    mocks = await startMocks(['one']);
    dir = await mkdtemp(join(tmpdir(), 'kuberelay-admin-'));
    await writeFile(join(dir, 'config.yaml'), configYaml([{ name: 'one', mock: mocks[0] }]));
  });
  afterAll(async () => {
    for (const p of procs) p.child.kill('SIGTERM');
    await Promise.all(procs.map((p) => p.exited()));
    await Promise.all((mocks ?? []).map((m) => m.close()));
    await rm(dir, { recursive: true, force: true });
  });

  it('two relays without ADMIN_PORT both start, each admin API on its own loopback port, found by `kuberelay keys`', {
    timeout: 480_000,
  }, async () => {
    const env = (name: string) => {
      // Exactly what a user's shell gives: no ADMIN_PORT, ADMIN_HOST or ADMIN_TOKEN.
      const e: Record<string, string> = { KUBERELAY_DATA_DIR: join(dir, name), KUBERELAY_AUTH: 'keys' };
      for (const k of ['ADMIN_PORT', 'ADMIN_HOST', 'ADMIN_TOKEN']) e[k] = '';
      return e;
    };
    const start = (name: string) => {
      const p = kuberelay(
        ['relay', '--config', join(dir, 'config.yaml'), '--port', '0', '--host', '127.0.0.1'],
        env(name),
      );
      procs.push(p);
      // Embedded PGlite takes seconds to start, much longer on a loaded machine: a bound, not a target.
      return p.waitFor(/"url":"(http:\/\/[^"]+)","token":"[^"]*","msg":"admin API listening"/, 240_000);
    };
    const [a, b] = await Promise.all([start('a'), start('b')]);
    const urls = [new URL(a[1]!), new URL(b[1]!)];
    for (const u of urls) expect(u.hostname).toBe('127.0.0.1');
    expect(urls[0]!.port).not.toBe(urls[1]!.port);
    for (const name of ['a', 'b']) {
      const p = kuberelay(['keys', 'create', '--name', `from-${name}`, '--json'], env(name));
      expect(await p.exited(), p.output()).toBe(0);
      expect(p.output()).toMatch(/"secret":\s*"sk-kr-/);
    }
  });
});

describe('admin API: /metrics on the admin listener', () => {
  let mocks: MockUpstream[];
  let h: Harness;
  let dataDir: string;
  const token = 'admin-token-metrics-0123456789';

  beforeAll(async () => {
    mocks = await startMocks(['one']);
    dataDir = await mkdtemp(join(tmpdir(), 'kuberelay-admin-metrics-'));
    h = await startHarness(configYaml([{ name: 'one', mock: mocks[0] }]), {
      auth: 'keys',
      persistence: { dataDir, admin: { port: 0, token } },
      metricsListener: 'admin',
    });
  });
  afterAll(async () => {
    await h?.close();
    await Promise.all((mocks ?? []).map((m) => m.close()));
    await rm(dataDir, { recursive: true, force: true });
  });

  it('listens on loopback when ADMIN_HOST is not set, even with a token', () => {
    expect(new URL(h.relay.adminUrl!).hostname).toBe('127.0.0.1');
  });

  it('serves /metrics there without the token, and no longer on the public port', async () => {
    const admin = await fetch(`${h.relay.adminUrl}/metrics`);
    expect(admin.status).toBe(200);
    expect(await admin.text()).toMatch(/^# HELP kuberelay_requests_total/m);
    const pub = await fetch(`${h.url}/metrics`);
    expect(pub.status).toBe(404);
    expect(((await pub.json()) as { error: { code: string } }).error.code).toBe('not_found');
  });

  it('every other admin route still needs the token', async () => {
    expect((await fetch(`${h.relay.adminUrl}/admin/keys`)).status).toBe(401);
    const ok = await fetch(`${h.relay.adminUrl}/admin/keys`, {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(ok.status).toBe(200);
  });

  it('is refused at start when no admin API runs', async () => {
    await expect(
      startHarness(configYaml([{ name: 'one', mock: mocks[0] }]), { metricsListener: 'admin' }),
    ).rejects.toThrow(/KUBERELAY_METRICS_LISTENER=admin needs the admin API/);
  });

  it('KUBERELAY_METRICS_LISTENER takes public or admin', () => {
    expect(metricsListenerFromEnv(undefined)).toBe('public');
    expect(metricsListenerFromEnv('admin')).toBe('admin');
    expect(() => metricsListenerFromEnv('both')).toThrow(/"public" or "admin"/);
  });
});
