import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { basename, delimiter, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, REPO } from '../helpers/process.ts';
import { shBlocks } from '../helpers/readme.ts';

/**
 * A newcomer's first hour, as a test: a fresh clone of the committed HEAD, then the README's
 * commands from its own code blocks, as written — install, quickstart, the `kuberelay` command,
 * running the relay, the keys commands — checking what they print and serve. What differs from a
 * person at a terminal, each through something the README documents or a fresh machine has:
 * - a fresh HOME (so `~/.local/bin` and the per-user data directory start empty) and the
 *   machine's PATH without this test run's node_modules/.bin, i.e. the system's `node`;
 * - npm reads the machine's cache (npm_config_cache, npm_config_prefer_offline): no network;
 * - ports: PORT and ADMIN_PORT=0 (documented env) for the relay; the example's fixed upstream
 *   ports 9101-9103 become free ones, in the commands and in the clone's examples/quickstart.yaml;
 * - placeholders the README asks the reader to fill (`sk-kr-...`, `key_...`) get the values the
 *   commands before printed.
 * `npm test` itself is not run here (it runs this test); test-setup.test.ts covers its setup.
 */

const README_PORTS = [9101, 9102, 9103];

interface Sh {
  child: ChildProcess;
  /** stdout and stderr, as a terminal shows them. */
  output(): string;
  stdout(): string;
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  exited: Promise<number | null>;
}

