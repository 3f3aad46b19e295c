// Memory of a relay by database: none, embedded PGlite (the default with client keys), PostgreSQL.
// Each relay is a child process started the way the image starts it (its NODE_OPTIONS), with client
// keys on and every request logged (KUBERELAY_LOG_SAMPLE_RATE=1); this process samples the RSS of
// the relay's process tree from /proc every 100 ms (the pod's view: an initdb child counts) and
// generates the load (undici Pool, keep-alive) against `kuberelay mock-upstream`.
//
//   npm run bench:embedded              about 2 minutes; markdown on stdout
//   npm run bench:embedded -- --quick   a short smoke run
//   npm run build && npm run bench:embedded -- --built   relays from dist/ (the image's build)
//
// Phases per variant: start (peak from spawn to /readyz, the key created through the admin API),
// idle (median RSS over the idle window), load (authenticated chat completions, half streamed, paced
// at 200 req/s with up to 32 in flight: peak RSS), then idle again. "embedded, restart" starts a relay on the data
// directory the first embedded relay filled. Method and figures: BENCHMARKS.md.

import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Pool } from 'undici';
import { startPostgres } from '../test/helpers/postgres.ts';
import { freePort, kuberelay, type Proc, REPO } from '../test/helpers/process.ts';
import { metric } from '../test/helpers/prometheus-text.ts';
import { oneChannelConfig } from './bench-config.ts';
import { imageEnv } from './peers/targets.ts';

const { values: args } = parseArgs({ options: { quick: { type: 'boolean' }, built: { type: 'boolean' } } });
const IDLE_SECONDS = args.quick ? 3 : 15;
const LOAD_SECONDS = args.quick ? 3 : 20;
const CONCURRENCY = 32;
/** Requests per second under load: well within what every variant serves on 2 shared vCPUs. */
const RATE = 200;
const UPSTREAM_KEY = 'bench-upstream-key';
// What the image sets (Dockerfile): a bounded young generation.
const IMAGE_NODE_OPTIONS = imageEnv().NODE_OPTIONS ?? '';

interface Sample {
  /** RSS of the process tree (a child's file-backed pages, like the node binary, count twice). */
  rss: number;
  /** Anonymous memory of the tree: what a container's memory limit cannot reclaim. */
  anon: number;
}

/** MB of a process and all its descendants (a pod's memory counts its children). */
function treeMemory(pid: number): Sample {
  const kb = { rss: 0, anon: 0 };
  const visit = (p: number) => {
    try {
      const status = readFileSync(`/proc/${p}/status`, 'utf8');
      kb.rss += Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0);
      kb.anon += Number(/RssAnon:\s+(\d+) kB/.exec(status)?.[1] ?? 0);
      for (const t of readdirSync(`/proc/${p}/task`)) {
        const kids = readFileSync(`/proc/${p}/task/${t}/children`, 'utf8').trim();
        for (const c of kids ? kids.split(' ') : []) visit(Number(c));
      }
    } catch {} // exited meanwhile
  };
  visit(pid);
  return { rss: kb.rss / 1024, anon: kb.anon / 1024 };
}

