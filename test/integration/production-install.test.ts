import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import {
  chmod,
  chown,
  cp,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  rm,
  stat,
  symlink,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, matchesGlob, relative } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type MockUpstream, startMockUpstream } from '../../mock-upstream/server.ts';
import { CHANNEL_KEY, configYaml } from '../helpers/harness.ts';
import { freePort, REPO } from '../helpers/process.ts';

/**
 * The container image without a container engine: this test carries out the Dockerfile's steps —
 * the same COPYs (honouring .dockerignore), the same `npm ci`/`npm run build` commands, the same
 * ENV, USER, ENTRYPOINT and CMD — into temporary directories, then runs the result the way the
 * image runs: as the image's non-root user (uid 10001, via setpriv when the test runs as root),
 * on a read-only tree, under tini, with the data directory as the only writable place. It serves
 * a request with a client key created through `kuberelay keys create` (what NOTES.txt tells users
 * to `kubectl exec`), and shuts down cleanly on SIGTERM.
 *
 * Steps a test cannot take (apt-get, creating a user, symlinking into /usr/local/bin) are matched
 * by the table in runStep(); a Dockerfile change it does not know fails the test until the test
 * learns it.
 */

const execFileAsync = promisify(execFile);
const NODE_BIN = dirname(process.execPath);

interface Instruction {
  op: string;
  args: string;
}
interface Stage {
  name: string;
  dir: string;
  instructions: Instruction[];
}

function parseDockerfile(text: string): { stages: Stage[]; args: Record<string, string> } {
  const lines = text.replace(/\\\n/g, ' ').split('\n');
  const stages: Stage[] = [];
  const args: Record<string, string> = {};
  for (const raw of lines) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const m = line.match(/^(\w+)\s+(.*)$/);
    if (!m) throw new Error(`Dockerfile: cannot parse "${line}"`);
    const op = m[1]!.toUpperCase();
    const rest = m[2]!.replace(/\s+/g, ' ');
    if (op === 'ARG' && stages.length === 0) {
      const [k, v] = rest.split('=');
      args[k!] = v ?? '';
    } else if (op === 'FROM') {
      const f = rest.match(/^(\S+)(?: AS (\S+))?$/i);
      stages.push({ name: f?.[2] ?? String(stages.length), dir: '', instructions: [] });
    } else {
      stages.at(-1)!.instructions.push({ op, args: rest });
    }
  }
  return { stages, args };
}

/** .dockerignore as Docker reads it: a path is left out when it or a parent matches a pattern. */
function dockerignore(text: string): (rel: string) => boolean {
  const patterns = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  return (rel) => {
    const parts = rel.split('/');
    for (let i = 1; i <= parts.length; i++) {
      const p = parts.slice(0, i).join('/');
      if (patterns.some((pat) => matchesGlob(p, pat))) return true;
    }
    return false;
  };
}

function sh(cmd: string, cwd: string, env: NodeJS.ProcessEnv, timeoutMs = 600_000) {
  return execFileAsync('sh', ['-c', cmd], { cwd, env, timeout: timeoutMs, maxBuffer: 64 << 20 });
}

