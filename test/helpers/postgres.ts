import { type ChildProcess, execFile, execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { appendFile, chown, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import pg from 'pg';
import { onFreePorts } from './process.ts';

/**
 * A throwaway PostgreSQL server for tests: its own cluster in a temp dir, on a free port, tuned
 * for speed (no fsync). `stop()`/`start()` take it down and bring it back on the same port (the
 * "database down mid-load" tests). initdb refuses to run as root, so as root the server runs as
 * the `postgres` system user (`.ci/run` installs the postgresql package, which creates it).
 */
export interface Postgres {
  /** Connection URL of the default database. */
  url: string;
  port: number;
  /** A fresh, empty database on this server; returns its URL. */
  createDatabase(name: string): Promise<string>;
  /** Fast shutdown: open connections are cut, new ones refused. */
  stop(): Promise<void>;
  start(): Promise<void>;
  /**
   * SIGSTOP the server and every backend: connections stay open and new ones are accepted by the
   * kernel, but nothing answers (a stalled database) until resume().
   */
  pause(): void;
  resume(): void;
  close(): Promise<void>;
}

const USER = 'kuberelay';

export interface PostgresOptions {
  /** Also listen here (e.g. the node IP pods reach), and trust clients from `allowFrom` (CIDR). */
  listen?: { address: string; allowFrom: string };
}

export async function startPostgres(opts: PostgresOptions = {}): Promise<Postgres> {
  const bin = findBinDir();
  const dir = await mkdtemp(join(tmpdir(), 'kuberelay-pg-'));
  const data = join(dir, 'data');
  const ids = runAs();
  if (ids) await chown(dir, ids.uid, ids.gid);
  // Asynchronously: a blocked event loop (initdb takes seconds on a busy machine) made servers
  // started beside it in Promise.all miss their own start deadlines.
  await new Promise<void>((resolve, reject) =>
    execFile(
      join(bin, 'initdb'),
      ['-D', data, '-U', USER, '-A', 'trust', '-E', 'UTF8', '--locale=C', '--no-sync'],
      { ...(ids ?? {}), env: { ...process.env, LANG: 'C' } },
      (err, _out, stderr) =>
        err ? reject(new Error(`initdb failed: ${err.message}\n${stderr}`)) : resolve(),
    ),
  );
  if (opts.listen) {
    await appendFile(join(data, 'pg_hba.conf'), `host all all ${opts.listen.allowFrom} trust\n`);
  }
  const listenAddresses = ['127.0.0.1', ...(opts.listen ? [opts.listen.address] : [])].join(',');
  let port = 0; // chosen at the first start; start() restarts on the same one
  let url = '';
  let child: ChildProcess | undefined;
  let log = '';

  const start = async () => {
    if (child) return;
    const p = spawn(
      join(bin, 'postgres'),
      [
        '-D',
        data,
        '-p',
        String(port),
        '-k',
        dir,
        '-c',
        `listen_addresses=${listenAddresses}`,
        '-c',
        'fsync=off',
        '-c',
        'synchronous_commit=off',
        '-c',
        'full_page_writes=off',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'], ...(ids ?? {}), env: { ...process.env, LANG: 'C' } },
    );
    p.stdout!.on('data', (d: Buffer) => (log += d.toString()));
    p.stderr!.on('data', (d: Buffer) => (log += d.toString()));
    child = p;
    p.once('exit', () => {
      if (child === p) child = undefined;
    });
    await waitReady(url, p, () => log);
  };

  let paused: number[] = [];
  const pause = () => {
    if (!child?.pid || paused.length > 0) return;
    paused = [child.pid, ...descendants(child.pid)];
    for (const pid of paused) process.kill(pid, 'SIGSTOP');
  };
  const resume = () => {
    for (const pid of paused.splice(0)) {
      try {
        process.kill(pid, 'SIGCONT');
      } catch {
        // gone meanwhile
      }
    }
  };

  const stop = async () => {
    resume();
    const p = child;
    if (!p) return;
    const exited = once(p, 'exit');
    p.kill('SIGINT'); // fast shutdown
    await exited;
  };

  // A crashed test run must not leave a server behind.
  const onExit = () => child?.kill('SIGQUIT');
  process.once('exit', onExit);

  await onFreePorts(1, ([p]) => {
    port = p!;
    url = `postgresql://${USER}@127.0.0.1:${port}/postgres`;
    return start();
  });
  return {
    url,
    port,
    async createDatabase(name: string) {
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      try {
        await c.query(`CREATE DATABASE "${name}"`);
      } finally {
        await c.end();
      }
      return `postgresql://${USER}@127.0.0.1:${port}/${name}`;
    },
    stop,
    start,
    pause,
    resume,
    async close() {
      await stop();
      process.off('exit', onExit);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

async function waitReady(url: string, p: ChildProcess, log: () => string) {
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (p.exitCode !== null) throw new Error(`postgres exited (${p.exitCode}):\n${log()}`);
    const c = new pg.Client({ connectionString: url });
    try {
      await c.connect();
      await c.end();
      return;
    } catch (err) {
      await c.end().catch(() => {});
      if (Date.now() > deadline) throw new Error(`postgres not ready: ${(err as Error).message}\n${log()}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

/** PG_BIN, then initdb on PATH, then the newest /usr/lib/postgresql/<version>/bin. */
function findBinDir(): string {
  const candidates = [
    process.env.PG_BIN,
    ...(process.env.PATH ?? '').split(delimiter),
    ...listVersions('/usr/lib/postgresql').map((v) => `/usr/lib/postgresql/${v}/bin`),
  ];
  for (const d of candidates) {
    if (d && existsSync(join(d, 'initdb')) && existsSync(join(d, 'postgres'))) return d;
  }
  throw new Error(
    'PostgreSQL server binaries (initdb, postgres) not found: install the postgresql package (.ci/run does) or set PG_BIN',
  );
}

function listVersions(root: string): string[] {
  if (!existsSync(root)) return [];
  return readdirSync(root)
    .filter((v) => /^\d+$/.test(v))
    .sort((a, b) => Number(b) - Number(a));
}

/** uid/gid of the `postgres` user when running as root (initdb refuses root), else undefined. */
function runAs(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  try {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
    return { uid, gid };
  } catch {
    throw new Error('running as root needs a `postgres` system user to run the test server as');
  }
}

/** Processes below `pid` (PostgreSQL forks a backend per connection, plus its helpers). */
function descendants(pid: number): number[] {
  const parent = new Map<number, number>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      // "pid (comm) state ppid ...": comm may hold spaces, so read after the last ')'.
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      parent.set(Number(name), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {
      // exited meanwhile
    }
  }
  const out: number[] = [];
  const walk = (p: number) => {
    for (const [child, pp] of parent) {
      if (pp === p) {
        out.push(child);
        walk(child);
      }
    }
  };
  walk(pid);
  return out;
}
