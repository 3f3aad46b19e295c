import { dataDirFromEnv } from '../db/data-dir-lock.ts';
import type { AuthMode } from './app.ts';
import type { KeyAuthOptions } from './auth.ts';
import { DEFAULT_REQUEST_LOG_OPTIONS, type RequestLogOptions } from './request-log.ts';

/**
 * What persistence.ts runs with, read from the environment. Kept apart from persistence.ts so that
 * reading it does not load Prisma and the database drivers into relays that use none.
 */

export interface PersistenceOptions {
  databaseUrl?: string;
  dataDir: string;
  /**
   * The admin API listener. Without a token it runs only in embedded mode, on 127.0.0.1, with a
   * token generated per start and kept in the data directory's lock file (0600).
   */
  admin?: { port: number; host?: string; token?: string };
  requestLog?: Partial<RequestLogOptions>;
  keyAuth?: Partial<KeyAuthOptions>;
  /** Request logs older than this are deleted (hourly); 0 keeps them forever. */
  logRetentionDays?: number;
}

export class PersistenceConfigError extends Error {
  override name = 'PersistenceConfigError';
}

/**
 * Options from the environment. Without client auth and without DATABASE_URL there is nothing to
 * persist for (a local demo): no database is opened at all.
 */
export function persistenceFromEnv(
  auth: AuthMode,
  env = process.env,
  /** ADMIN_PORT when unset: a free port standalone (so relays on one machine never collide). */
  defaultAdminPort = 0,
): PersistenceOptions | false {
  const databaseUrl = env.DATABASE_URL || undefined;
  if (auth === 'none' && !databaseUrl) return false;
  const num = (name: string, def: number, ok: (n: number) => boolean) => {
    const v = env[name];
    if (v === undefined || v === '') return def;
    const n = Number(v);
    if (!Number.isFinite(n) || !ok(n)) throw new PersistenceConfigError(`${name}="${v}" is not valid`);
    return n;
  };
  return {
    databaseUrl,
    dataDir: dataDirFromEnv(env),
    admin: {
      port: num('ADMIN_PORT', defaultAdminPort, (n) => Number.isInteger(n) && n >= 0 && n < 65536),
      host: env.ADMIN_HOST || undefined,
      token: env.ADMIN_TOKEN || undefined,
    },
    requestLog: {
      sampleRate: num(
        'KUBERELAY_LOG_SAMPLE_RATE',
        DEFAULT_REQUEST_LOG_OPTIONS.sampleRate,
        (n) => n >= 0 && n <= 1,
      ),
      slowMs: num('KUBERELAY_LOG_SLOW_MS', DEFAULT_REQUEST_LOG_OPTIONS.slowMs, (n) => n >= 0),
    },
    logRetentionDays: num('KUBERELAY_LOG_RETENTION_DAYS', 30, (n) => n >= 0),
  };
}