describe('production install (the Dockerfile carried out without a container engine)', () => {
  let root: string;
  let app: string;
  let data: string;
  let bin: string;
  let user: { uid: number; gid: number } | undefined;
  const imageEnv: Record<string, string> = {};
  let entrypoint: string[] = [];
  let cmd: string[] = [];
  let mock: MockUpstream;
  let relay: ChildProcess | undefined;
  let relayLog = '';

  const npmEnv = (): NodeJS.ProcessEnv => ({
    ...process.env,
    PATH: `${NODE_BIN}:${process.env.PATH}`,
    // Same commands, but from the local npm cache when it has the packages.
    npm_config_prefer_offline: 'true',
    npm_config_update_notifier: 'false',
  });
  /** How the image's processes run: its ENV, its user, `kuberelay` and node on PATH. */
  const imageProcess = (argv: string[], env: Record<string, string>) => {
    const fullEnv = {
      PATH: `${bin}:${NODE_BIN}:/usr/local/bin:/usr/bin:/bin`,
      HOME: '/nonexistent',
      ...imageEnv,
      ...env,
    };
    const asUser = user
      ? [
          'setpriv',
          `--reuid=${user.uid}`,
          `--regid=${user.gid}`,
          '--clear-groups',
          '--pdeathsig',
          'KILL',
          '--',
        ]
      : ['setpriv', '--pdeathsig', 'KILL', '--'];
    return spawn(asUser[0]!, [...asUser.slice(1), ...argv], {
      cwd: app,
      env: fullEnv,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  };

  async function runStep(stage: Stage, step: string) {
    // Build stages: npm, exactly as written.
    if (/^npm /.test(step)) {
      await sh(step, stage.dir, npmEnv());
      return;
    }
    // The runtime stage's system steps, done the equivalent way on this machine.
    if (/^apt-get (update|install .*\btini\b)|^rm -rf \/var\/lib\/apt\/lists/.test(step)) {
      expect(
        existsSync('/usr/bin/tini'),
        'tini (Debian package) must be installed: .ci/run installs it',
      ).toBe(true);
      return;
    }
    if (step === 'chmod 0755 dist/cli/index.js') {
      await chmod(join(stage.dir, 'dist/cli/index.js'), 0o755);
      return;
    }
    if (step === 'ln -s /app/dist/cli/index.js /usr/local/bin/kuberelay') {
      await symlink(join(stage.dir, 'dist/cli/index.js'), join(bin, 'kuberelay'));
      return;
    }
    if (/^(groupadd|useradd) .*\b10001\b.* kuberelay$/.test(step)) return; // setpriv runs as uid 10001
    if (step === 'mkdir -p /data' || step === 'chown kuberelay:kuberelay /data') return; // `data` below
    throw new Error(
      `production-install.test.ts does not know the Dockerfile step "${step}" of stage ${stage.name}`,
    );
  }

  async function copy(stage: Stage, stages: Stage[], argsText: string, ignored: (rel: string) => boolean) {
    const parts = argsText.split(' ');
    const from = parts[0]!.startsWith('--from=') ? parts.shift()!.slice('--from='.length) : undefined;
    const dest = parts.pop()!;
    for (const src of parts) {
      if (from) {
        const other = stages.find((s) => s.name === from)!;
        expect(src.startsWith('/app/'), src).toBe(true);
        await cp(join(other.dir, src.slice('/app/'.length)), join(stage.dir, dest), {
          recursive: true,
          verbatimSymlinks: true,
        });
      } else {
        const target = dest.endsWith('/') ? join(stage.dir, dest, src) : join(stage.dir, dest);
        await cp(join(REPO, src), target, {
          recursive: true,
          filter: (path) => !ignored(relative(REPO, path)) || relative(REPO, path) === src,
        });
      }
    }
  }

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'kuberelay-prod-'));
    await chmod(root, 0o755);
    bin = join(root, 'bin');
    data = join(root, 'data');
    await mkdir(bin);
    await mkdir(data, { mode: 0o700 });
    const { stages } = parseDockerfile(await readFile(join(REPO, 'Dockerfile'), 'utf8'));
    const ignored = dockerignore(await readFile(join(REPO, '.dockerignore'), 'utf8'));
    expect(stages.map((s) => s.name)).toEqual(['build', 'deps', '2']);

    for (const stage of stages) {
      stage.dir = join(root, `stage-${stage.name}`);
      await mkdir(stage.dir);
      for (const { op, args } of stage.instructions) {
        if (op === 'WORKDIR') expect(args).toBe('/app');
        else if (op === 'COPY') await copy(stage, stages, args, ignored);
        else if (op === 'RUN') for (const step of args.split(' && ')) await runStep(stage, step.trim());
        else if (op === 'ENV') {
          for (const [, k, v] of args.matchAll(/(\w+)=(\S+)/g)) imageEnv[k!] = v === '/data' ? data : v!;
        } else if (op === 'USER') {
          const [uid, gid] = args.split(':').map(Number);
          expect(uid).not.toBe(0);
          if (process.getuid?.() === 0) user = { uid: uid!, gid: gid! };
        } else if (op === 'ENTRYPOINT') entrypoint = JSON.parse(args);
        else if (op === 'CMD') cmd = JSON.parse(args);
        else if (op !== 'EXPOSE' && op !== 'VOLUME')
          throw new Error(`unhandled Dockerfile instruction ${op}`);
      }
    }
    app = stages.at(-1)!.dir;
    // The image's tree belongs to root and nobody may write it; only the data volume is the user's.
    await execFileAsync('chmod', ['-R', 'a-w', app]);
    if (user) await chown(data, user.uid, user.gid);
    mock = await startMockUpstream({ port: 0, name: 'upstream', apiKey: CHANNEL_KEY });
  }, 900_000);

  afterAll(async () => {
    relay?.kill('SIGKILL');
    await mock?.close();
    if (root) {
      await execFileAsync('chmod', ['-R', 'u+w', root]).catch(() => {});
      await rm(root, { recursive: true, force: true });
    }
  });

  it('installs only production dependencies and the built CLI', async () => {
    expect(entrypoint).toEqual(['/usr/bin/tini', '--', 'node', 'dist/cli/index.js']);
    expect(cmd).toEqual(['relay']);
    expect(imageEnv.NODE_ENV).toBe('production');
    const modules = await readdir(join(app, 'node_modules'));
    for (const dep of ['fastify', 'pino', 'prom-client', '@kubernetes', '@prisma', 'pg', '@electric-sql']) {
      expect(modules, dep).toContain(dep);
    }
    for (const dev of ['vitest', '@biomejs', 'openai', 'node']) expect(modules, dev).not.toContain(dev);
    // No sources, tests or repo files in the image, only what runs.
    expect((await readdir(app)).sort()).toEqual([
      'crds',
      'dist',
      'examples',
      'node_modules',
      'package.json',
      'prisma',
    ]);
    expect((await stat(join(app, 'dist/cli/index.js'))).mode & 0o222).toBe(0);
  });

  it('serves a request as a non-root user from a read-only tree, with a key made by `kuberelay keys create`', async () => {
    const [publicPort, adminPort] = [await freePort(), await freePort()];
    const config = join(root, 'config.yaml');
    await writeFile(config, configYaml([{ name: 'prod', baseURL: `http://127.0.0.1:${mock.port}/v1` }]), {
      mode: 0o644,
    });
    // What the chart sets, minus the cluster: keys auth (the default), an admin token, embedded PGlite.
    const env = {
      PORT: String(publicPort),
      HOST: '127.0.0.1',
      ADMIN_PORT: String(adminPort),
      ADMIN_HOST: '127.0.0.1',
      ADMIN_TOKEN: 'prod-install-admin-token',
      LOG_LEVEL: 'info',
    };
    // `docker run IMAGE relay --config FILE`: the arguments replace CMD.
    relay = imageProcess([...entrypoint, ...cmd, '--config', config], env);
    relay.stdout!.on('data', (d: Buffer) => (relayLog += d.toString()));
    relay.stderr!.on('data', (d: Buffer) => (relayLog += d.toString()));
    const exited = once(relay, 'exit');
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`relay did not start:\n${relayLog}`)), 60_000);
      const check = () => {
        if (relayLog.includes('relay listening')) {
          clearTimeout(timer);
          resolve();
        }
      };
      relay!.stdout!.on('data', check);
      relay!.once('exit', () => {
        clearTimeout(timer);
        reject(new Error(`relay exited:\n${relayLog}`));
      });
    });
    const base = `http://127.0.0.1:${publicPort}`;
    expect(await (await fetch(`${base}/readyz`)).json()).toEqual({ status: 'ok' });

    // Like `kubectl exec deploy/…-relay -- kuberelay keys create`: the CLI finds the running relay
    // through the data directory and goes through its admin API.
    const keys = imageProcess(['kuberelay', 'keys', 'create', '--name', 'prod-install', '--json'], env);
    let keysOut = '';
    let keysErr = '';
    keys.stdout!.on('data', (d: Buffer) => (keysOut += d.toString()));
    keys.stderr!.on('data', (d: Buffer) => (keysErr += d.toString()));
    const [keysCode] = await once(keys, 'exit');
    expect(keysCode, keysErr).toBe(0);
    const { secret } = JSON.parse(keysOut) as { secret: string };
    expect(secret.length).toBeGreaterThan(20);

    const body = JSON.stringify({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'from the image' }],
    });
    const denied = await fetch(`${base}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
    });
    expect(denied.status).toBe(401);
    await denied.arrayBuffer();
    const res = await fetch(`${base}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${secret}` },
      body,
    });
    expect(res.status, relayLog).toBe(200);
    expect(res.headers.get('x-kuberelay-channel')).toBe('default/prod');
    const completion = (await res.json()) as { choices: { message: { content: string } }[] };
    expect(completion.choices[0]!.message.content.length).toBeGreaterThan(0);

    // The embedded database lives in the data directory, nowhere else.
    expect(await readdir(data)).toContain('pgdata');
    if (user) expect((await stat(join(data, 'pgdata'))).uid).toBe(user.uid);

    // tini hands SIGTERM to node, which drains and exits 0.
    relay.kill('SIGTERM');
    const [code, signal] = await exited;
    expect({ code, signal }, relayLog).toEqual({ code: 0, signal: null });
    expect(relayLog).toMatch(/shutting down/);
    expect(relayLog).not.toMatch(/EACCES|EROFS|permission denied/i);
  }, 120_000);
});
