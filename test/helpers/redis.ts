import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { onFreePorts } from './process.ts';

/**
 * A private redis-server for one test file: a free port, a temp dir, no persistence. It can be
 * stopped, killed, paused (SIGSTOP: a Redis that accepts connections but never answers) and
 * started again on the same port, for the outage tests.
 */
export interface TestRedis {
  url: string;
  port: number;
  /** SIGTERM and wait for exit (clients see the connection close). */
  stop(): Promise<void>;
  /** SIGKILL and wait for exit. */
  kill(): Promise<void>;
  /** Starts it again on the same port (empty: no persistence) and waits until it answers. */
  start(): Promise<void>;
  /** SIGSTOP / SIGCONT: connected clients get no answers until resumed. */
  pause(): void;
  resume(): void;
  /** Stops it for good and removes its directory. */
  close(): Promise<void>;
}

export async function startRedis(): Promise<TestRedis> {
  const dir = await mkdtemp(join(tmpdir(), 'kuberelay-redis-'));
  let port = 0; // chosen below; start() restarts on the same one
  let proc: ChildProcess | undefined;
  let log = '';

  const start = async () => {
    log = '';
    const p = spawn(
      'redis-server',
      [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--save',
        '',
        '--appendonly',
        'no',
        '--daemonize',
        'no',
        '--dir',
        dir,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    p.on('error', (err) => {
      log += `\n${err.message}`;
    });
    p.stdout!.on('data', (b: Buffer) => {
      log = (log + b.toString()).slice(-4000);
    });
    p.stderr!.on('data', (b: Buffer) => {
      log = (log + b.toString()).slice(-4000);
    });
    proc = p;
    const deadline = Date.now() + 10_000;
    while (!(await answers(port))) {
      if (p.exitCode !== null || Date.now() > deadline) {
        p.kill('SIGKILL'); // a server that did not answer in time is not left behind
        throw new Error(`redis-server did not start on port ${port} (is it installed?):\n${log}`);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  };

  const signal = async (sig: NodeJS.Signals) => {
    const p = proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const exited = new Promise((r) => p.once('exit', r));
    p.kill('SIGCONT'); // a paused server cannot act on SIGTERM
    p.kill(sig);
    await exited;
  };

  await onFreePorts(1, ([p]) => {
    port = p!;
    return start();
  });
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    stop: () => signal('SIGTERM'),
    kill: () => signal('SIGKILL'),
    start,
    pause: () => proc?.kill('SIGSTOP'),
    resume: () => proc?.kill('SIGCONT'),
    async close() {
      await signal('SIGKILL');
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Some other deployment (Cluster, Sentinel) reachable through one REDIS_URL. */
export interface TestRedisDeployment {
  url: string;
  close(): Promise<void>;
}

/** A Redis Cluster of `n` masters (no replicas) on free ports: `redis+cluster://...`. */
export async function startRedisCluster(n = 3): Promise<TestRedisDeployment> {
  const dir = await mkdtemp(join(tmpdir(), 'kuberelay-redis-cluster-'));
  // Each node also needs a cluster bus port (by default port + 10000, which may not be free).
  const nodes = await Promise.all(
    Array.from({ length: n }, () =>
      onFreePorts(2, async ([port, bus]) => {
        const d = join(dir, String(port));
        await mkdir(d, { recursive: true });
        const proc = await launch(port!, [
          '--cluster-enabled',
          'yes',
          '--cluster-config-file',
          'nodes.conf',
          '--cluster-port',
          String(bus),
          '--dir',
          d,
        ]);
        return { port: port!, proc };
      }),
    ),
  );
  const ports = nodes.map((x) => x.port);
  const procs = nodes.map((x) => x.proc);
  const close = async () => {
    await Promise.all(procs.map((p) => p.kill()));
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await run('redis-cli', ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-yes']);
    const deadline = Date.now() + 15_000;
    for (const port of ports) {
      while (
        !(await run('redis-cli', ['-p', String(port), 'cluster', 'info'])).includes('cluster_state:ok')
      ) {
        if (Date.now() > deadline) throw new Error('the Redis Cluster did not converge');
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  } catch (err) {
    await close();
    throw err;
  }
  return { url: `redis+cluster://${ports.map((p) => `127.0.0.1:${p}`).join(',')}`, close };
}

/** A master watched by one Sentinel: `redis+sentinel://127.0.0.1:<sentinel>/mymaster`. */
export async function startRedisSentinel(): Promise<TestRedisDeployment> {
  const dir = await mkdtemp(join(tmpdir(), 'kuberelay-redis-sentinel-'));
  const { port: masterPort, proc: master } = await onFreePorts(1, async ([port]) => ({
    port: port!,
    proc: await launch(port!, ['--dir', dir]),
  }));
  const conf = join(dir, 'sentinel.conf');
  const { port: sentinelPort, proc: sentinel } = await onFreePorts(1, async ([port]) => {
    await writeFile(
      conf,
      `port ${port}\nbind 127.0.0.1\ndir ${dir}\nsentinel monitor mymaster 127.0.0.1 ${masterPort} 1\n`,
    );
    return { port: port!, proc: await launch(port!, [], [conf, '--sentinel']) };
  });
  return {
    url: `redis+sentinel://127.0.0.1:${sentinelPort}/mymaster`,
    async close() {
      await Promise.all([sentinel.kill(), master.kill()]);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Starts a redis-server and waits until it answers; `head` goes before the options (a config file). */
export async function launch(
  port: number,
  args: string[],
  head: string[] = [],
): Promise<{ kill(): Promise<void> }> {
  let log = '';
  const p = spawn(
    'redis-server',
    [...head, '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', ...args],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  p.on('error', (err) => {
    log += `\n${err.message}`;
  });
  const keep = (b: Buffer) => {
    log = (log + b.toString()).slice(-4000);
  };
  p.stdout!.on('data', keep);
  p.stderr!.on('data', keep);
  const deadline = Date.now() + 10_000;
  while (!(await answers(port))) {
    if (p.exitCode !== null || Date.now() > deadline) {
      p.kill('SIGKILL');
      throw new Error(`redis-server did not start on port ${port} (is it installed?):\n${log}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  return {
    async kill() {
      if (p.exitCode !== null || p.signalCode !== null) return;
      const exited = new Promise((r) => p.once('exit', r));
      p.kill('SIGKILL');
      await exited;
    },
  };
}

function run(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: 15_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} ${args.join(' ')}: ${err.message}\n${stdout}${stderr}`));
      else resolve(stdout);
    });
  });
}

/** A fresh key prefix, so tests sharing one server never see each other's keys. */
export function testPrefix(name: string): string {
  return `t:${name}:${Math.random().toString(36).slice(2, 8)}:`;
}

function answers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    const done = (ok: boolean) => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(500, () => done(false));
    s.once('error', () => done(false));
    s.once('close', () => done(false)); // closed without an answer: no timeout fires after close
    s.once('connect', () => s.write('PING\r\n'));
    s.once('data', (b) => done(b.toString().startsWith('+PONG')));
  });
}
