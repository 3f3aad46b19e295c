import { existsSync } from 'node:fs';
import { acquireDataDirLock, dataDirFromEnv, type LockHolder, readDataDirLock } from '../db/data-dir-lock.ts';
import { type Database, openDatabase, pgliteDir } from '../db/database.ts';

/**
 * How a CLI command reaches the database: PostgreSQL (DATABASE_URL) directly, any time; the
 * embedded data directory directly only while no relay holds it (PGlite is single-process),
 * otherwise `busy` says who holds it and where its admin API listens.
 */
export type DbAccess =
  | { kind: 'direct'; db: Database; close(): Promise<void> }
  | { kind: 'busy'; dataDir: string; holder: LockHolder };

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
  if (!existsSync(pgliteDir(dataDir))) warnNewDatabase(dataDir, env);
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

/**
 * A new embedded database is what a user gets when the CLI and the relay disagree on the data
 * directory: say so, since keys made here would be unknown (401) to a relay serving another one.
 */
function warnNewDatabase(dataDir: string, env: NodeJS.ProcessEnv) {
  const why = env.KUBERELAY_DATA_DIR ? 'KUBERELAY_DATA_DIR' : 'the default; KUBERELAY_DATA_DIR is not set';
  process.stderr.write(
    `kuberelay: creating a new embedded database in ${dataDir} (${why}). ` +
      "A relay using another data directory will not know its keys: give this command that relay's " +
      'KUBERELAY_DATA_DIR (or DATABASE_URL).\n',
  );
}
