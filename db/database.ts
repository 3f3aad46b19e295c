import { join } from 'node:path';
import type { SqlMigrationAwareDriverAdapterFactory } from '@prisma/driver-adapter-utils';
import type { CustomTypesConfig, Pool, PoolClient } from 'pg';
import type { PrismaClient } from './generated/client.ts';

/**
 * One database over either backend: PostgreSQL through a `pg` pool when a URL is given, otherwise
 * embedded PGlite in the data directory. What the relay runs (key lookups, request logs, usage,
 * pins, jobs) goes through the plain SQL port (`query`, `transaction`), implemented directly on
 * the driver; the Prisma client (CRUD for the admin API's reports and tests) is created on first
 * use only, so a relay that only serves never loads it or its WASM query compiler (~15 MB).
 * `session()` is what the migration runner needs: multi-statement scripts and a session-scoped
 * lock on one connection.
 */

export type SqlParam = unknown;

/** Plain SQL. Rows come back alike on both backends (see ROW_TYPES). */
export interface Sql {
  query<T = Record<string, unknown>>(sql: string, params?: readonly SqlParam[]): Promise<T[]>;
}

export interface TransactionOptions {
  /** Bounds every statement of the transaction (a lock wait too), in ms; PostgreSQL only. */
  statementTimeoutMs?: number;
}

export interface SqlSession extends Sql {
  /** A multi-statement script, run as one implicit transaction. */
  exec(script: string): Promise<void>;
}

export interface Database extends Sql {
  readonly kind: 'postgres' | 'pglite';
  /** Where the data is, for messages (a directory, or host/database without credentials). */
  readonly location: string;
  /** Runs `fn` on one connection in one transaction: committed if it resolves, rolled back if it throws. */
  transaction<T>(fn: (tx: Sql) => Promise<T>, o?: TransactionOptions): Promise<T>;
  /** The Prisma client over the same connections, loaded and created on the first call. */
  prisma(): Promise<PrismaClient>;
  session<T>(fn: (s: SqlSession) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

export interface DatabaseOptions {
  /** PostgreSQL URL (DATABASE_URL); without it, embedded PGlite under dataDir. */
  url?: string;
  dataDir: string;
  /** Called for errors of idle PostgreSQL connections (server gone), instead of crashing. */
  onConnectionError?: (err: Error) => void;
}

export function pgliteDir(dataDir: string): string {
  return join(dataDir, 'pgdata');
}

export async function openDatabase(o: DatabaseOptions): Promise<Database> {
  return o.url ? openPostgres(o.url, o.onConnectionError) : openPglite(o.dataDir);
}

/**
 * The drivers disagree on a few types (pg: int8 as a string and `date` as a local-time Date;
 * PGlite: int8 as a lossy number, `date` as a UTC Date): both read these the same way here.
 * int8 and numeric are exact decimal strings; a date is `YYYY-MM-DD`; timestamptz is a Date.
 */
const INT8 = 20;
const NUMERIC = 1700;
const DATE = 1082;
const asText = (v: string) => v;
const ROW_TYPES: Record<number, (v: string) => unknown> = {
  [INT8]: asText,
  [NUMERIC]: asText,
  [DATE]: asText,
};

/** Creates the Prisma client once, on first use; `make` imports it (the import is the cost). */
function lazyPrisma(make: () => Promise<PrismaClient>) {
  let client: Promise<PrismaClient> | undefined;
  return {
    get: () => {
      client ??= make();
      return client;
    },
    async close() {
      if (client) await (await client).$disconnect();
    },
  };
}

async function openPostgres(url: string, onError?: (err: Error) => void): Promise<Database> {
  const { default: pg } = await import('pg');
  const types = {
    getTypeParser: (oid: number, format?: string) =>
      ROW_TYPES[oid] ?? (pg.types.getTypeParser as (o: number, f?: string) => unknown)(oid, format),
  } as unknown as CustomTypesConfig;
  const pool = new pg.Pool({
    connectionString: url,
    max: Number(process.env.DATABASE_POOL_SIZE ?? 10),
    // A database that stops answering must fail queries fast: the request path has a cache to
    // fall back on, and the log writer buffers.
    connectionTimeoutMillis: 3_000,
    idleTimeoutMillis: 30_000,
    types,
  });
  pool.on('error', (err) => onError?.(err));
  const prisma = lazyPrisma(async () => {
    const [{ PrismaClient }, { PrismaPg }] = await Promise.all([
      import('./generated/client.ts'),
      import('@prisma/adapter-pg'),
    ]);
    return new PrismaClient({ adapter: new PrismaPg(pool) });
  });
  const u = new URL(url);
  const on = (c: Pool | PoolClient): Sql => ({
    query: async <T>(sql: string, params?: readonly SqlParam[]) =>
      (await c.query(sql, params as unknown[])).rows as T[],
  });
  return {
    kind: 'postgres',
    location: `postgresql://${u.host}${u.pathname}`,
    ...on(pool),
    async transaction(fn, o = {}) {
      const client = await pool.connect();
      let broken: Error | undefined;
      try {
        await client.query('BEGIN');
        if (o.statementTimeoutMs)
          await client.query(`SET LOCAL statement_timeout = ${Math.ceil(o.statementTimeoutMs)}`);
        const result = await fn(on(client));
        await client.query('COMMIT');
        return result;
      } catch (err) {
        // A connection that cannot even roll back is dropped, not returned to the pool.
        await client.query('ROLLBACK').catch((e: Error) => {
          broken = e;
        });
        throw err;
      } finally {
        client.release(broken);
      }
    },
    prisma: prisma.get,
    async session(fn) {
      const client = await pool.connect();
      try {
        return await fn({
          ...on(client),
          exec: async (script) => {
            await client.query(script);
          },
        });
      } finally {
        client.release();
      }
    },
    async close() {
      await prisma.close();
      await pool.end();
    },
  };
}

async function openPglite(dataDir: string): Promise<Database> {
  // Loaded only in embedded mode (db/pglite.ts: what it costs and how it is kept small).
  const { openPgliteEngine } = await import('./pglite.ts');
  const dir = pgliteDir(dataDir);
  const pglite = await openPgliteEngine(dir);
  const prisma = lazyPrisma(async () => {
    const [{ PrismaClient }, { PrismaPGlite }] = await Promise.all([
      import('./generated/client.ts'),
      import('pglite-prisma-adapter'),
    ]);
    // The adapter's types come from its own copy of the driver-adapter interface.
    const adapter = new PrismaPGlite(pglite) as unknown as SqlMigrationAwareDriverAdapterFactory;
    return new PrismaClient({ adapter });
  });
  type Queryable = Pick<typeof pglite, 'query'>;
  const on = (c: Queryable): Sql => ({
    query: async <T>(sql: string, params?: readonly SqlParam[]) =>
      (await c.query<T>(sql, params as unknown[], { parsers: ROW_TYPES })).rows,
  });
  return {
    kind: 'pglite',
    location: dir,
    ...on(pglite),
    // PGlite has one connection, so no other session's lock to wait for, and no timer to cancel a
    // statement with (statement_timeout is ignored): the timeout option has nothing to bound here.
    transaction: (fn) => pglite.transaction((tx) => fn(on(tx))),
    prisma: prisma.get,
    // One connection, and nothing else uses it while migrations run (they run first).
    session: (fn) =>
      fn({
        ...on(pglite),
        exec: async (script) => {
          await pglite.exec(script);
        },
      }),
    async close() {
      await prisma.close();
      await pglite.close();
    },
  };
}
