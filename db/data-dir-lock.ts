import { mkdir, open, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { homedir, hostname } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';

/**
 * PGlite is PostgreSQL in this process: two processes opening the same data directory would
 * corrupt it. Whoever opens it (a relay, or `kuberelay keys`/`migrate` working directly) holds
 * `<dataDir>/kuberelay.lock`, created exclusively. A running relay also writes where its admin API
 * listens, so the CLI can go through it instead. The file is 0600: it may hold the admin token the
 * relay generated for itself.
 */

/**
 * The embedded data directory: KUBERELAY_DATA_DIR, else one per user whatever the working
 * directory — `$XDG_DATA_HOME/kuberelay`, by default `~/.local/share/kuberelay` — so a relay and
 * `kuberelay keys` started in different directories meet in the same database.
 */
export function dataDirFromEnv(env: NodeJS.ProcessEnv = process.env): string {
  if (env.KUBERELAY_DATA_DIR) return resolve(env.KUBERELAY_DATA_DIR);
  // The XDG spec says to ignore a relative XDG_DATA_HOME.
  const xdg = env.XDG_DATA_HOME && isAbsolute(env.XDG_DATA_HOME) ? env.XDG_DATA_HOME : undefined;
  return join(xdg ?? join(env.HOME || homedir(), '.local', 'share'), 'kuberelay');
}

export interface LockHolder {
  pid: number;
  hostname: string;
  /** What holds it: `relay`, `keys`, `migrate`. */
  command: string;
  startedAt: string;
  adminUrl?: string;
  /** Only when the relay generated its admin token (no ADMIN_TOKEN given). */
  adminToken?: string;
}

export class DataDirBusyError extends Error {
  override name = 'DataDirBusyError';
  readonly holder: LockHolder;
  readonly dataDir: string;
  constructor(dataDir: string, holder: LockHolder) {
    super(
      `the data directory ${dataDir} is in use by \`kuberelay ${holder.command}\` (pid ${holder.pid} on ${holder.hostname}, since ${holder.startedAt}); ` +
        'embedded PGlite is single-process: stop that process, or run relays against PostgreSQL (DATABASE_URL)',
    );
    this.dataDir = dataDir;
    this.holder = holder;
  }
}

export interface DataDirLock {
  readonly holder: LockHolder;
  update(extra: Partial<Pick<LockHolder, 'adminUrl' | 'adminToken'>>): Promise<void>;
  release(): Promise<void>;
}

const FILE = 'kuberelay.lock';
/** Lock files this process holds (a pid match alone could be a dead container's pid 1). */
const heldHere = new Set<string>();

export function lockPath(dataDir: string): string {
  return join(dataDir, FILE);
}

/** The live holder of the data directory, or null (no lock, or a dead holder's leftover). */
export async function readDataDirLock(dataDir: string): Promise<LockHolder | null> {
  const holder = await readHolder(lockPath(dataDir));
  return holder && isAlive(holder, lockPath(dataDir)) ? holder : null;
}

export async function acquireDataDirLock(dataDir: string, command: string): Promise<DataDirLock> {
  await mkdir(dataDir, { recursive: true });
  const path = lockPath(dataDir);
  let holder: LockHolder = {
    pid: process.pid,
    hostname: hostname(),
    command,
    startedAt: new Date().toISOString(),
  };
  for (let attempt = 0; ; attempt++) {
    try {
      const fh = await open(path, 'wx', 0o600);
      await fh.writeFile(JSON.stringify(holder));
      await fh.close();
      heldHere.add(path);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const current = await readHolder(path);
      if (current && isAlive(current, path)) throw new DataDirBusyError(dataDir, current);
      if (attempt > 0) throw err;
      // Left behind by a process that died (or unreadable): take it over once.
      await unlink(path).catch(() => {});
    }
  }
  let released = false;
  return {
    get holder() {
      return holder;
    },
    async update(extra) {
      holder = { ...holder, ...extra };
      const tmp = `${path}.${process.pid}.tmp`;
      await writeFile(tmp, JSON.stringify(holder), { mode: 0o600 });
      await rename(tmp, path);
    },
    async release() {
      if (released) return;
      released = true;
      heldHere.delete(path);
      const current = await readHolder(path);
      if (current?.pid === process.pid && current.hostname === holder.hostname)
        await unlink(path).catch(() => {});
    },
  };
}

async function readHolder(path: string): Promise<LockHolder | null> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as LockHolder;
  } catch {
    return null;
  }
}

/** A holder on another host cannot be checked: it counts as alive (the safe answer). */
function isAlive(h: LockHolder, path: string): boolean {
  if (h.hostname !== hostname()) return true;
  if (h.pid === process.pid) return heldHere.has(path);
  try {
    process.kill(h.pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
