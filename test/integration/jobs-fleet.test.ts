import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../../db/database.ts';
import { applyMigrations } from '../../db/migrate.ts';
import { mockVideoBytes } from '../../mock-upstream/openai/videos.ts';
import { type MockUpstream, startMockUpstream } from '../../mock-upstream/server.ts';
import { type Fleet, startFleet } from '../helpers/fleet.ts';
import { CHANNEL_KEY, configYaml } from '../helpers/harness.ts';
import { type Postgres, startPostgres } from '../helpers/postgres.ts';
import { startRedis, type TestRedis, testPrefix } from '../helpers/redis.ts';
import { until } from '../helpers/until.ts';

/**
 * The job plane across three relay processes sharing Redis and one PostgreSQL, the openai SDK as
 * client, the mock's async video jobs as the upstream: fleet-wide slots and queue order,
 * single-flight polling, a pod killed with SIGKILL mid-job, SSE, streamed content.
 */

const INTERVAL_MS = 500;

function rssOf(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m![1]) * 1024;
}

describe('job plane: three relays, one Redis, one PostgreSQL', () => {
  let pg: Postgres;
  let redis: TestRedis;
  let mock: MockUpstream;
  let fleet: Fleet;
  let dataDir: string;
  const clients: OpenAI[] = [];

  beforeAll(async () => {
    pg = await startPostgres();
    redis = await startRedis();
    mock = await startMockUpstream({ apiKey: CHANNEL_KEY, videos: { durationMs: 1500 } });
    const url = await pg.createDatabase('jobs');
    dataDir = await mkdtemp(join(tmpdir(), 'kuberelay-jobs-'));
    const db = await openDatabase({ url, dataDir });
    await applyMigrations(db);
    await db.close();
    const yaml = configYaml([
      {
        name: 'one-slot',
        mock,
        provider: 'openai',
        models: '[{ name: sora-2, pricing: { perSecond: "0.1" } }]',
        extra: `  limits: { jobs: { maxConcurrent: 1, maxQueue: 10 } }\n  jobs: { pollInterval: ${INTERVAL_MS}ms, timeout: 5m }\n`,
      },
      {
        name: 'wide',
        mock,
        provider: 'openai',
        models: '[{ name: sora-wide }]',
        extra: '  jobs: { pollInterval: 1s, timeout: 5m }\n',
      },
    ]);
    fleet = await startFleet(
      3,
      yaml,
      {
        REDIS_URL: redis.url,
        KUBERELAY_REDIS_PREFIX: testPrefix('jobs'),
        DATABASE_URL: url,
      },
      'relay',
      () => ({}),
      90_000,
    );
    for (const p of fleet.pods)
      clients.push(new OpenAI({ baseURL: `${p.url}/v1`, apiKey: 'none', maxRetries: 0 }));
  }, 120_000);
  afterAll(async () => {
    await fleet?.close();
    await mock?.close();
    await redis?.close();
    await pg?.close();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it('maxConcurrent 1: four jobs at once across pods run one at a time, in submit order; the others wait queued', async () => {
    mock.videos.reset();
    const created = await Promise.all(
      [0, 1, 2, 3].map((i) =>
        clients[i % 3]!.videos.create({ model: 'sora-2', prompt: `job ${i}`, seconds: '4' }),
      ),
    );
    // Submit order is the queue's order: kuberelay's list, oldest first.
    const order = (await clients[0]!.videos.list({ order: 'asc', limit: 100 })).data
      .map((v) => v.id)
      .filter((id) => created.some((c) => c.id === id));
    expect(order).toHaveLength(4);
    const prompts = order.map((id) => created.find((c) => c.id === id)!.prompt);
    // Right after the burst: one job is upstream (itself perhaps still `queued` there), the other
    // three wait in kuberelay's queue: the upstream has not seen them.
    const states = await Promise.all(order.map((id, i) => clients[i % 3]!.videos.retrieve(id)));
    expect(states.slice(1).every((s) => s.status === 'queued')).toBe(true);
    expect(mock.videos.stats().submitted).toBeLessThan(4);

    const seenQueued = new Set<string>();
    const done = await until(
      'all four done',
      async () => {
        const now = await Promise.all(order.map((id, i) => clients[(i + 1) % 3]!.videos.retrieve(id)));
        for (const v of now) if (v.status === 'queued') seenQueued.add(v.id);
        return now.every((v) => v.status === 'completed') && now;
      },
      60_000,
    );
    const stats = mock.videos.stats();
    expect(stats.maxRunning).toBe(1);
    expect(stats.rejected).toBe(0);
    expect(stats.order).toEqual(prompts);
    // Finished in the same order (completed_at in whole seconds: not earlier than the one before).
    for (let i = 1; i < 4; i++)
      expect(done[i]!.completed_at!).toBeGreaterThanOrEqual(done[i - 1]!.completed_at!);
    expect(seenQueued.size).toBeGreaterThanOrEqual(2);
  }, 90_000);

  it('polling is single-flight: about one status call per job per interval, however many pods and client polls', async () => {
    mock.videos.reset();
    const durationMs = 6000;
    const jobs = await Promise.all(
      [0, 1, 2].map((i) =>
        clients[i]!.videos.create({
          model: 'sora-wide',
          prompt: `single ${i} [duration=${durationMs}]`,
          seconds: '4',
        }),
      ),
    );
    // Clients poll every pod hard meanwhile: their GETs read the stored state, never the upstream.
    let stop = false;
    const hammer = (async () => {
      let n = 0;
      while (!stop) {
        await Promise.all(jobs.map((j, i) => clients[(i + n) % 3]!.videos.retrieve(j.id)));
        n++;
        await new Promise((r) => setTimeout(r, 50));
      }
      return n;
    })();
    await until(
      'completion',
      async () =>
        (await Promise.all(jobs.map((j) => clients[0]!.videos.retrieve(j.id)))).every(
          (v) => v.status === 'completed',
        ),
      30_000,
    );
    stop = true;
    const clientPolls = (await hammer) * jobs.length;
    const calls = Object.values(mock.videos.stats().statusCalls);
    expect(calls).toHaveLength(3);
    // 6 s at a 1 s interval: at most ~6 calls per job (jitter and the adaptive last poll add at
    // most a few; a loaded machine polls late, so fewer is fine), against hundreds of client reads.
    for (const c of calls) {
      expect(c).toBeGreaterThanOrEqual(1);
      expect(c).toBeLessThanOrEqual(durationMs / 1000 + 3);
    }
    expect(clientPolls).toBeGreaterThan(3 * calls.reduce((a, b) => a + b, 0));
  }, 60_000);

  it('a job survives SIGKILL of the pod that accepted it; the others finish and serve it (content, Range, flat RSS)', async () => {
    mock.videos.reset();
    const size = 8 * 1024 * 1024;
    const v = await clients[0]!.videos.create({
      model: 'sora-wide',
      prompt: `durable [duration=3000] [bytes=${size}]`,
      seconds: '8',
    });
    await new Promise((r) => setTimeout(r, 800));
    await fleet.kill(0);
    const done = await until(
      'completion on the survivors',
      async () => {
        const r = await clients[1]!.videos.retrieve(v.id);
        return r.status === 'completed' && r;
      },
      40_000,
    );
    expect(done.progress).toBe(100);

    // 8 MB through pod 2, read slowly: its memory must not grow by the body.
    const pid = fleet.pods[2]!.proc.child.pid!;
    const before = rssOf(pid);
    let peak = before;
    const res = await clients[2]!.videos.downloadContent(v.id);
    const hash = createHash('sha256');
    let got = 0;
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      hash.update(chunk);
      got += chunk.length;
      if (got % (1024 * 1024) < chunk.length) {
        peak = Math.max(peak, rssOf(pid));
        await new Promise((r) => setTimeout(r, 20));
      }
    }
    expect(got).toBe(size);
    expect(hash.digest('hex')).toBe(createHash('sha256').update(mockVideoBytes(0, size)).digest('hex'));
    expect(peak - before).toBeLessThan(6 * 1024 * 1024);

    const ranged = await fetch(`${fleet.pods[1]!.url}/v1/videos/${v.id}/content`, {
      headers: { range: 'bytes=-100' },
    });
    expect(ranged.status).toBe(206);
    expect(ranged.headers.get('content-range')).toBe(`bytes ${size - 100}-${size - 1}/${size}`);
    expect(Buffer.from(await ranged.arrayBuffer())).toEqual(mockVideoBytes(size - 100, size));
    await fleet.restart(0);
    clients[0] = new OpenAI({ baseURL: `${fleet.pods[0]!.url}/v1`, apiKey: 'none', maxRetries: 0 });
  }, 90_000);

  it('SSE: video.updated with rising progress, heartbeats at least every 15 s, closed after the terminal state', async () => {
    mock.videos.reset();
    const v = await clients[1]!.videos.create({
      model: 'sora-wide',
      prompt: 'streamed [duration=17000]',
      seconds: '4',
    });
    const started = Date.now();
    const res = await fetch(`${fleet.pods[2]!.url}/v1/videos/${v.id}/events`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const decoder = new TextDecoder();
    let text = '';
    const beats: number[] = [];
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      const s = decoder.decode(chunk, { stream: true });
      if (s.includes(': keep-alive')) beats.push(Date.now() - started);
      text += s;
    }
    const events = text
      .split('\n\n')
      .filter((e) => e.startsWith('event: video.updated'))
      .map((e) => JSON.parse(e.split('\ndata: ')[1]!));
    const progress = events.map((e) => e.progress as number);
    expect(new Set(progress).size).toBeGreaterThanOrEqual(4);
    for (let i = 1; i < progress.length; i++) expect(progress[i]!).toBeGreaterThanOrEqual(progress[i - 1]!);
    expect(events.at(-1)).toMatchObject({ id: v.id, status: 'completed', progress: 100 });
    expect(beats.length).toBeGreaterThanOrEqual(1);
    expect(beats[0]!).toBeLessThanOrEqual(15_500);
  }, 60_000);

  it('jobs survive a restart of every pod (all SIGKILLed at once mid-job, then started again)', async () => {
    mock.videos.reset();
    const queuedToo = await Promise.all(
      [0, 1].map((i) =>
        clients[i]!.videos.create({ model: 'sora-2', prompt: `restart ${i} [duration=2500]`, seconds: '4' }),
      ),
    );
    await Promise.all([0, 1, 2].map((i) => fleet.kill(i)));
    await Promise.all([0, 1, 2].map((i) => fleet.restart(i)));
    for (let i = 0; i < 3; i++) {
      clients[i] = new OpenAI({ baseURL: `${fleet.pods[i]!.url}/v1`, apiKey: 'none', maxRetries: 0 });
    }
    // The running one finishes; the queued one (maxConcurrent 1) is dispatched after it.
    const done = await until(
      'both complete after the restart',
      async () => {
        const now = await Promise.all(queuedToo.map((v, i) => clients[i + 1]!.videos.retrieve(v.id)));
        return now.every((v) => v.status === 'completed') && now;
      },
      60_000,
    );
    expect(done).toHaveLength(2);
    expect(mock.videos.stats().maxRunning).toBe(1);
  }, 120_000);
});
