// bench/jobs.ts: the async job plane at scale. 1,000 video jobs in flight at once against the mock
// upstream's async video jobs, three relay processes sharing one Redis and one PostgreSQL: how late
// the one poller of each job asks (p50/p99, from the relays' kuberelay_jobs_poll_lateness_seconds),
// how many status calls the upstream sees per job against the ideal (duration / pollInterval),
// and what it costs the database (transactions and row updates per second) and Redis (commands per
// second). Usage: node bench/jobs.ts [--jobs 1000] [--duration-ms 30000] [--interval 5s]
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import pg from 'pg';
import { openDatabase } from '../db/database.ts';
import { applyMigrations } from '../db/migrate.ts';
import { startMockUpstream } from '../mock-upstream/server.ts';
import { startFleet } from '../test/helpers/fleet.ts';
import { CHANNEL_KEY, configYaml } from '../test/helpers/harness.ts';
import { startPostgres } from '../test/helpers/postgres.ts';
import { startRedis } from '../test/helpers/redis.ts';

const { values: args } = parseArgs({
  options: {
    jobs: { type: 'string', default: '1000' },
    'duration-ms': { type: 'string', default: '30000' },
    interval: { type: 'string', default: '5s' },
    pods: { type: 'string', default: '3' },
  },
});
const JOBS = Number(args.jobs);
const DURATION_MS = Number(args['duration-ms']);
const INTERVAL = args.interval!;
const INTERVAL_MS = INTERVAL.endsWith('ms')
  ? Number.parseFloat(INTERVAL)
  : Number.parseFloat(INTERVAL) * 1000;
const PODS = Number(args.pods);

/** Quantile from a Prometheus histogram's cumulative buckets (linear within a bucket). */
function quantile(buckets: [number, number][], q: number): number {
  const total = buckets.at(-1)![1];
  const rank = q * total;
  let prevLe = 0;
  let prevCount = 0;
  for (const [le, count] of buckets) {
    if (count >= rank) {
      if (!Number.isFinite(le)) return prevLe;
      return prevLe + ((le - prevLe) * (rank - prevCount)) / Math.max(1, count - prevCount);
    }
    prevLe = le;
    prevCount = count;
  }
  return prevLe;
}

async function lateness(urls: string[]): Promise<[number, number][]> {
  const sum = new Map<number, number>();
  for (const u of urls) {
    const text = await (await fetch(`${u}/metrics`)).text();
    for (const m of text.matchAll(/^kuberelay_jobs_poll_lateness_seconds_bucket\{le="([^"]+)"\} (\d+)/gm)) {
      const le = m[1] === '+Inf' ? Number.POSITIVE_INFINITY : Number(m[1]);
      sum.set(le, (sum.get(le) ?? 0) + Number(m[2]));
    }
  }
  return [...sum.entries()].sort((a, b) => a[0] - b[0]);
}

