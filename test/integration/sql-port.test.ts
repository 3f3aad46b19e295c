// The plain SQL port of db/database.ts (what the relay's runtime paths use instead of Prisma),
// against both backends at once: the same statement gives the same rows on PostgreSQL and PGlite,
// and a transaction is all or nothing.
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Database, openDatabase } from '../../db/database.ts';
import { applyMigrations } from '../../db/migrate.ts';
import { BACKENDS, type Backend, startBackend } from '../helpers/backends.ts';

const dbs: Database[] = [];
const backends: Backend[] = [];

beforeAll(async () => {
  for (const name of BACKENDS) {
    const backend = await startBackend(name);
    backends.push(backend);
    const db = await openDatabase(await backend.fresh());
    await applyMigrations(db);
    await db.query('CREATE TABLE port_t (id int PRIMARY KEY, v text NOT NULL)');
    dbs.push(db);
  }
}, 120_000);
afterAll(async () => {
  for (const db of dbs) await db.close();
  for (const b of backends) await b.close();
});

/** Runs `fn` on every backend and returns the results, in BACKENDS order. */
const onEach = <T>(fn: (db: Database) => Promise<T>) => Promise.all(dbs.map(fn));

describe('the SQL port on PostgreSQL and PGlite', () => {
  it('reads every column type the schema uses the same way on both', async () => {
    const sql = `SELECT 9007199254740993::int8 AS big, 12.3400000001::numeric(20,10) AS cost, 7::int AS n,
      1.5::float8 AS f, DATE '2026-03-04' AS day, TIMESTAMPTZ '2026-03-04T05:06:07.089Z' AS at,
      '{"a":[1,"x"]}'::jsonb AS j, '\\x00ff'::bytea AS b, ARRAY['a','b']::text[] AS arr,
      true AS yes, NULL::text AS nothing`;
    const [pg, lite] = (await onEach((db) => db.query<Record<string, unknown>>(sql))).map((rows) =>
      // bytea is a Uint8Array on both (pg's is a Buffer, a subclass).
      rows.map((r) => ({ ...r, b: [...(r.b as Uint8Array)] })),
    );
    expect(pg).toEqual([
      {
        big: '9007199254740993',
        cost: '12.3400000001',
        n: 7,
        f: 1.5,
        day: '2026-03-04',
        at: new Date('2026-03-04T05:06:07.089Z'),
        j: { a: [1, 'x'] },
        b: [0, 255],
        arr: ['a', 'b'],
        yes: true,
        nothing: null,
      },
    ]);
    expect(lite).toEqual(pg);
  });

  it('round-trips any parameter values identically on both (property)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.string({ unit: 'grapheme', maxLength: 40 }).filter((s) => !s.includes('\u0000')),
        fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }),
        fc.array(
          fc.option(
            fc.string({ maxLength: 8 }).filter((s) => !s.includes('\u0000')),
            { nil: null },
          ),
          {
            maxLength: 5,
          },
        ),
        fc.date({ min: new Date('1970-01-01'), max: new Date('2200-01-01'), noInvalidDate: true }),
        async (text, big, arr, at) => {
          const ms = new Date(Math.trunc(at.getTime())); // timestamptz(3) keeps milliseconds
          const results = await onEach((db) =>
            db.query('SELECT $1::text AS t, $2::int8 AS big, $3::text[] AS arr, $4::timestamptz(3) AS at', [
              text,
              big.toString(),
              arr,
              ms,
            ]),
          );
          const expected = [{ t: text, big: big.toString(), arr, at: ms }];
          for (const rows of results) expect(rows).toEqual(expected);
        },
      ),
      { numRuns: 40 },
    );
  });

  it('commits a transaction that resolves, with its result', async () => {
    const results = await onEach(async (db) => {
      const r = await db.transaction(async (tx) => {
        await tx.query('INSERT INTO port_t VALUES (1, $1)', ['one']);
        return (await tx.query<{ v: string }>('SELECT v FROM port_t WHERE id = 1'))[0]!.v;
      });
      return { r, rows: await db.query('SELECT id, v FROM port_t ORDER BY id') };
    });
    for (const x of results) expect(x).toEqual({ r: 'one', rows: [{ id: 1, v: 'one' }] });
  });

  it('rolls back everything when a statement inside fails, and the connection serves on', async () => {
    const results = await onEach(async (db) => {
      const err = await db
        .transaction(async (tx) => {
          await tx.query('INSERT INTO port_t VALUES (2, $1)', ['two']);
          await tx.query('INSERT INTO port_t VALUES (1, $1)', ['duplicate']); // primary key violation
        })
        .then(
          () => undefined,
          (e: Error) => e.message,
        );
      // More rounds than pg's pool has connections: a failed transaction leaves none half-open.
      for (let i = 0; i < 12; i++) {
        await db.transaction((tx) => tx.query('SELECT 1')).catch(() => {});
        await expect(
          db.transaction(async (tx) => {
            await tx.query('INSERT INTO port_t VALUES (100, $1)', ['x']);
            throw new Error('the caller gave up');
          }),
        ).rejects.toThrow('the caller gave up');
      }
      return { err, rows: await db.query('SELECT id, v FROM port_t ORDER BY id') };
    });
    for (const x of results) {
      expect(x.err).toMatch(/duplicate key/);
      expect(x.rows).toEqual([{ id: 1, v: 'one' }]);
    }
  });

  it("bounds a transaction's statements by its statement timeout on PostgreSQL", async () => {
    // PGlite has one connection (no other session's lock to wait on) and ignores statement_timeout.
    const pg = dbs[BACKENDS.indexOf('postgresql')]!;
    const started = Date.now();
    const r = await pg
      .transaction((tx) => tx.query('SELECT pg_sleep(5)'), { statementTimeoutMs: 200 })
      .then(
        () => 'finished',
        (e: Error) => e.message,
      );
    expect(r).toMatch(/statement timeout/);
    expect(Date.now() - started).toBeLessThan(4_500);
    // The timeout was the transaction's own (SET LOCAL): the next statement may run long.
    expect(await pg.query("SELECT current_setting('statement_timeout') AS t")).toEqual([{ t: '0' }]);
  });
});
