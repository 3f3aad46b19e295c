import { createHash } from 'node:crypto';
import { rm } from 'node:fs/promises';
import OpenAI from 'openai';
import type pgLib from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type MockUpstream, startMockUpstream } from '../../mock-upstream/server.ts';
import { resultBytes } from '../../mock-upstream/task-sim.ts';
import { type Harness, startHarness } from '../helpers/harness.ts';
import { migratedJobDatabase } from '../helpers/job-database.ts';
import { type Postgres, startPostgres } from '../helpers/postgres.ts';
import { until } from '../helpers/until.ts';

/**
 * Veo (gemini) and Volcengine channels through the job plane, one relay on PostgreSQL, the openai
 * SDK as client: submit -> poll -> completed -> content bytes -> cost; and the adapters' own
 * error messages and codes on a refused submit.
 */

const AK = 'AKLTmockAccessKeyId';
const SK = 'bW9jay1zZWNyZXQtYWNjZXNzLWtleQ==';
const GEMINI_KEY = 'AIza-mock-key-0123456789';
const RESULT_BYTES = 200_000;
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

function yaml(mock: MockUpstream, badMock: MockUpstream): string {
  const ch = (name: string, provider: string, url: string, secret: string, models: string) => `---
apiVersion: kuberelay.io/v1alpha1
kind: Channel
metadata: { name: ${name} }
spec:
  provider: ${provider}
  baseURL: ${url}
  apiKeySecretRef: { name: ${secret} }
  models: ${models}
  limits: { jobs: { maxConcurrent: 1, maxQueue: 100 } }
  jobs: { pollInterval: 500ms, timeout: 1m }
`;
  return `apiVersion: v1
kind: Secret
metadata: { name: volc }
stringData: { accessKeyId: ${AK}, secretAccessKey: ${SK} }
---
apiVersion: v1
kind: Secret
metadata: { name: google }
stringData: { apiKey: ${GEMINI_KEY} }
${ch('veo', 'gemini', mock.url, 'google', '[{ name: veo, upstreamName: veo-3.0-generate-001, pricing: { perSecond: "0.5" } }]')}${ch(
  'jimeng',
  'volcengine',
  mock.url,
  'volc',
  '[{ name: jimeng, upstreamName: jimeng_vgfm_t2v_l20, pricing: { perSecond: "0.04" } }]',
)}${ch('jimeng-bad', 'volcengine', badMock.url, 'volc', '[{ name: jimeng-bad, upstreamName: jimeng_vgfm_t2v_l20 }]')}`;
}

describe('Veo and Volcengine video jobs through the relay', () => {
  let pg: Postgres;
  let mock: MockUpstream;
  let bad: MockUpstream;
  let h: Harness;
  let dataDir: string;
  let client: OpenAI;
  let sql: pgLib.Pool;

  beforeAll(async () => {
    pg = await startPostgres();
    const made = await migratedJobDatabase(pg, 'videos_providers');
    const url = made.url;
    ({ dataDir, sql } = made);
    const tasks = { queueMs: 100, durationMs: 800, resultBytes: RESULT_BYTES };
    mock = await startMockUpstream({
      apiKey: GEMINI_KEY,
      volcengine: { accessKeyId: AK, secretAccessKey: SK },
      tasks,
    });
    bad = await startMockUpstream({ volcengine: { accessKeyId: AK, secretAccessKey: SK }, tasks });
    h = await startHarness(yaml(mock, bad), {
      auth: 'keys',
      persistence: { databaseUrl: url, dataDir, keyAuth: { cacheTtlMs: 200, pollMs: 100 } },
    });
    const p = h.relay.persistence!;
    const a = await p.keys.create({ name: 'owner' });
    await p.authenticator!.poll();
    client = new OpenAI({ baseURL: `${h.url}/v1`, apiKey: a.secret, maxRetries: 0 });
  }, 60_000);
  afterAll(async () => {
    await h?.close();
    await mock?.close();
    await bad?.close();
    await sql?.end();
    await pg?.close();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  const row = async (id: string) =>
    (await sql.query('SELECT upstream_task_id, cost::float8 AS cost FROM media_tasks WHERE id = $1', [id]))
      .rows[0] as { upstream_task_id: string; cost: number };

  // Veo renders 4-8 s; Volcengine 5 or 10 s (the SDK types only OpenAI's 4/8/12, the wire takes any).
  for (const [model, seconds, perSecond, taskId] of [
    ['veo', '8', 0.5, (u: string) => u.slice(u.lastIndexOf('/') + 1)],
    ['jimeng', '5', 0.04, (u: string) => u],
  ] as const) {
    it(`${model}: submit, poll to completed, content bytes match, billed perSecond x seconds`, async () => {
      const v = await client.videos.create({
        model,
        prompt: 'a lighthouse at dusk',
        seconds: seconds as '8',
      });
      expect(['queued', 'in_progress']).toContain(v.status);
      const done = await until(`${model} completed`, async () => {
        const r = await client.videos.retrieve(v.id);
        if (r.status === 'failed') throw new Error(JSON.stringify(r.error));
        return r.status === 'completed' && r;
      });
      expect(done.progress).toBe(100);
      const res = await client.videos.downloadContent(v.id);
      const bytes = new Uint8Array(await res.arrayBuffer());
      const { upstream_task_id, cost } = await row(v.id);
      expect(bytes.length).toBe(RESULT_BYTES);
      expect(sha(bytes)).toBe(sha(resultBytes(taskId(upstream_task_id), RESULT_BYTES)));
      expect(done.seconds).toBe(seconds);
      expect(cost).toBeCloseTo(perSecond * Number(seconds), 6);
    });
  }

  it('counts the jobs per channel for the pod report: completed ones, none open', async () => {
    await h.relay.jobs!.refreshGauges();
    const counts = h.relay.jobs!.counts;
    expect(counts.get('default/veo')).toEqual({ queued: 0, running: 0, completed: 1, failed: 0 });
    expect(counts.get('default/jimeng')).toEqual({ queued: 0, running: 0, completed: 1, failed: 0 });
  });

  it("a refused submit carries the adapter's message and code (Volcengine's error shape)", async () => {
    bad.setFaults({ status: 400 });
    const err = await client.videos.create({ model: 'jimeng-bad', prompt: 'x' }).then(
      () => undefined,
      (e: unknown) => e as InstanceType<typeof OpenAI.APIError>,
    );
    expect(err?.status).toBe(400);
    expect(err?.code).toBe('volcengine_50400');
    expect(err?.message).not.toContain('the upstream answered 400');
  });
});
