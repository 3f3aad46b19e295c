// The production-shaped install: external PostgreSQL (started by the test on this machine, reached
// by the pods through the node IP), the bundled Redis, and the relay Deployment scaled 1 -> 3 -> 1
// with a fleet-wide RateLimitPolicy that stays exact across the pods, then rolled by `helm upgrade`
// under continuous load.
import OpenAI from 'openai';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Postgres, startPostgres } from '../helpers/postgres.ts';
import {
  CHART,
  deployMockUpstreams,
  eventually,
  localImageValues,
  nodeCluster,
  pods,
  restartedContainers,
  rolledOut,
} from './node-env.ts';

const c = nodeCluster();
const ns = 'kuberelay-fleet';
const release = 'fleet';
const relayDeployment = `${release}-kuberelay-relay`;
const relay = `deploy/${relayDeployment}`;
const LIMIT = 30;

let postgres: Postgres;
let dbUrl = '';

beforeAll(async () => {
  postgres = await startPostgres({ listen: { address: c.env['NODE_IP']!, allowFrom: '10.244.0.0/16' } });
  const local = await postgres.createDatabase('kuberelay_fleet');
  dbUrl = local.replace('127.0.0.1', c.env['NODE_IP']!);
  await c.k(['create', 'namespace', ns]);
  await c.k(['-n', ns, 'create', 'secret', 'generic', 'database', `--from-literal=database-url=${dbUrl}`]);
});
afterAll(async () => {
  await c.helm(['uninstall', release, '-n', ns, '--wait', '--timeout=2m'], { timeoutMs: 150_000 });
  await c.kubectl(['delete', 'namespace', ns, '--timeout=2m'], { timeoutMs: 150_000 });
  await postgres?.close();
});

async function scale(replicas: number): Promise<void> {
  await c.k(['-n', ns, 'scale', relay, `--replicas=${replicas}`]);
  await rolledOut(c, ns, relayDeployment, 300);
  // Wait until the Service has exactly that many ready endpoints (kube-proxy follows them).
  await eventually(`${replicas} ready relay endpoints`, 60_000, async () => {
    const out = await c.k([
      '-n',
      ns,
      'get',
      'endpointslices',
      '-l',
      `kubernetes.io/service-name=${release}-kuberelay-relay`,
      '-o',
      'json',
    ]);
    const slices = JSON.parse(out) as { items: { endpoints?: { conditions?: { ready?: boolean } }[] }[] };
    const ready = slices.items.flatMap((s) => s.endpoints ?? []).filter((e) => e.conditions?.ready).length;
    return ready === replicas ? true : undefined;
  });
}

