import { createHash } from 'node:crypto';
import { rm } from 'node:fs/promises';
import OpenAI, { toFile } from 'openai';
import type pgLib from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mockVideoBytes } from '../../mock-upstream/openai/videos.ts';
import { type MockUpstream, startMockUpstream } from '../../mock-upstream/server.ts';
import { configYaml, type Harness, startHarness } from '../helpers/harness.ts';
import { migratedJobDatabase } from '../helpers/job-database.ts';
import { type Postgres, startPostgres } from '../helpers/postgres.ts';
import { until } from '../helpers/until.ts';

/**
 * The OpenAI Videos API through one relay on PostgreSQL, the openai SDK as client, against the
 * mock's async video jobs: the core path submit -> slot -> poll -> complete -> content -> billing,
 * and what a client may and may not see.
 */

const PER_SECOND = 0.1;

describe('OpenAI Videos API through the relay', () => {
  let pg: Postgres;
  let mock: MockUpstream;
  let flaky: MockUpstream;
  let h: Harness;
  let dataDir: string;
  let client: OpenAI;
  let other: OpenAI;
  let sql: pgLib.Pool;
  const costOf = async (id: string) =>
    Number(
      (await sql.query('SELECT cost::float8 AS cost FROM media_tasks WHERE id = $1', [id])).rows[0]?.cost,
    );

  beforeAll(async () => {
    pg = await startPostgres();
    const made = await migratedJobDatabase(pg, 'videos');
    const url = made.url;
    ({ dataDir, sql } = made);
    mock = await startMockUpstream({ apiKey: 'sk-channel-secret-0123456789', videos: { durationMs: 1500 } });
    flaky = await startMockUpstream({ apiKey: 'sk-channel-secret-0123456789', videos: { durationMs: 1500 } });
    h = await startHarness(
      configYaml(
        [
          {
            name: 'flaky',
            mock: flaky,
            models: '[{ name: sora-fo }]',
            provider: 'openai',
            extra: '  jobs: { pollInterval: 500ms }\n',
          },
          {
            name: 'sora',
            mock,
            priority: 1,
            models: `[{ name: sora-2, pricing: { perSecond: "${PER_SECOND}" } }, { name: sora-fo }, { name: sora-rl }]`,
            provider: 'openai',
            extra: '  limits: { jobs: { maxConcurrent: 2 } }\n  jobs: { pollInterval: 500ms, timeout: 1m }\n',
          },
        ],
        `apiVersion: kuberelay.io/v1alpha1
kind: RateLimitPolicy
metadata: { name: one-video }
spec:
  match: { models: [sora-rl] }
  limitBy: apiKey
  limits: [{ requests: 1, per: 1m }]
`,
      ),
      { auth: 'keys', persistence: { databaseUrl: url, dataDir, keyAuth: { cacheTtlMs: 200, pollMs: 100 } } },
    );
    const p = h.relay.persistence!;
    const a = await p.keys.create({ name: 'owner' });
    const b = await p.keys.create({ name: 'other' });
    await p.authenticator!.poll();
    await p.authenticator!.poll();
    client = new OpenAI({ baseURL: `${h.url}/v1`, apiKey: a.secret, maxRetries: 0 });
    other = new OpenAI({ baseURL: `${h.url}/v1`, apiKey: b.secret, maxRetries: 0 });
  }, 60_000);
  afterAll(async () => {
    await h?.close();
    await mock?.close();
    await flaky?.close();
    await sql?.end();
    await pg?.close();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it('creates a video job (multipart with input_reference), completes it, streams its bytes, bills perSecond x seconds', async () => {
    const image = Buffer.from('\x89PNG fake reference image bytes');
    const v = await client.videos.create({
      model: 'sora-2',
      prompt: 'a cat on a skateboard [bytes=300000]',
      seconds: '8',
      size: '1280x720',
      input_reference: await toFile(image, 'ref.png', { type: 'image/png' }),
    });
    expect(v.id).toMatch(/^video_[0-9A-Z]{26}$/);
    expect(v.object).toBe('video');
    expect(['queued', 'in_progress']).toContain(v.status);
    expect(v.seconds).toBe('8');
    // The upstream got the reference image bytes, and its own id never reaches the client.
    const stats = mock.videos.stats();
    expect(Object.values(stats.inputBytes)).toContain(image.length);
    expect(Object.keys(stats.statusCalls)).not.toContain(v.id);

    const done = await until('completion', async () => {
      const r = await client.videos.retrieve(v.id);
      return r.status === 'completed' && r;
    });
    expect(done.progress).toBe(100);
    expect(done.completed_at).toBeGreaterThan(0);

    const res = await client.videos.downloadContent(v.id);
    const bytes = Buffer.from(await res.arrayBuffer());
    const expected = mockVideoBytes(0, 300_000);
    expect(createHash('sha256').update(bytes).digest('hex')).toBe(
      createHash('sha256').update(expected).digest('hex'),
    );

    const ranged = await client.videos.downloadContent(v.id, {
      headers: { range: 'bytes=1000-1999' },
    } as never);
    expect(ranged.status).toBe(206);
    expect(ranged.headers.get('content-range')).toBe('bytes 1000-1999/300000');
    expect(Buffer.from(await ranged.arrayBuffer())).toEqual(mockVideoBytes(1000, 2000));

    const cost = await until('billing', async () => (await costOf(v.id)) > 0 && costOf(v.id));
    expect(cost).toBeCloseTo(PER_SECOND * 8, 10);
  });

  it('a failed job costs nothing and says why', async () => {
    const v = await client.videos.create({ model: 'sora-2', prompt: 'this one [fail]', seconds: '4' });
    const failed = await until('failure', async () => {
      const r = await client.videos.retrieve(v.id);
      return r.status === 'failed' && r;
    });
    expect(failed.error?.code).toBe('moderation_blocked');
    expect(await costOf(v.id)).toBe(0);
    await expect(client.videos.downloadContent(v.id)).rejects.toMatchObject({ status: 400 });
  });

  it("lists only the caller's jobs; another key's id is a 404", async () => {
    const mine = await client.videos.create({ model: 'sora-2', prompt: 'mine', seconds: '4' });
    const theirs = await other.videos.create({ model: 'sora-2', prompt: 'theirs', seconds: '4' });
    const ids = [];
    for await (const x of client.videos.list({ limit: 2 })) ids.push(x.id);
    expect(ids).toContain(mine.id);
    expect(ids).not.toContain(theirs.id);
    const otherIds = (await other.videos.list()).data.map((x) => x.id);
    expect(otherIds).toEqual([theirs.id]);
    await expect(other.videos.retrieve(mine.id)).rejects.toMatchObject({ status: 404 });
    await expect(other.videos.delete(mine.id)).rejects.toMatchObject({ status: 404 });
    await expect(other.videos.downloadContent(mine.id)).rejects.toMatchObject({ status: 404 });
  });

  it('remixes a completed video on its channel, and deletes', async () => {
    const v = await client.videos.create({ model: 'sora-2', prompt: 'original', seconds: '4' });
    await until('completion', async () => (await client.videos.retrieve(v.id)).status === 'completed');
    const r = await client.videos.remix(v.id, { prompt: 'remixed' });
    expect(r.remixed_from_video_id).toBe(v.id);
    expect(r.id).not.toBe(v.id);
    const deleted = await client.videos.delete(v.id);
    expect(deleted).toEqual({ id: v.id, object: 'video.deleted', deleted: true });
    await expect(client.videos.retrieve(v.id)).rejects.toMatchObject({ status: 404 });
  });

  it('a job the upstream forgot is failed with a clear error', async () => {
    const v = await client.videos.create({
      model: 'sora-2',
      prompt: 'forgotten [duration=60000]',
      seconds: '4',
    });
    mock.videos.forgetAll();
    const failed = await until('failure', async () => {
      const r = await client.videos.retrieve(v.id);
      return r.status === 'failed' && r;
    });
    expect(failed.error?.code).toBe('upstream_job_not_found');
    expect(failed.error?.message).toMatch(/no longer knows this job/);
  });

  it('fails over at submit only: a 503 from the first channel sends the job to the next', async () => {
    flaky.setFaults({ status: 503, count: 1 });
    const { data: v, response } = await client.videos
      .create({ model: 'sora-fo', prompt: 'failing over', seconds: '4' })
      .withResponse();
    expect(response.headers.get('x-kuberelay-channel')).toBe('default/sora');
    expect(flaky.stats().byPath['/v1/videos']).toBe(1);
    expect(mock.videos.stats().order).toContain('failing over');
    // After the submit the job belongs to its channel: it completes there.
    await until('completion', async () => (await client.videos.retrieve(v.id)).status === 'completed');
    expect(flaky.videos.stats().submitted).toBe(0);
  });

  it('RateLimitPolicies apply at submit', async () => {
    await client.videos.create({ model: 'sora-rl', prompt: 'first', seconds: '4' });
    await expect(
      client.videos.create({ model: 'sora-rl', prompt: 'second', seconds: '4' }),
    ).rejects.toMatchObject({
      status: 429,
      error: { code: 'rate_limit_exceeded' },
    });
  });

  it('refuses bad input in OpenAI error shape', async () => {
    await expect(client.videos.create({ model: 'sora-2', prompt: '' })).rejects.toMatchObject({
      status: 400,
      error: { code: 'missing_prompt', param: 'prompt' },
    });
    await expect(
      client.videos.create({ model: 'sora-2', prompt: 'x', seconds: 'eight' as never }),
    ).rejects.toMatchObject({
      status: 400,
      error: { param: 'seconds' },
    });
    await expect(client.videos.create({ model: 'no-such-model', prompt: 'x' })).rejects.toMatchObject({
      status: 404,
      error: { code: 'model_not_found', param: 'model' },
    });
  });
});
