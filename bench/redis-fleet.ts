// Shared pieces of the Redis benchmarks (bench/limiter.ts, bench/cooldown-propagation.ts): a
// private redis-server, real relay and mock-upstream processes started through the CLI, and
// small statistics helpers. The relays are child processes like in production; this process
// only generates load and measures.

import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../test/helpers/process.ts';
import { startRedis, type TestRedis } from '../test/helpers/redis.ts';

export { metric } from '../test/helpers/prometheus-text.ts';

export { freePort, startRedis, type TestRedis };

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const CLI = path.join(ROOT, 'cli', 'index.ts');
export const UPSTREAM_KEY = 'bench-upstream-key';

export interface Proc {
  name: string;
  url: string;
  child: ChildProcess;
  output(): string;
  stop(signal?: NodeJS.Signals): Promise<void>;
}

function spawnCli(
  name: string,
  args: string[],
  env: Record<string, string>,
): { child: ChildProcess; output: () => string } {
  const child = spawn(process.execPath, [CLI, ...args], {
    cwd: ROOT,
    env: { ...process.env, LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const keep = (b: Buffer) => {
    out = (out + b.toString('utf8')).slice(-8000);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  if (child.pid === undefined) throw new Error(`could not start ${name}`);
  return { child, output: () => out };
}

function stopper(child: ChildProcess) {
  return async (signal: NodeJS.Signals = 'SIGTERM') => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill(signal);
    const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(t);
  };
}

async function waitReady(name: string, url: string, output: () => string, child: ChildProcess) {
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${name} exited (${child.exitCode}):\n${output()}`);
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
      await res.arrayBuffer();
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`${name} not ready at ${url}:\n${output()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export async function startMock(name: string): Promise<Proc> {
  const port = await freePort();
  const { child, output } = spawnCli(
    name,
    [
      'mock-upstream',
      '--port',
      String(port),
      '--host',
      '127.0.0.1',
      '--name',
      name,
      '--api-key',
      UPSTREAM_KEY,
    ],
    {},
  );
  const url = `http://127.0.0.1:${port}`;
  await waitReady(name, `${url}/_mock/health`, output, child);
  return { name, url, child, output, stop: stopper(child) };
}

/** Sets a mock upstream's faults through its control API (null clears). */
export async function setFaults(mock: Proc, faults: Record<string, unknown> | null): Promise<void> {
  const res = await fetch(`${mock.url}/_mock/faults`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(faults ?? {}),
  });
  if (!res.ok) throw new Error(`setting faults on ${mock.name}: ${res.status} ${await res.text()}`);
}

export async function startRelay(
  name: string,
  configFile: string,
  env: Record<string, string>,
): Promise<Proc> {
  const port = await freePort();
  const { child, output } = spawnCli(name, ['relay', '--config', configFile], {
    PORT: String(port),
    HOST: '127.0.0.1',
    KUBERELAY_AUTH: 'none',
    POD_NAME: name,
    ...env,
  });
  const url = `http://127.0.0.1:${port}`;
  await waitReady(name, `${url}/readyz`, output, child);
  return { name, url, child, output, stop: stopper(child) };
}

/** A temp directory for config files, removed by the returned function. */
export function tempDir(): { dir: string; write(name: string, text: string): string; remove(): void } {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kuberelay-bench-'));
  return {
    dir,
    write(name, text) {
      const file = path.join(dir, name);
      writeFileSync(file, text);
      return file;
    },
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

export interface ChannelDoc {
  name: string;
  baseURL: string;
  priority?: number;
  models?: string[];
  extra?: string;
}

/** Secret + Channels + extra documents, as a user would write them. */
export function config(channels: ChannelDoc[], extraDocs: string[] = []): string {
  return [
    `apiVersion: v1\nkind: Secret\nmetadata: { name: upstream }\nstringData: { apiKey: ${UPSTREAM_KEY} }\n`,
    ...channels.map(
      (c) => `apiVersion: kuberelay.io/v1alpha1
kind: Channel
metadata: { name: ${c.name} }
spec:
  provider: openai-compatible
  baseURL: ${c.baseURL}/v1
  apiKeySecretRef: { name: upstream }
  priority: ${c.priority ?? 0}
  models: [${(c.models ?? ['gpt-4o-mini']).map((m) => `{ name: ${m} }`).join(', ')}]
${c.extra ?? ''}`,
    ),
    ...extraDocs,
  ].join('---\n');
}

export interface Stats {
  n: number;
  mean: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

export function stats(xs: readonly number[]): Stats {
  const s = Float64Array.from(xs).sort();
  const q = (p: number) =>
    s.length === 0 ? Number.NaN : s[Math.min(s.length - 1, Math.floor(p * s.length))]!;
  return {
    n: s.length,
    mean: s.length === 0 ? Number.NaN : s.reduce((a, b) => a + b, 0) / s.length,
    p50: q(0.5),
    p90: q(0.9),
    p99: q(0.99),
    max: s.length === 0 ? Number.NaN : s[s.length - 1]!,
  };
}

export function table(head: string[], rows: string[][]): string {
  return [
    `| ${head.join(' | ')} |`,
    `|${head.map(() => '---').join('|')}|`,
    ...rows.map((r) => `| ${r.join(' | ')} |`),
  ].join('\n');
}

export const ms = (x: number, digits = 2) => (Number.isFinite(x) ? x.toFixed(digits) : '-');

export function machine(): string {
  return `Node ${process.version}, ${os.availableParallelism()} CPUs (${os.cpus()[0]?.model ?? 'unknown'}), ${os.type()} ${os.release()}`;
}