describe('helm install with external PostgreSQL and the bundled Redis', () => {
  let client: OpenAI;
  let tenant = 0;

  it('installs: the migrate Job ran, every pod Ready, helm test passes', async () => {
    const started = Date.now();
    await c.h([
      'install',
      release,
      CHART,
      '-n',
      ns,
      ...localImageValues(c.env),
      '--set',
      'database.external.existingSecret=database',
      '--wait',
      '--timeout=8m',
    ]);
    console.log(`[node] helm install (external PostgreSQL): ${Math.round((Date.now() - started) / 1000)} s`);
    // The pre-install Job is deleted once it succeeds; what it did is in the database.
    const db = new pg.Client({ connectionString: dbUrl.replace(c.env['NODE_IP']!, '127.0.0.1') });
    await db.connect();
    try {
      const r = await db.query(
        'SELECT count(*)::int AS n FROM _prisma_migrations WHERE finished_at IS NOT NULL',
      );
      expect(r.rows[0].n).toBeGreaterThan(0);
    } finally {
      await db.end();
    }
    // Exits 2 when a migration is pending (k() then throws).
    await c.k(['-n', ns, 'exec', relay, '--', 'kuberelay', 'migrate', '--status']);
    await c.k(
      ['-n', ns, 'wait', '--for=condition=Ready', 'pods', '--all', '--timeout=120s'],
      undefined,
      150_000,
    );
    expect((await pods(c, ns, 'app.kubernetes.io/component=redis')).length).toBe(1);
    expect(await c.h(['test', release, '-n', ns, '--timeout=3m'])).toMatch(/Phase:\s+Succeeded/);

    await deployMockUpstreams(c, ns, [9201]);
    await c.k(
      ['-n', ns, 'apply', '-f', '-'],
      `apiVersion: v1
kind: Secret
metadata: { name: mock-provider }
stringData: { apiKey: mock-key }
---
apiVersion: kuberelay.io/v1alpha1
kind: Channel
metadata: { name: mock }
spec:
  provider: openai-compatible
  baseURL: http://mock-upstream:9201/v1
  apiKeySecretRef: { name: mock-provider }
  models: [{ name: gpt-4o-mini }]
---
apiVersion: kuberelay.io/v1alpha1
kind: RateLimitPolicy
metadata: { name: per-tenant }
spec:
  limitBy: header:x-tenant
  limits: [{ requests: ${LIMIT}, per: 10m }]
`,
    );
    const created = await c.k([
      '-n',
      ns,
      'exec',
      relay,
      '--',
      'kuberelay',
      'keys',
      'create',
      '--name',
      'fleet',
      '--json',
    ]);
    const apiKey = (JSON.parse(created.slice(created.indexOf('{'))) as { secret: string }).secret;
    const ip = (
      await c.k(['-n', ns, 'get', 'svc', `${release}-kuberelay-relay`, '-o', 'jsonpath={.spec.clusterIP}'])
    ).trim();
    client = new OpenAI({ baseURL: `http://${ip}/v1`, apiKey, maxRetries: 0, timeout: 20_000 });
    await eventually('a completion through the relay Service', 120_000, async () =>
      client.chat.completions.create(
        { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] },
        { headers: { 'x-tenant': 'warm-up' } },
      ),
    );
  });

  it("reports the Channel Healthy and Programmed from the pods' reports (kubectl get ch)", async () => {
    await eventually('Channel Healthy and Programmed', 120_000, async () => {
      const table = await c.k(['-n', ns, 'get', 'ch', 'mock']);
      const ch = JSON.parse(await c.k(['-n', ns, 'get', 'ch', 'mock', '-o', 'json'])) as {
        status?: { health?: string; conditions?: { type: string; status: string }[] };
      };
      const programmed = ch.status?.conditions?.find((x) => x.type === 'Programmed')?.status;
      if (
        ch.status?.health === 'Healthy' &&
        programmed === 'True' &&
        /mock\s+openai-compatible\s+0\s+\d+\s+Healthy\s+True/.test(table)
      )
        return true;
      throw new Error(`${table}\n${JSON.stringify(ch.status)}`);
    });
  });

  // All requests of a run come from one tenant, spread over the pods by kube-proxy.
  async function admitted(n: number): Promise<{ ok: number; other: string[] }> {
    const t = `tenant-${++tenant}`;
    const results = await Promise.all(
      Array.from({ length: n }, () =>
        client.chat.completions
          .create(
            { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x' }] },
            { headers: { 'x-tenant': t } },
          )
          .then(
            () => 200,
            (err: { status?: number; message: string }) => err.status ?? err.message,
          ),
      ),
    );
    return {
      ok: results.filter((r) => r === 200).length,
      other: results.filter((r) => r !== 200 && r !== 429).map(String),
    };
  }

  it('scaled 1 -> 3 -> 1, a fleet-wide limit admits exactly the limit', async () => {
    for (const replicas of [1, 3, 1]) {
      const started = Date.now();
      await scale(replicas);
      console.log(`[node] relay scaled to ${replicas} in ${Math.round((Date.now() - started) / 1000)} s`);
      const run = await admitted(LIMIT * 3);
      expect(run.other).toEqual([]);
      expect(run.ok).toBe(LIMIT);
    }
  });

  // What an upgrade does to a fleet in service: every relay pod replaced one by one (maxSurge 25%,
  // maxUnavailable 0), each old pod taken out of the Service (readiness, preStop pause) and then
  // drained. The clients are the openai SDK without retries: any failure would show.
  it('helm upgrade rolls the relays under continuous load: 0 failed requests', async () => {
    // Two replicas in the values; Helm takes .spec.replicas back from `kubectl scale` above.
    await c.h([
      'upgrade',
      release,
      CHART,
      '-n',
      ns,
      '--reuse-values',
      '--set',
      'relay.replicas=2',
      '--force-conflicts',
      '--wait',
    ]);
    await scale(2);
    // Streams go to a Channel whose upstream paces its chunks (a static header of the Channel), so
    // some are mid-stream when their pod is told to stop.
    await c.k(
      ['-n', ns, 'apply', '-f', '-'],
      `apiVersion: kuberelay.io/v1alpha1
kind: Channel
metadata: { name: paced }
spec:
  provider: openai-compatible
  baseURL: http://mock-upstream:9201/v1
  apiKeySecretRef: { name: mock-provider }
  headers: { x-mock-chunk-delay-ms: "100" }
  models: [{ name: paced-model }]
`,
    );
    await eventually('the paced Channel served', 60_000, async () =>
      client.chat.completions.create(
        { model: 'paced-model', messages: [{ role: 'user', content: 'hi' }] },
        { headers: { 'x-tenant': 'warm-up-paced' } },
      ),
    );
    const before = (await pods(c, ns, 'app.kubernetes.io/component=relay'))
      .filter((p) => !p.metadata.deletionTimestamp)
      .map((p) => p.metadata.name);
    expect(before).toHaveLength(2);

    let stop = false;
    const outcome = { ok: 0, streams: 0, failed: [] as string[] };
    let seq = 0;
    const one = async (stream: boolean) => {
      // A tenant per request: the per-tenant RateLimitPolicy never refuses one.
      const headers = { 'x-tenant': `roll-${++seq}` };
      const messages = [{ role: 'user' as const, content: 'roll' }];
      if (!stream) {
        const r = await client.chat.completions.create({ model: 'gpt-4o-mini', messages }, { headers });
        if (!r.choices[0]?.message.content) throw new Error('an empty completion');
        return;
      }
      const s = await client.chat.completions.create(
        { model: 'paced-model', messages, stream: true },
        { headers },
      );
      let text = '';
      for await (const chunk of s) text += chunk.choices[0]?.delta.content ?? '';
      if (!text) throw new Error('an empty stream');
      outcome.streams++;
    };
    const worker = async (w: number) => {
      for (let i = 0; !stop; i++) {
        try {
          await one((w + i) % 2 === 0);
          outcome.ok++;
        } catch (err) {
          outcome.failed.push(String((err as Error).message ?? err));
        }
      }
    };
    const load = Promise.all([0, 1, 2, 3].map(worker));

    const started = Date.now();
    await c.h([
      'upgrade',
      release,
      CHART,
      '-n',
      ns,
      '--reuse-values',
      '--set-string',
      `relay.podAnnotations.kuberelay\\.io/rolled=${started}`,
      '--wait',
      '--timeout=8m',
    ]);
    await rolledOut(c, ns, relayDeployment, 300);
    // The old pods are gone only after their drain: keep the load on until then.
    await eventually('the old relay pods gone', 120_000, async () => {
      const now = (await pods(c, ns, 'app.kubernetes.io/component=relay')).map((p) => p.metadata.name);
      return now.some((name) => before.includes(name)) ? undefined : now;
    });
    const rolledMs = Date.now() - started;
    stop = true;
    await load;
    const total = outcome.ok + outcome.failed.length;
    console.log(
      `[node] helm upgrade rolled ${before.length} relays in ${(rolledMs / 1000).toFixed(0)} s under load: ` +
        `${outcome.failed.length} of ${total} requests failed (${outcome.streams} streams)`,
    );
    expect(outcome.failed).toEqual([]);
    expect(outcome.streams).toBeGreaterThan(20);
    expect(total).toBeGreaterThan(100);
  });

  it('no container restarted or was OOM-killed', async () => {
    expect(await restartedContainers(c, ns)).toEqual([]);
  });
});
