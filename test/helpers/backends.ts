import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Postgres, startPostgres } from './postgres.ts';

/**
 * The two databases kuberelay runs on. Suites that touch the database run once per backend
 * (`describe.each(BACKENDS)`): embedded PGlite in a temp data directory, and a real PostgreSQL
 * server (one per test file; a fresh database per `fresh()`).
 */
export const BACKENDS = ['pglite', 'postgresql'] as const;
export type BackendName = (typeof BACKENDS)[number];

export interface Backend {
  name: BackendName;
  /** A new, empty database: its DATABASE_URL (undefined for PGlite) and a data directory. */
  fresh(): Promise<{ url: string | undefined; dataDir: string }>;
  /** The server, for PostgreSQL (stop/start it to test outages). */
  postgres: Postgres | undefined;
  close(): Promise<void>;
}

let counter = 0;

export async function startBackend(name: BackendName): Promise<Backend> {
  const postgres = name === 'postgresql' ? await startPostgres() : undefined;
  const dirs: string[] = [];
  return {
    name,
    postgres,
    async fresh() {
      const dataDir = await mkdtemp(join(tmpdir(), 'kuberelay-data-'));
      dirs.push(dataDir);
      const url = postgres ? await postgres.createDatabase(`t${process.pid}_${++counter}`) : undefined;
      return { url, dataDir };
    },
    async close() {
      await postgres?.close();
      await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
    },
  };
}
