import { randomBytes } from 'node:crypto';
import type { FastifyInstance, RouteHandlerMethod } from 'fastify';
import pino from 'pino';
import type { StateStore } from '../core/state/store.ts';
import { PrismaAccounting } from '../db/accounting.ts';
import { acquireDataDirLock, type DataDirLock } from '../db/data-dir-lock.ts';
import { type Database, openDatabase } from '../db/database.ts';
import { PrismaKeyStore } from '../db/keys.ts';
import { applyMigrations, migrationStatus } from '../db/migrate.ts';
import { buildAdminApp } from './admin.ts';
import type { AuthMode } from './app.ts';
import { isKeyEvents, KeyAuthenticator } from './auth.ts';
import { BudgetTracker } from './budget.ts';
import { DatabaseHealth } from './db-health.ts';
import type { RelayMetrics } from './metrics.ts';
import { PersistenceConfigError, type PersistenceOptions } from './persistence-config.ts';
import type { RelayState } from './relay-state.ts';
import { DEFAULT_REQUEST_LOG_OPTIONS, RequestLogWriter } from './request-log.ts';

/**
 * Everything the relay keeps in its database, wired for one process: client keys (auth), the
 * request-log writer, and the admin API. Embedded mode (no DATABASE_URL) holds the data directory's
 * lock for the life of the process and migrates on start; with PostgreSQL the schema must already
 * be current (`kuberelay migrate`, run by the chart as a Job before upgrades).
 */

export interface Persistence {
  db: Database;
  keys: PrismaKeyStore;
  accounting: PrismaAccounting;
  /** Present when client auth is on. */
  authenticator: KeyAuthenticator | undefined;
  recorder: RequestLogWriter;
  health: DatabaseHealth;
  /**
   * Starts the admin API (after the public listener, whose port it must not share), with GET
   * /metrics when given its handler.
   */
  startAdmin(
    state: RelayState,
    publicPort: number,
    metrics?: RouteHandlerMethod,
  ): Promise<string | undefined>;
  close(): Promise<void>;
}

export async function startPersistence(
  o: PersistenceOptions,
  deps: {
    auth: AuthMode;
    store: StateStore;
    metrics: RelayMetrics;
    logLevel: string;
    /** The relay's log destination (stdout when absent). */
    logStream?: pino.DestinationStream;
  },
): Promise<Persistence> {
  // The relay's own log stream (same pino format); the app's logger does not exist yet.
  const root = pino({ level: deps.logLevel }, deps.logStream);
  const log = root.child({ component: 'database' });
  const adminLog = root.child({ component: 'admin' });
  const embedded = !o.databaseUrl;
  const lock: DataDirLock | undefined = embedded ? await acquireDataDirLock(o.dataDir, 'relay') : undefined;
  let db: Database | undefined;
  try {
    const health = new DatabaseHealth(deps.metrics, log);
    db = await openDatabase({
      url: o.databaseUrl,
      dataDir: o.dataDir,
      onConnectionError: (err) => health.failed('connection', err),
    });
    if (embedded) {
      const applied = await applyMigrations(db);
      if (applied.length > 0) log.info({ applied, dataDir: o.dataDir }, 'embedded database migrated');
    } else {
      const status = await migrationStatus(db);
      if (status.pending.length > 0) {
        throw new PersistenceConfigError(
          `the database at ${db.location} is missing ${status.pending.length} migration(s) (${status.pending.join(', ')}): run \`kuberelay migrate\` first`,
        );
      }
    }
    const keys = new PrismaKeyStore(db);
    const accounting = new PrismaAccounting(db);
    const events = isKeyEvents(deps.store) ? deps.store : undefined;
    const authenticator =
      deps.auth === 'keys'
        ? new KeyAuthenticator({
            keys,
            budgets: new BudgetTracker(deps.store, accounting, health),
            metrics: deps.metrics,
            health,
            events,
            options: o.keyAuth,
          })
        : undefined;
    await authenticator?.start();
    const recorder = new RequestLogWriter(accounting, deps.metrics, health, {
      ...DEFAULT_REQUEST_LOG_OPTIONS,
      ...o.requestLog,
    });
    recorder.start();
    const retention = startRetention(accounting, o.logRetentionDays ?? 30, log);

    let admin: FastifyInstance | undefined;
    const openDb = db;
    log.info({ database: db.kind, location: db.location }, 'database ready');
    return {
      db,
      keys,
      accounting,
      authenticator,
      recorder,
      health,
      async startAdmin(state, publicPort, metrics) {
        if (!o.admin) return undefined;
        let token = o.admin.token;
        let host = o.admin.host ?? '127.0.0.1';
        if (!token) {
          if (!lock) {
            adminLog.warn(
              'admin API off: set ADMIN_TOKEN to enable it (keys can be managed on the database directly)',
            );
            return undefined;
          }
          if (o.admin.host && o.admin.host !== '127.0.0.1') {
            throw new PersistenceConfigError(`ADMIN_HOST=${o.admin.host} needs ADMIN_TOKEN`);
          }
          // Only whoever can read the data directory (and so could open the database) gets it.
          token = randomBytes(32).toString('base64url');
          host = '127.0.0.1';
        }
        if (o.admin.port !== 0 && o.admin.port === publicPort) {
          throw new PersistenceConfigError(`ADMIN_PORT must differ from the public port (${publicPort})`);
        }
        admin = await buildAdminApp({
          token,
          keys,
          accounting,
          store: deps.store,
          state,
          log: adminLog,
          metrics,
          onKeyChanged: (id) => {
            authenticator?.invalidateKey(id);
            void events?.publishKeyChange(id).catch((err) => log.warn({ err }, 'key change not published'));
          },
        });
        await admin.listen({ port: o.admin.port, host });
        const addr = admin.server.address();
        const url = `http://${host}:${typeof addr === 'object' && addr ? addr.port : o.admin.port}`;
        await lock?.update({ adminUrl: url, adminToken: o.admin.token ? undefined : token });
        adminLog.info(
          { url, token: o.admin.token ? 'ADMIN_TOKEN' : 'generated (in the data directory lock file)' },
          'admin API listening',
        );
        return url;
      },
      async close() {
        clearInterval(retention);
        authenticator?.stop();
        await admin?.close();
        await recorder.close();
        await openDb.close();
        await lock?.release();
      },
    };
  } catch (err) {
    await db?.close().catch(() => {});
    await lock?.release();
    throw err;
  }
}

function startRetention(
  accounting: PrismaAccounting,
  days: number,
  log: pino.Logger,
): NodeJS.Timeout | undefined {
  if (days <= 0) return undefined;
  const prune = () =>
    accounting
      .pruneLogs(new Date(Date.now() - days * 86_400_000))
      .then((n) => n > 0 && log.info({ deleted: n, days }, 'old request logs deleted'))
      .catch((err) => log.warn({ err: (err as Error).message }, 'request log retention failed'));
  const t = setInterval(prune, 3_600_000);
  t.unref();
  return t;
}
