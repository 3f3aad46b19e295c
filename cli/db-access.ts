import { resolve } from 'node:path';
import { acquireDataDirLock, type LockHolder, readDataDirLock } from '../db/data-dir-lock.ts';
import { type Database, openDatabase } from '../db/database.ts';

/**
 * How a CLI command reaches the database: PostgreSQL (DATABASE_URL) directly, any time; the
 * embedded data directory directly only while no relay holds it (PGlite is single-process),
 * otherwise `busy` says who holds it and where its admin API listens.
 */
export type DbAccess =
  | { kind: 'direct'; db: Database; close(): Promise<void> }
  | { kind: 'busy'; dataDir: string; holder: LockHolder };

export function dataDirFromEnv(env = process.env): string {
  return resolve(env.KUBERELAY_DATA_DIR || '.kuberelay');
}

export async function openForCli(command: string, env = process.env): Promise<DbAccess> {
  const url = env.DATABASE_URL || undefined;
  const dataDir = dataDirFromEnv(env);
  if (url) {
    const db = await openDatabase({ url, dataDir });
    return { kind: 'direct', db, close: () => db.close() };
  }
  const holder = await readDataDirLock(dataDir);
  if (holder) return { kind: 'busy', dataDir, holder };
  const lock = await acquireDataDirLock(dataDir, command);
  try {
    const db = await openDatabase({ dataDir });
    return {
      kind: 'direct',
      db,
      async close() {
        await db.close();
        await lock.release();
      },
    };
  } catch (err) {
    await lock.release();
    throw err;
  }
}
