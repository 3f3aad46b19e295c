// Child processes of a benchmark: start (optionally pinned with taskset), keep the tail of their
// output for error messages, wait until ready, stop (SIGTERM, then SIGKILL), and free ports.

import { type ChildProcess, spawn } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CommandWrap } from './memory-limit.ts';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

export interface Child {
  name: string;
  proc: ChildProcess;
  pid: number;
  output: () => string;
  exited: Promise<number | null>;
}

/** `K=V` command-line values (a repeatable `--flag`) as a child's environment. */
export function envPairs(pairs: readonly string[], flag: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const kv of pairs) {
    const eq = kv.indexOf('=');
    if (eq <= 0) throw new Error(`${flag} expects K=V, got ${kv}`);
    env[kv.slice(0, eq)] = kv.slice(eq + 1);
  }
  return env;
}

/**
 * A node process running `args` (a script and its arguments), pinned to `cpu` with taskset if
 * given, started through `wrap` if given (a memory cgroup: bench/lib/memory-limit.ts).
 */
export function startChild(
  name: string,
  args: string[],
  env: Record<string, string>,
  cpu?: string,
  wrap?: CommandWrap,
): Child {
  if (cpu === undefined) return startProcess(name, process.execPath, args, env, ROOT, wrap);
  return startProcess(name, 'taskset', ['-c', cpu, process.execPath, ...args], env, ROOT, wrap);
}

/** Any command; `exited` resolves with its exit code (null when killed by a signal). */
export function startProcess(
  name: string,
  command: string,
  args: string[],
  env: Record<string, string>,
  cwd = ROOT,
  wrap?: CommandWrap,
): Child {
  const run = wrap ? wrap(command, args) : { command, args };
  const proc = spawn(run.command, run.args, {
    cwd,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const keep = (b: Buffer) => {
    out = (out + b.toString('utf8')).slice(-8000);
  };
  proc.stdout!.on('data', keep);
  proc.stderr!.on('data', keep);
  const exited = new Promise<number | null>((resolve) => {
    proc.once('exit', (code) => resolve(code));
    proc.once('error', (err) => {
      out += `\n${err.message}`;
      resolve(-1);
    });
  });
  if (proc.pid === undefined) throw new Error(`could not start ${name} (${command})`);
  return { name, proc, pid: proc.pid, output: () => out, exited };
}

export async function stopChild(c: Child, timeoutMs = 10_000): Promise<void> {
  if (c.proc.exitCode !== null || c.proc.signalCode !== null) return;
  c.proc.kill('SIGTERM');
  const t = setTimeout(() => c.proc.kill('SIGKILL'), timeoutMs);
  await c.exited;
  clearTimeout(t);
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

export async function waitReady(c: Child, url: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    if (c.proc.exitCode !== null) throw new Error(`${c.name} exited (${c.proc.exitCode}):\n${c.output()}`);
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
      last = `${res.status} ${await res.text()}`;
      if (res.ok) return;
    } catch (err) {
      last = (err as Error).message;
    }
    if (Date.now() > deadline) throw new Error(`${c.name} not ready at ${url}: ${last}\n${c.output()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
