import { createHash, randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Database, SqlSession } from './database.ts';

/**
 * Applies prisma/migrations/<timestamp>_<name>/migration.sql in name order and records them in
 * Prisma's own `_prisma_migrations` table (same columns, sha256 checksums), so a database migrated
 * here is one `prisma migrate deploy` would also consider up to date, and the other way round.
 * A session-level advisory lock (Prisma's key) makes concurrent runners — a Job and a starting
 * relay, or two relays — apply each migration once.
 */

export interface Migration {
  name: string;
  sql: string;
  checksum: string;
}

export interface MigrationStatus {
  applied: string[];
  pending: string[];
  /** Applied in the database but unknown here (a newer kuberelay migrated it). */
  unknown: string[];
}

const LOCK_KEY = 72707369;

const CREATE_TABLE = `CREATE TABLE IF NOT EXISTS "_prisma_migrations" (
    "id" VARCHAR(36) PRIMARY KEY NOT NULL,
    "checksum" VARCHAR(64) NOT NULL,
    "finished_at" TIMESTAMPTZ,
    "migration_name" VARCHAR(255) NOT NULL,
    "logs" TEXT,
    "rolled_back_at" TIMESTAMPTZ,
    "started_at" TIMESTAMPTZ NOT NULL DEFAULT now(),
    "applied_steps_count" INTEGER NOT NULL DEFAULT 0
)`;

export class MigrationError extends Error {
  override name = 'MigrationError';
}

/** prisma/migrations next to the sources, or next to dist/ in a built package. */
export function migrationsDir(): string {
  for (const rel of ['../prisma/migrations', '../../prisma/migrations']) {
    const dir = fileURLToPath(new URL(rel, import.meta.url));
    if (existsSync(dir)) return dir;
  }
  throw new MigrationError('prisma/migrations not found next to the kuberelay sources');
}

export async function loadMigrations(dir = migrationsDir()): Promise<Migration[]> {
  const names = (await readdir(dir, { withFileTypes: true }))
    .filter((e) => e.isDirectory() && /^\d{14}_\w+$/.test(e.name))
    .map((e) => e.name)
    .sort();
  return Promise.all(
    names.map(async (name) => {
      const sql = await readFile(join(dir, name, 'migration.sql'), 'utf8');
      return { name, sql, checksum: createHash('sha256').update(sql).digest('hex') };
    }),
  );
}

interface Row {
  migration_name: string;
  checksum: string;
  finished_at: Date | null;
  rolled_back_at: Date | null;
  logs: string | null;
}

async function appliedRows(s: SqlSession): Promise<Row[]> {
  const exists = await s.query<{ t: string | null }>(`SELECT to_regclass('"_prisma_migrations"')::text AS t`);
  if (!exists[0]?.t) return [];
  return s.query<Row>(
    'SELECT migration_name, checksum, finished_at, rolled_back_at, logs FROM "_prisma_migrations" ORDER BY started_at',
  );
}

function check(migrations: Migration[], rows: Row[]): MigrationStatus {
  const live = rows.filter((r) => r.rolled_back_at === null);
  const failed = live.find((r) => r.finished_at === null);
  if (failed) {
    throw new MigrationError(
      `migration ${failed.migration_name} failed earlier and was not rolled back; fix the database, then mark it rolled back (UPDATE "_prisma_migrations" SET rolled_back_at = now() WHERE migration_name = '${failed.migration_name}') and run \`kuberelay migrate\` again. Error: ${failed.logs ?? 'unknown'}`,
    );
  }
  const done = new Map(live.map((r) => [r.migration_name, r]));
  for (const m of migrations) {
    const row = done.get(m.name);
    if (row && row.checksum !== m.checksum) {
      throw new MigrationError(`migration ${m.name} was changed after it was applied (checksum mismatch)`);
    }
  }
  const known = new Set(migrations.map((m) => m.name));
  return {
    applied: migrations.filter((m) => done.has(m.name)).map((m) => m.name),
    pending: migrations.filter((m) => !done.has(m.name)).map((m) => m.name),
    unknown: [...done.keys()].filter((n) => !known.has(n)),
  };
}

export async function migrationStatus(db: Database, migrations?: Migration[]): Promise<MigrationStatus> {
  const all = migrations ?? (await loadMigrations());
  return db.session(async (s) => check(all, await appliedRows(s)));
}

/** Applies what is pending; returns the names applied (empty when up to date). */
export async function applyMigrations(db: Database, migrations?: Migration[]): Promise<string[]> {
  const all = migrations ?? (await loadMigrations());
  return db.session(async (s) => {
    await s.query('SELECT pg_advisory_lock($1)', [LOCK_KEY]);
    try {
      await s.exec(CREATE_TABLE);
      const status = check(all, await appliedRows(s));
      const applied: string[] = [];
      for (const m of all.filter((x) => status.pending.includes(x.name))) {
        const id = randomUUID();
        await s.query(
          'INSERT INTO "_prisma_migrations" (id, checksum, migration_name, started_at) VALUES ($1, $2, $3, now())',
          [id, m.checksum, m.name],
        );
        try {
          // One simple-protocol script: PostgreSQL runs it as a single transaction.
          await s.exec(m.sql);
        } catch (err) {
          const msg = (err as Error).message;
          await s.query('UPDATE "_prisma_migrations" SET logs = $2 WHERE id = $1', [id, msg]);
          throw new MigrationError(`migration ${m.name} failed: ${msg}`);
        }
        await s.query(
          'UPDATE "_prisma_migrations" SET finished_at = now(), applied_steps_count = 1 WHERE id = $1',
          [id],
        );
        applied.push(m.name);
      }
      return applied;
    } finally {
      await s.query('SELECT pg_advisory_unlock($1)', [LOCK_KEY]);
    }
  });
}