async function main() {
  const pgServer = await startPostgres();
  const redis = await startRedis();
  const mock = await startMockUpstream({
    apiKey: CHANNEL_KEY,
    videos: { durationMs: DURATION_MS, bytesPerSecond: 1024 },
  });
  const url = await pgServer.createDatabase('bench_jobs');
  const dataDir = await mkdtemp(join(tmpdir(), 'kuberelay-bench-jobs-'));
  const db = await openDatabase({ url, dataDir });
  await applyMigrations(db);
  await db.close();
  const yaml = configYaml([
    {
      name: 'videos',
      mock,
      provider: 'openai',
      models: '[{ name: sora-2, pricing: { perSecond: "0.1" } }]',
      extra: `  limits: { jobs: { maxQueue: 100000 } }\n  jobs: { pollInterval: ${INTERVAL}, timeout: 1h }\n`,
    },
  ]);
  const env = { REDIS_URL: redis.url, DATABASE_URL: url, DATABASE_POOL_SIZE: '10' };
  const fleet = await startFleet(PODS, yaml, env, 'relay', () => ({}), 180_000);
  const sql = new pg.Client({ connectionString: url });
  await sql.connect();
  const r = new Redis(redis.url);
  const dbStats = async () =>
    (
      await sql.query(
        `SELECT xact_commit::float8 AS commits, tup_updated::float8 AS updated, tup_returned::float8 AS returned
         FROM pg_stat_database WHERE datname = current_database()`,
      )
    ).rows[0] as { commits: number; updated: number; returned: number };
  const redisCommands = async () => Number(/total_commands_processed:(\d+)/.exec(await r.info('stats'))![1]);
  try {
    const t0 = Date.now();
    const db0 = await dbStats();
    const redis0 = await redisCommands();
    // Submit: 1,000 jobs through the three pods, 50 at a time.
    const ids: string[] = [];
    let next = 0;
    await Promise.all(
      Array.from({ length: 50 }, async () => {
        while (next < JOBS) {
          const i = next++;
          const res = await fetch(`${fleet.pods[i % PODS]!.url}/v1/videos`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ model: 'sora-2', prompt: `bench ${i}`, seconds: '4' }),
          });
          if (res.status !== 200) throw new Error(`create ${i}: ${res.status} ${await res.text()}`);
          ids.push(((await res.json()) as { id: string }).id);
        }
      }),
    );
    const submitMs = Date.now() - t0;
    // Wait until every job is terminal (read from the table, as the relays store it).
    let stillOpen = 0;
    for (;;) {
      const { rows } = await sql.query(
        `SELECT count(*)::int AS open FROM media_tasks WHERE status IN ('queued','in_progress')`,
      );
      stillOpen = rows[0].open;
      if (stillOpen === 0 || Date.now() - t0 > DURATION_MS * 4 + 300_000) break;
      await new Promise((res) => setTimeout(res, 500));
    }
    const wallMs = Date.now() - t0;
    const db1 = await dbStats();
    const redis1 = await redisCommands();
    const { rows: done } = await sql.query(
      `SELECT status, count(*)::int AS n FROM media_tasks GROUP BY status ORDER BY status`,
    );
    const calls = Object.values(mock.videos.stats().statusCalls).sort((a, b) => a - b);
    const ideal = DURATION_MS / INTERVAL_MS;
    const late = await lateness(fleet.pods.map((p) => p.url));
    const seconds = wallMs / 1000;
    const out = {
      jobs: JOBS,
      pods: PODS,
      durationMs: DURATION_MS,
      pollInterval: INTERVAL,
      submitSeconds: +(submitMs / 1000).toFixed(1),
      wallSeconds: +seconds.toFixed(1),
      finished: Object.fromEntries(done.map((d) => [d.status, d.n])),
      stillOpen,
      pollLatenessSeconds: {
        p50: +quantile(late, 0.5).toFixed(3),
        p99: +quantile(late, 0.99).toFixed(3),
        polls: late.at(-1)?.[1] ?? 0,
      },
      statusCallsPerJob: {
        ideal: +ideal.toFixed(1),
        mean: +(calls.reduce((a, b) => a + b, 0) / calls.length).toFixed(2),
        p50: calls[Math.floor(calls.length / 2)],
        max: calls.at(-1),
      },
      database: {
        commitsPerSecond: Math.round((db1.commits - db0.commits) / seconds),
        rowUpdatesPerSecond: Math.round((db1.updated - db0.updated) / seconds),
        commitsPerJob: +((db1.commits - db0.commits) / JOBS).toFixed(1),
      },
      redis: { commandsPerSecond: Math.round((redis1 - redis0) / seconds) },
    };
    process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
  } finally {
    await sql.end();
    r.disconnect();
    await fleet.close();
    await mock.close();
    await redis.close();
    await pgServer.close();
    await rm(dataDir, { recursive: true, force: true });
  }
}

await main();
