import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { afterEach, describe, expect, it } from 'vitest';
import { type Database, openDatabase, pgliteDir } from '../../db/database.ts';
import { applyMigrations } from '../../db/migrate.ts';
import { EMBEDDED_PG_SETTINGS } from '../../db/pglite.ts';

// The embedded database runs inside the relay's process, in WebAssembly memory that is touched at
// start and never returned: PostgreSQL's server defaults (shared_buffers 128MB, ...) cost a relay
// pod hundreds of MB (BENCHMARKS.md, "Embedded database memory"). These read back, through SQL,
// what the engine the relay opens actually runs with.

const MiB = 1024 * 1024;

async function settingBytes(db: Database, name: string): Promise<number> {
  const rows = await db.session((s) =>
    s.query<{ b: string }>('SELECT pg_size_bytes(current_setting($1))::text AS b', [name]),
  );
  return Number(rows[0]!.b);
}

async function setting(db: Database, name: string): Promise<string> {
  const rows = await db.session((s) => s.query<{ v: string }>('SELECT current_setting($1) AS v', [name]));
  return rows[0]!.v;
}

describe('embedded PGlite engine settings', () => {
  const dirs: string[] = [];
  const dbs: Database[] = [];
  afterEach(async () => {
    for (const db of dbs.splice(0)) await db.close();
    for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
  });
  const dataDir = async () => {
    const d = await mkdtemp(join(tmpdir(), 'kuberelay-engine-'));
    dirs.push(d);
    return d;
  };

  it('a new data directory runs with buffers sized for a relay pod, not PostgreSQL server defaults', async () => {
    const db = await openDatabase({ dataDir: await dataDir() });
    dbs.push(db);
    await applyMigrations(db);
    expect(await settingBytes(db, 'shared_buffers')).toBeLessThanOrEqual(16 * MiB);
    expect(await settingBytes(db, 'wal_buffers')).toBeLessThanOrEqual(1 * MiB);
    expect(await settingBytes(db, 'work_mem')).toBeLessThanOrEqual(4 * MiB);
    expect(await settingBytes(db, 'maintenance_work_mem')).toBeLessThanOrEqual(16 * MiB);
    expect(await settingBytes(db, 'temp_buffers')).toBeLessThanOrEqual(4 * MiB);
    expect(Number(await setting(db, 'max_connections'))).toBeLessThanOrEqual(10);
    // Every setting the engine declares is the one in effect (none silently ignored).
    for (const [name, value] of Object.entries(EMBEDDED_PG_SETTINGS)) {
      expect([name, await settingBytesOrValue(db, name)]).toEqual([name, await normalise(db, value)]);
    }
  });

  it('a data directory created with PGlite defaults (an older kuberelay) gets the small settings on its next start', async () => {
    const dir = await dataDir();
    const old = new PGlite({ dataDir: pgliteDir(dir) });
    await old.waitReady;
    expect((await old.query<{ shared_buffers: string }>('SHOW shared_buffers')).rows[0]!.shared_buffers).toBe(
      '128MB',
    );
    await old.close();

    const db = await openDatabase({ dataDir: dir });
    dbs.push(db);
    expect(await settingBytes(db, 'shared_buffers')).toBeLessThanOrEqual(16 * MiB);
    expect(Number(await setting(db, 'max_connections'))).toBeLessThanOrEqual(10);
  });

  it('a start killed while initialising leaves no half database: the next start initialises again', async () => {
    const dir = await dataDir();
    // What a start killed mid-initdb leaves: the empty target and a partial sibling.
    await mkdir(pgliteDir(dir), { recursive: true });
    await mkdir(`${pgliteDir(dir)}.initdb/base`, { recursive: true });
    await writeFile(`${pgliteDir(dir)}.initdb/PG_VERSION`, '18\n');
    const db = await openDatabase({ dataDir: dir });
    dbs.push(db);
    expect(await applyMigrations(db)).not.toEqual([]);
    expect(await settingBytes(db, 'shared_buffers')).toBeLessThanOrEqual(16 * MiB);
  });
});

/** A size setting in bytes, any other as PostgreSQL prints it. */
async function settingBytesOrValue(db: Database, name: string): Promise<string> {
  const v = await setting(db, name);
  return /^\d+(\.\d+)?\s*[kMGT]?B$/.test(v) ? String(await settingBytes(db, name)) : v;
}

async function normalise(db: Database, value: string): Promise<string> {
  if (!/^\d+(\.\d+)?\s*[kMGT]?B$/.test(value)) return value;
  const rows = await db.session((s) =>
    s.query<{ b: string }>('SELECT pg_size_bytes($1)::text AS b', [value]),
  );
  return rows[0]!.b;
}