class Sampler {
  samples: Sample[] = [];
  readonly #timer: NodeJS.Timeout;
  constructor(pid: number) {
    this.#timer = setInterval(() => this.samples.push(treeMemory(pid)), 100);
  }
  /** Samples taken while fn runs. */
  async during(fn: () => Promise<unknown>): Promise<Sample[]> {
    const from = this.samples.length;
    await fn();
    return this.samples.slice(from);
  }
  stop() {
    clearInterval(this.#timer);
  }
}

const max = (xs: Sample[]) => Math.max(...xs.map((x) => x.rss));
const median = (xs: Sample[]) => xs.map((x) => x.rss).sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The relay: from the sources (Node strips the types), or with --built from dist/ as in the image. */
function startRelay(argv: string[], env: Record<string, string>): Proc {
  if (!args.built) return kuberelay(argv, env);
  const child = spawn(process.execPath, [path.join(REPO, 'dist', 'cli', 'index.js'), ...argv], {
    cwd: REPO,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const keep = (b: Buffer) => {
    out = (out + b.toString()).slice(-8000);
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  const exit = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  return {
    child,
    output: () => out,
    exited: () => exit,
    waitFor: () => Promise.reject(new Error('not used')),
  };
}

async function untilReady(p: Proc, url: string) {
  const deadline = Date.now() + 120_000;
  for (;;) {
    if (p.child.exitCode !== null) throw new Error(`relay exited:\n${p.output()}`);
    try {
      if ((await fetch(`${url}/readyz`)).ok) return;
    } catch {}
    if (Date.now() > deadline) throw new Error(`relay not ready:\n${p.output()}`);
    await sleep(50);
  }
}

const body = (stream: boolean) =>
  JSON.stringify({
    model: 'gpt-4o-mini',
    messages: [{ role: 'user', content: 'Say hello in one short sentence.' }],
    max_tokens: 16,
    stream,
  });

async function load(pool: Pool, key: string | undefined, seconds: number) {
  const end = performance.now() + seconds * 1000;
  let ok = 0;
  let failed = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async (_, w) => {
      // Paced: every variant gets the same request rate, so their memory compares.
      const interval = (1000 * CONCURRENCY) / RATE;
      let next = performance.now() + (w * interval) / CONCURRENCY;
      for (let i = 0; performance.now() < end; i++) {
        await sleep(Math.max(0, next - performance.now()));
        next += interval;
        try {
          const res = await pool.request({
            path: '/v1/chat/completions',
            method: 'POST',
            headers: {
              'content-type': 'application/json',
              ...(key ? { authorization: `Bearer ${key}` } : {}),
            },
            body: body((i + w) % 2 === 0),
          });
          await res.body.dump();
          if (res.statusCode === 200) ok++;
          else failed++;
        } catch {
          failed++;
        }
      }
    }),
  );
  return { ok, failed };
}

interface Variant {
  name: string;
  env: Record<string, string>;
  auth: boolean;
}

async function measure(v: Variant, config: string) {
  const port = await freePort();
  const adminPort = await freePort();
  const adminToken = randomBytes(16).toString('hex');
  const url = `http://127.0.0.1:${port}`;
  const relay = startRelay(['relay', '--config', config, '--port', String(port), '--host', '127.0.0.1'], {
    LOG_LEVEL: 'warn',
    NODE_OPTIONS: IMAGE_NODE_OPTIONS,
    KUBERELAY_LOG_SAMPLE_RATE: '1',
    ADMIN_PORT: String(adminPort),
    ADMIN_HOST: '127.0.0.1',
    ADMIN_TOKEN: adminToken,
    ...v.env,
  });
  const sampler = new Sampler(relay.child.pid!);
  try {
    let key: string | undefined;
    const start = await sampler.during(async () => {
      await untilReady(relay, url);
      if (v.auth) {
        const res = await fetch(`http://127.0.0.1:${adminPort}/admin/keys`, {
          method: 'POST',
          headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
          body: JSON.stringify({ name: 'bench' }),
        });
        if (res.status !== 201) throw new Error(`key not created: ${res.status} ${await res.text()}`);
        key = ((await res.json()) as { secret: string }).secret;
      }
    });
    const idle = await sampler.during(() => sleep(IDLE_SECONDS * 1000));
    // Where the idle MB go inside the process: V8's heap (in use / reserved) and external memory.
    const mb = async (name: string) => (await metric(url, name)) / 2 ** 20;
    const heap = [
      await mb('kuberelay_nodejs_heap_size_used_bytes'),
      await mb('kuberelay_nodejs_heap_size_total_bytes'),
      await mb('kuberelay_nodejs_external_memory_bytes'),
    ];
    const pool = new Pool(url, { connections: CONCURRENCY, pipelining: 1 });
    let result = { ok: 0, failed: 0 };
    const loaded = await sampler.during(async () => {
      result = await load(pool, key, LOAD_SECONDS);
    });
    await pool.close();
    const after = await sampler.during(() => sleep(IDLE_SECONDS * 1000));
    const written = v.auth ? await metric(url, 'kuberelay_request_logs_written_total') : 0;
    return {
      startPeak: max(start),
      startPeakAnon: Math.max(...start.map((x) => x.anon)),
      idle: median(idle),
      idleAnon: idle.map((x) => x.anon).sort((a, b) => a - b)[Math.floor(idle.length / 2)]!,
      heap,
      loadPeak: max(loaded),
      afterLoad: median(after),
      reqPerSec: result.ok / LOAD_SECONDS,
      failed: result.failed,
      written,
    };
  } finally {
    sampler.stop();
    relay.child.kill('SIGTERM');
    await relay.exited();
  }
}

async function main() {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kuberelay-bench-mem-'));
  const pg = await startPostgres();
  const mockPort = await freePort();
  const mock = kuberelay(
    ['mock-upstream', '--port', String(mockPort), '--host', '127.0.0.1', '--api-key', UPSTREAM_KEY],
    { LOG_LEVEL: 'warn' },
  );
  try {
    await mock.waitFor(/listening on/, 30_000);
    const config = path.join(dir, 'config.yaml');
    writeFileSync(
      config,
      oneChannelConfig({ baseURL: `http://127.0.0.1:${mockPort}/v1`, apiKey: UPSTREAM_KEY }),
    );
    const dataDir = path.join(dir, 'embedded');
    const databaseUrl = await pg.createDatabase('bench');
    // kuberelay migrate, as the chart's Job runs it before relays start on PostgreSQL.
    const migrate = kuberelay(['migrate'], { DATABASE_URL: databaseUrl });
    if ((await migrate.exited()) !== 0) throw new Error(`migrate failed:\n${migrate.output()}`);
    const variants: Variant[] = [
      { name: 'no database (KUBERELAY_AUTH=none)', env: { KUBERELAY_AUTH: 'none' }, auth: false },
      { name: 'embedded PGlite, first start', env: { KUBERELAY_DATA_DIR: dataDir }, auth: true },
      { name: 'embedded PGlite, restart', env: { KUBERELAY_DATA_DIR: dataDir }, auth: true },
      { name: 'PostgreSQL (DATABASE_URL)', env: { DATABASE_URL: databaseUrl }, auth: true },
    ];
    const rows: string[][] = [];
    for (const v of variants) {
      process.stderr.write(`${v.name}...\n`);
      const r = await measure(v, config);
      rows.push([
        v.name,
        r.startPeak.toFixed(0),
        r.startPeakAnon.toFixed(0),
        r.idle.toFixed(0),
        r.idleAnon.toFixed(0),
        r.heap.map((x) => x.toFixed(1)).join(' / '),
        r.loadPeak.toFixed(0),
        r.afterLoad.toFixed(0),
        r.reqPerSec.toFixed(0),
        String(r.failed),
        v.auth ? String(r.written) : '-',
      ]);
    }
    const head = [
      'relay',
      'start peak MB',
      'start peak anon MB',
      'idle MB',
      'idle anon MB',
      'idle heap used / total, external MB',
      'load peak MB',
      'idle after load MB',
      `req/s (paced at ${RATE})`,
      'failed',
      'log rows written',
    ];
    const md = [head, head.map(() => '---'), ...rows].map((r) => `| ${r.join(' | ')} |`).join('\n');
    process.stdout.write(
      `\n${md}\n\nRSS of the relay's process tree. ${os.cpus().length} CPUs (${os.cpus()[0]?.model}), Node ${process.version}, relays from ${args.built ? 'dist/ (npm run build)' : 'the .ts sources'}, NODE_OPTIONS=${IMAGE_NODE_OPTIONS}, idle ${IDLE_SECONDS} s, load ${LOAD_SECONDS} s paced at ${RATE} req/s, up to ${CONCURRENCY} in flight (half streamed), every request logged.\n`,
    );
  } finally {
    mock.child.kill('SIGTERM');
    await mock.exited();
    await pg.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
