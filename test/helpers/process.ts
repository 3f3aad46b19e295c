import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = fileURLToPath(new URL('../..', import.meta.url));
export const CLI = fileURLToPath(new URL('../../cli/index.ts', import.meta.url));

export interface Proc {
  child: ChildProcess;
  output(): string;
  /** Resolves when `pattern` shows up in stdout/stderr. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  exited(): Promise<number | null>;
}

/**
 * Runs `kuberelay <args>` as a real process (Node 24 strips the TypeScript types itself). Unless
 * the test passes KUBERELAY_DATA_DIR, the process gets a data directory of its own (removed when
 * it exits), so no two processes meet in the per-user default (`~/.local/share/kuberelay`).
 */
export function kuberelay(
  args: string[],
  env: Record<string, string> = {},
  opts: { cli?: string } = {},
): Proc {
  const ownDir =
    env.KUBERELAY_DATA_DIR === undefined ? mkdtempSync(join(tmpdir(), 'kuberelay-proc-')) : undefined;
  return spawnProc(
    process.execPath,
    [opts.cli ?? CLI, ...args],
    { ...process.env, LOG_LEVEL: 'info', ...(ownDir ? { KUBERELAY_DATA_DIR: ownDir } : {}), ...env },
    () => {
      if (ownDir) rmSync(ownDir, { recursive: true, force: true });
    },
  );
}

/** Any program as a Proc (output captured, waitFor, exited); `cleanup` runs when it exits. */
export function spawnProc(
  command: string,
  args: string[],
  env: NodeJS.ProcessEnv = process.env,
  cleanup: () => void = () => {},
): Proc {
  const child = spawn(command, args, { cwd: REPO, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const listeners = new Set<() => void>();
  const onData = (d: Buffer) => {
    out += d.toString();
    for (const l of listeners) l();
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  const exit = once(child, 'exit').then(([code]) => {
    cleanup();
    return code as number | null;
  });
  return {
    child,
    output: () => out,
    exited: () => exit,
    waitFor(pattern, timeoutMs = 15_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const m = out.match(pattern);
          if (m) {
            listeners.delete(check);
            clearTimeout(timer);
            resolve(m);
          }
        };
        const timer = setTimeout(() => {
          listeners.delete(check);
          reject(new Error(`timed out waiting for ${pattern}; output:\n${out}`));
        }, timeoutMs);
        listeners.add(check);
        void exit.then(() => {
          if (listeners.has(check)) {
            listeners.delete(check);
            clearTimeout(timer);
            reject(new Error(`process exited before ${pattern}; output:\n${out}`));
          }
        });
        check();
      });
    },
  };
}

export async function freePort(): Promise<number> {
  const srv = createServer();
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const port = (srv.address() as { port: number }).port;
  srv.close();
  await once(srv, 'close');
  return port;
}

/**
 * Runs start() on `n` free ports, and again on fresh ones when it failed because one was taken
 * meanwhile ("Address already in use" in its error): a port found free stays free only until some
 * other test's client socket gets it as its ephemeral port. Any other failure is thrown at once.
 */
export async function onFreePorts<T>(n: number, start: (ports: number[]) => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    const ports = new Set<number>();
    while (ports.size < n) ports.add(await freePort());
    try {
      return await start([...ports]);
    } catch (err) {
      if (!/Address already in use|EADDRINUSE/.test((err as Error).message) || attempt === 5) throw err;
    }
  }
}
