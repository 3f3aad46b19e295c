// The peers bench/peers.ts compares kuberelay with, installed at pinned versions into a cache
// directory outside the repository (~/.cache/kuberelay/peers, or KUBERELAY_PEERS_DIR), once: a
// finished install leaves a marker file, so later runs start at once. An install that fails is a
// result ("not installed: why"), never the end of the run.

import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** Portkey's AI gateway (Node, Hono). */
export const PORTKEY_VERSION = '1.15.2';
/**
 * LiteLLM's proxy (Python). 1.82.7 and 1.82.8 were compromised releases (2026) and must never be
 * pinned; 1.100.0 is the newest release whose `proxy` extra resolves from PyPI alone (from 1.110 on,
 * the extra needs a separate `litellm-proxy` distribution).
 */
export const LITELLM_VERSION = '1.100.0';
const COMPROMISED_LITELLM = new Set(['1.82.7', '1.82.8']);

export interface Installed {
  ok: true;
  version: string;
  /** The command that starts the peer, and the arguments before the per-run ones. */
  command: string;
  args: string[];
  cwd: string;
}
export interface NotInstalled {
  ok: false;
  version: string;
  reason: string;
}
export type Install = Installed | NotInstalled;

export const peersDir = () =>
  process.env.KUBERELAY_PEERS_DIR || path.join(os.homedir(), '.cache', 'kuberelay', 'peers');

function run(command: string, args: string[], cwd: string, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(
      command,
      args,
      { cwd, timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 },
      (err, _stdout, stderr) => {
        if (!err) return resolve();
        const tail = String(stderr).trim().split('\n').slice(-3).join(' / ');
        reject(new Error(`${path.basename(command)} ${args.slice(0, 2).join(' ')}: ${tail || err.message}`));
      },
    );
  });
}

/**
 * Runs `steps` in `dir` unless its marker exists (or fails at once when `install` is false); a
 * failed install is removed so that the next run retries.
 */
async function cached(dir: string, install: boolean, steps: () => Promise<void>): Promise<void> {
  const marker = path.join(dir, 'installed.ok');
  if (existsSync(marker)) return;
  if (!install) throw new Error(`not in the cache (${dir}) and --no-install`);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  try {
    await steps();
    writeFileSync(marker, `${new Date().toISOString()}\n`);
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

export async function installPortkey(install = true): Promise<Install> {
  const version = PORTKEY_VERSION;
  const dir = path.join(peersDir(), `portkey-${version}`);
  try {
    await cached(dir, install, async () => {
      writeFileSync(path.join(dir, 'package.json'), '{ "private": true }\n');
      // No install scripts: the published build runs as it is (its postinstall only applies patches).
      await run(
        'npm',
        ['install', '--no-audit', '--no-fund', '--ignore-scripts', `@portkey-ai/gateway@${version}`],
        dir,
        600_000,
      );
    });
    const entry = path.join(dir, 'node_modules', '@portkey-ai', 'gateway', 'build', 'start-server.js');
    if (!existsSync(entry)) throw new Error(`no ${entry}`);
    return { ok: true, version, command: process.execPath, args: [entry, '--headless'], cwd: dir };
  } catch (err) {
    return { ok: false, version, reason: (err as Error).message };
  }
}

export async function installLiteLLM(install = true): Promise<Install> {
  const python = process.env.PYTHON || 'python3';
  const version = LITELLM_VERSION;
  if (COMPROMISED_LITELLM.has(version))
    return { ok: false, version, reason: 'a compromised release: refused' };
  const dir = path.join(peersDir(), `litellm-${version}`);
  const venv = path.join(dir, 'venv');
  try {
    await cached(dir, install, async () => {
      await run(python, ['-m', 'venv', venv], dir, 120_000);
      await run(
        path.join(venv, 'bin', 'pip'),
        ['install', '--disable-pip-version-check', '--quiet', `litellm[proxy]==${version}`],
        dir,
        1_200_000,
      );
    });
    const bin = path.join(venv, 'bin', 'litellm');
    if (!existsSync(bin)) throw new Error(`no ${bin}`);
    return { ok: true, version, command: bin, args: [], cwd: dir };
  } catch (err) {
    return { ok: false, version, reason: (err as Error).message };
  }
}