describe('README, run as written on a fresh clone', () => {
  let tmp: string;
  let clone: string;
  let env: Record<string, string>;
  const ports = new Map<number, number>();
  const running: Sh[] = [];
  let readme: string;

  /** Runs one README command in `sh`, in its own process group (npx and npm start fork). */
  function sh(cmd: string, cwd = clone): Sh {
    let line = cmd;
    for (const [from, to] of ports) line = line.replaceAll(`--port ${from}`, `--port ${to}`);
    const child = spawn('sh', ['-c', line], { cwd, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let stdout = '';
    const waiters = new Set<() => void>();
    const onData = (d: Buffer) => {
      out += d.toString();
      for (const w of waiters) w();
    };
    child.stdout!.on('data', (d: Buffer) => {
      stdout += d.toString();
      onData(d);
    });
    child.stderr!.on('data', onData);
    const exited = once(child, 'exit').then(([code]) => code as number | null);
    return {
      child,
      output: () => out,
      stdout: () => stdout,
      exited,
      waitFor(pattern, timeoutMs = 60_000) {
        return new Promise((resolve, reject) => {
          const timer = setTimeout(
            () => done(new Error(`timed out waiting for ${pattern} from \`${line}\`:\n${out}`)),
            timeoutMs,
          );
          const done = (err?: Error, m?: RegExpMatchArray) => {
            waiters.delete(check);
            clearTimeout(timer);
            if (err) reject(err);
            else resolve(m!);
          };
          const check = () => {
            const m = out.match(pattern);
            if (m) done(undefined, m);
          };
          waiters.add(check);
          void exited.then(
            () => waiters.has(check) && done(new Error(`\`${line}\` exited before ${pattern}:\n${out}`)),
          );
          check();
        });
      },
    };
  }

  /** A command that ends: its exit code and everything it printed. */
  async function run(cmd: string, cwd = clone, timeoutMs = 120_000) {
    const p = sh(cmd, cwd);
    const timer = setTimeout(() => process.kill(-p.child.pid!, 'SIGKILL'), timeoutMs);
    const code = await p.exited;
    clearTimeout(timer);
    return { code, out: p.output(), stdout: p.stdout() };
  }

  /** A server: kept running until stop(). */
  function start(cmd: string, cwd = clone): Sh {
    const p = sh(cmd.replace(/\s*&$/, ''), cwd);
    running.push(p);
    return p;
  }

  /** Ends the command's whole process group (sh, npm, node), within 20 s. */
  async function stop(p: Sh) {
    const group = -p.child.pid!;
    const alive = () => {
      try {
        process.kill(group, 0);
        return true;
      } catch {
        return false;
      }
    };
    if (alive()) process.kill(group, 'SIGTERM');
    for (let i = 0; i < 200 && alive(); i++) await new Promise((r) => setTimeout(r, 100));
    if (alive()) process.kill(group, 'SIGKILL');
    await p.exited;
  }

  async function chat(url: string, key?: string) {
    const res = await fetch(`${url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(key ? { authorization: `Bearer ${key}` } : {}) },
      body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Hello' }] }),
    });
    return { status: res.status, body: await res.text() };
  }

  beforeAll(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'kuberelay-readme-'));
    clone = join(tmp, 'kuberelay');
    execFileSync('git', ['clone', '-q', REPO, clone]);
    readme = await readFile(join(clone, 'README.md'), 'utf8');
    for (const p of README_PORTS) ports.set(p, await freePort());
    const example = join(clone, 'examples/quickstart.yaml');
    let yaml = await readFile(example, 'utf8');
    for (const [from, to] of ports) yaml = yaml.replaceAll(`127.0.0.1:${from}/`, `127.0.0.1:${to}/`);
    await writeFile(example, yaml);
    const home = join(tmp, 'home');
    await mkdir(home);
    const path = (process.env.PATH ?? '').split(delimiter).filter((d) => !d.includes('node_modules'));
    env = {
      HOME: home,
      PATH: [join(home, '.local/bin'), ...path].join(delimiter),
      LANG: process.env.LANG ?? 'C.UTF-8',
      TMPDIR: tmpdir(),
      npm_config_cache: process.env.npm_config_cache || join(homedir(), '.npm'),
      npm_config_prefer_offline: 'true',
      npm_config_audit: 'false',
      npm_config_fund: 'false',
      npm_config_update_notifier: 'false',
      PORT: String(await freePort()),
      ADMIN_PORT: '0',
    };
  }, 60_000);

  afterAll(async () => {
    await Promise.all(running.map(stop));
    if (!tmp || !env) return;
    await rm(tmp, { recursive: true, force: true });
    // `npx` linked the clone into npm's npx cache (one small directory per package path).
    const npx = join(env.npm_config_cache!, '_npx');
    for (const d of await readdir(npx).catch(() => [])) {
      const manifest = await readFile(join(npx, d, 'package.json'), 'utf8').catch(() => '');
      if (manifest.includes(`${basename(tmp)}/kuberelay"`))
        await rm(join(npx, d), { recursive: true, force: true });
    }
  }, 60_000);

  it('Quickstart: npm install, npm start, then the curl gets a completion', async () => {
    const [install, curl] = shBlocks(readme, 'Quickstart (no Kubernetes, Redis or PostgreSQL needed)');
    expect(install).toEqual(['npm install', 'npm start']);
    const installed = await run(install![0]!, clone, 480_000);
    expect(installed.code, installed.out).toBe(0);
    expect(installed.out).toContain('Generated Prisma Client');

    const demo = start(install![1]!);
    try {
      const [, url] = await demo.waitFor(/kuberelay demo: relay on (http:\S+)/);
      expect(url).toBe(`http://127.0.0.1:${env.PORT}`);
      expect(curl).toHaveLength(1);
      const answer = await run(curl![0]!.replace(':8080/', `:${env.PORT}/`));
      expect(answer.code, answer.out).toBe(0);
      expect(JSON.parse(answer.stdout).choices[0].message.role).toBe('assistant');
    } finally {
      await stop(demo);
    }
  }, 600_000);

  it('The kuberelay command: npx, then plain `kuberelay` through the symlink on the system node', async () => {
    const [block] = shBlocks(readme, 'The `kuberelay` command');
    expect(block).toHaveLength(2);
    const help = await run(block![0]!);
    expect(help.code, help.out).toBe(0);
    expect(help.out).toContain('Usage: kuberelay');
    const link = await run(block![1]!);
    expect(link.code, link.out).toBe(0);
    // From any directory, whatever `node` the PATH has (the system's, here).
    const plain = await run('kuberelay keys --help', tmp);
    expect(plain.code, plain.out).toBe(0);
    expect(plain.out).toContain('Usage: kuberelay keys');
  }, 120_000);

  it('Running the relay: the mock upstreams, a key, the relay, then the curl with that key', async () => {
    const [setup, curl] = shBlocks(readme, 'Running the relay');
    const mocks = setup!.filter((c) => c.includes('mock-upstream'));
    expect(mocks).toHaveLength(3);
    for (const m of mocks) await start(m).waitFor(/mock-upstream .* listening on/);

    const create = setup!.find((c) => c.includes('keys create'))!;
    const created = await run(create);
    expect(created.code, created.out).toBe(0);
    // A first database, in the per-user default: the CLI says so.
    expect(created.out).toContain(`creating a new embedded database in ${env.HOME}/.local/share/kuberelay`);
    const secret = created.out.match(/sk-kr-[0-9A-Za-z]{43}/)![0];

    const relay = start(setup!.find((c) => c.includes('relay --config'))!);
    await relay.waitFor(/relay listening/);
    const url = `http://127.0.0.1:${env.PORT}`;
    const answer = await run(curl![0]!.replace(':8080/', `:${env.PORT}/`).replace('sk-kr-...', secret));
    expect(answer.code, answer.out).toBe(0);
    expect(JSON.parse(answer.stdout).choices[0].message.role).toBe('assistant');
    expect((await chat(url)).status).toBe(401);

    // From another directory the CLI finds the same database, through the running relay.
    const elsewhere = await run('kuberelay keys create --name elsewhere', tmp);
    expect(elsewhere.code, elsewhere.out).toBe(0);
    expect(elsewhere.out).toContain('going through its admin API');
    expect(elsewhere.out).not.toContain('creating a new embedded database');
    const second = elsewhere.out.match(/sk-kr-[0-9A-Za-z]{43}/)![0];
    expect((await chat(url, second)).status).toBe(200);
  }, 300_000);

  it('Keys and usage: create, list, rotate, revoke, migrate; an empty listing says why', async () => {
    const [block] = shBlocks(readme, 'Keys and usage');
    const byVerb = (v: string) => block!.find((c) => c.startsWith(`kuberelay ${v}`))!;
    const created = await run(byVerb('keys create'));
    expect(created.code, created.out).toBe(0);
    const id = created.out.match(/created API key (key_\S+) \(search-api\)/)![1]!;

    const list = await run(byVerb('keys list'));
    expect(list.code, list.out).toBe(0);
    expect(list.out).toMatch(
      new RegExp(`${id}\\s+search-api\\s+sk-kr-\\S+…\\s+active\\s+gpt-4o-mini\\s+team=search\\s+25/day`),
    );

    const rotated = await run(byVerb('keys rotate').replace('key_...', id));
    expect(rotated.code, rotated.out).toBe(0);
    expect(rotated.out).toContain(`rotated API key ${id}`);
    expect(rotated.out).toContain('the previous secret keeps working until');
    const revoked = await run(byVerb('keys revoke').replace('key_...', id));
    expect(revoked.code, revoked.out).toBe(0);
    expect(revoked.out).toContain(`revoked ${id} (search-api)`);

    const migrate = await run(byVerb('migrate'));
    expect(migrate.code, migrate.out).toBe(0);
    expect(migrate.out).toContain('migrated the embedded database when it started; nothing to do');

    // The relay stopped, the CLI opens the database itself; revoke the rest.
    await Promise.all(running.map(stop));
    const all = JSON.parse((await run('kuberelay keys list --json')).stdout) as {
      data: { id: string }[];
    };
    expect(all.data).toHaveLength(2);
    for (const k of all.data) expect((await run(`kuberelay keys revoke --id ${k.id}`)).code).toBe(0);
    const none = await run('kuberelay keys list');
    expect(none.code, none.out).toBe(0);
    expect(none.out).toContain('no active API keys (3 revoked; `kuberelay keys list --all` shows them)');
    const withRevoked = await run('kuberelay keys list --all');
    expect(withRevoked.out.match(/\srevoked\s/g)).toHaveLength(3);

    const status = await run('kuberelay migrate --status');
    expect(status.code, status.out).toBe(0);
    expect(status.out).toMatch(/\d+ applied, 0 pending/);
  }, 300_000);
});
