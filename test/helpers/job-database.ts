import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pgLib from 'pg';
import { openDatabase } from '../../db/database.ts';
import { applyMigrations } from '../../db/migrate.ts';
import type { Postgres } from './postgres.ts';

/**
 * A migrated database on a test PostgreSQL for the job tests: its URL, a data dir for the relay,
 * and a small pool of the test's own to read the job table.
 */
export async function migratedJobDatabase(pg: Postgres, name: string) {
  const url = await pg.createDatabase(name);
  const dataDir = await mkdtemp(join(tmpdir(), `kuberelay-${name}-`));
  const sql = new pgLib.Pool({ connectionString: url, max: 2 });
  // pg.close() terminates backends whose clients are still closing: not these tests' subject.
  sql.on('error', () => {});
  const db = await openDatabase({ url, dataDir });
  await applyMigrations(db);
  await db.close();
  return { url, dataDir, sql };
}
