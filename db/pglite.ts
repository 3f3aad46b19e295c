import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, rename, rm, rmdir } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import v8 from 'node:v8';
import type { PGlite } from '@electric-sql/pglite';

/**
 * The embedded engine: PGlite (PostgreSQL compiled to WebAssembly) in the data directory, sized for
 * a relay pod. Out of the box it costs ~400 MB of RSS over a relay without a database and peaks
 * near 1 GB (BENCHMARKS.md, "Embedded database memory"), for two reasons fixed here:
 *
 * - PostgreSQL's server defaults (shared_buffers 128MB, ...) live inside the WebAssembly memory,
 *   which is touched at start and never given back. The relay's database is small (keys, request
 *   logs appended in batches, daily rollups), so a few MB of buffers serve it.
 * - V8 tiers PGlite's 9 MB WebAssembly module up to TurboFan in the background; compiling its
 *   largest functions takes ~450 MB for a few seconds after start, and the optimised code stays.
 *   Baseline (Liftoff) code serves the relay's few queries per second at a fraction of that.
 *
 * A new data directory is initialised (initdb) in a short-lived child process: PGlite runs initdb in
 * two more WebAssembly instances whose memory (~100 MB, freed or not) would otherwise stay in the
 * relay's RSS for its whole life. A worker thread does not give it back; a process exit does.
 */

/** `-c name=value` settings on top of PGlite's own start parameters; `SHOW name` reads them back. */
export const EMBEDDED_PG_SETTINGS: Readonly<Record<string, string>> = {
  shared_buffers: '8MB',
  // 1/32 of shared_buffers, as PostgreSQL's auto-tuning would pick; spelled out to be checkable.
  wal_buffers: '256kB',
  temp_buffers: '1MB',
  work_mem: '2MB',
  maintenance_work_mem: '8MB',
  // One process, one connection: PGPROC slots and lock tables are sized from these.
  max_connections: '4',
  max_locks_per_transaction: '32',
  max_prepared_transactions: '0',
};

/** V8 flags that keep WebAssembly on the baseline compiler (must be set before PGlite compiles). */
export const EMBEDDED_V8_FLAGS = ['--no-wasm-tier-up', '--no-wasm-dynamic-tiering'] as const;

export function embeddedStartParams(defaults: readonly string[]): string[] {
  return [...defaults, ...Object.entries(EMBEDDED_PG_SETTINGS).flatMap(([k, v]) => ['-c', `${k}=${v}`])];
}

export async function openPgliteEngine(dir: string): Promise<PGlite> {
  // Process-wide, and only in embedded mode, where PGlite is the one large WebAssembly module.
  for (const flag of EMBEDDED_V8_FLAGS) v8.setFlagsFromString(flag);
  if (!existsSync(join(dir, 'PG_VERSION'))) await initialise(dir);
  return start(dir);
}

/** initdb into a sibling directory renamed into place when complete: a killed start leaves no half. */
async function initialise(dir: string): Promise<void> {
  const tmp = `${dir}.initdb`;
  await rm(tmp, { recursive: true, force: true });
  await mkdir(tmp, { recursive: true });
  await initInChild(tmp);
  await rmdir(dir).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'ENOENT') throw new Error(`${dir} is not empty and holds no database (no PG_VERSION)`);
  });
  await rename(tmp, dir);
}

async function start(dir: string): Promise<PGlite> {
  const { PGlite } = await import('@electric-sql/pglite');
  const defaults = (PGlite as unknown as { defaultStartParams: string[] }).defaultStartParams;
  const pglite = new PGlite({
    dataDir: dir,
    startParams: embeddedStartParams(defaults),
    // initdb sizes its own bootstrap server by these, and writes them into postgresql.conf.
    initDbStartParams: Object.entries(EMBEDDED_PG_SETTINGS).flatMap(([k, v]) => ['--set', `${k}=${v}`]),
  });
  await pglite.waitReady;
  return pglite;
}

const SELF = fileURLToPath(import.meta.url);

function initInChild(dir: string): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      [...EMBEDDED_V8_FLAGS, SELF, dir],
      { timeout: 120_000, maxBuffer: 1 << 20 },
      (err, _stdout, stderr) =>
        err
          ? reject(new Error(`initialising the embedded database in ${dir} failed: ${stderr || err.message}`))
          : resolve(),
    );
  });
}

// `node db/pglite.ts DIR`: what initInChild runs.
if (process.argv[1] === SELF && process.argv[2]) {
  const pglite = await start(process.argv[2]);
  await pglite.close();
}
