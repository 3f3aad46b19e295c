import { join } from 'node:path';
import type { SqlMigrationAwareDriverAdapterFactory } from '@prisma/driver-adapter-utils';
import { PrismaClient } from './generated/client.ts';

/**
 * One Prisma client over either backend: PostgreSQL through `@prisma/adapter-pg` when a URL is
 * given, otherwise embedded PGlite in the data directory. Everything above this module is the same
 * code for both; the only driver-specific part is `session()`, which the migration runner needs
 * for multi-statement scripts and a session-scoped lock on one connection.
 */

export interface SqlSession {
  query<T = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<T[]>;
  /** A multi-statement script, run as one implicit transaction. */
  exec(script: string): Promise<void>;
}

export interface Database {
  readonly kind: 'postgres' | 'pglite';
  readonly prisma: PrismaClient;
  /** Where the data is, for messages (a directory, or host/database without credentials). */
  readonly location: string;
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

async function openPostgres(url: string, onError?: (err: Error) => void): Promise<Database> {
  const { default: pg } = await import('pg');
  const { PrismaPg } = await import('@prisma/adapter-pg');
  const pool = new pg.Pool({
    connectionString: url,
    max: Number(process.env.DATABASE_POOL_SIZE ?? 10),
    // A database that stops answering must fail queries fast: the request path has a cache to
    // fall back on, and the log writer buffers.
    connectionTimeoutMillis: 3_000,
    idleTimeoutMillis: 30_000,
  });
  pool.on('error', (err) => onError?.(err));
  const adapter = new PrismaPg(pool);
  const prisma = new PrismaClient({ adapter });
  const u = new URL(url);
  return {
    kind: 'postgres',
    prisma,
    location: `postgresql://${u.host}${u.pathname}`,
    async session(fn) {
      const client = await pool.connect();
      try {
        return await fn({
          query: async (sql, params) => (await client.query(sql, params)).rows,
          exec: async (script) => {
            await client.query(script);
          },
        });
      } finally {
        client.release();
      }
    },
    async close() {
      await prisma.$disconnect();
      await pool.end();
    },
  };
}

async function openPglite(dataDir: string): Promise<Database> {
  // Loaded only in embedded mode (db/pglite.ts: what it costs and how it is kept small).
  const { openPgliteEngine } = await import('./pglite.ts');
  const { PrismaPGlite } = await import('pglite-prisma-adapter');
  const dir = pgliteDir(dataDir);
  const pglite = await openPgliteEngine(dir);
  // The adapter's types come from its own copy of the driver-adapter interface.
  const adapter = new PrismaPGlite(pglite) as unknown as SqlMigrationAwareDriverAdapterFactory;
  const prisma = new PrismaClient({ adapter });
  return {
    kind: 'pglite',
    prisma,
    location: dir,
    // One connection, and nothing else uses it while migrations run (they run first).
    session: (fn) =>
      fn({
        query: async (sql, params) => (await pglite.query(sql, params)).rows as never[],
        exec: async (script) => {
          await pglite.exec(script);
        },
      }),
    async close() {
      await prisma.$disconnect();
      await pglite.close();
    },
  };
}
