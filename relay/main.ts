import type { FastifyBaseLogger } from 'fastify';
import type { Logger } from 'pino';
import { fanOut } from '../core/accounting.ts';
import type { StateStore } from '../core/state/store.ts';
import { JobPlane } from '../jobs/plane.ts';
import { AccessLog, type AccessLogOptions, type AccessLogOutput, accessLogOutput } from './access-log.ts';
import { type AuthMode, buildRelayApp, type RelayApp } from './app.ts';
import { ChannelStats } from './channel-stats.ts';
import { connectionDrain } from './drain.ts';
import { FileConfigSource } from './file-source.ts';
import type { HttpTimeouts } from './http-timeouts.ts';
import { bufferedLogStream, flushLog } from './log-buffer.ts';
import { type LogFormat, logDestination } from './logger.ts';
import { settleAfterStart } from './memory-pacer.ts';
import { createRelayMetrics } from './metrics.ts';
import type { Persistence } from './persistence.ts';
import { PersistenceConfigError, type PersistenceOptions } from './persistence-config.ts';
import { openPinStore } from './pin-store.ts';
import { type PodReporter, startPodReporter } from './pod-reporter.ts';
import { DEFAULT_REQUEST_LOG_OPTIONS } from './request-log.ts';
import type { SecretConfigSource } from './secret-source.ts';
import { openSharedState, type SharedState, type SharedStateOptions } from './shared-state.ts';
import { loadTracer, tracingEnabled } from './tracer-loader.ts';

export type MetricsListener = 'public' | 'admin';

export interface RelayProcessOptions {
  /** A YAML of objects (standalone), or the mounted config Secret's JSON (fallback in cluster). */
  configFile?: string;
  /** In cluster: the Secret the operator writes, followed through the API. */
  configSecret?: { namespace: string; name: string };
  kubeconfig?: string;
  port: number;
  host: string;
  auth: AuthMode;
  logLevel: string;
  /** How long SIGTERM waits for in-flight requests and streams before cutting them. */
  shutdownTimeoutMs: number;
  maxAttempts?: number;
  bodyLimit?: number;
  trustProxy?: boolean | number | string[];
  /** Deadlines for receiving requests and idle connections (http-timeouts.ts); defaults when absent. */
  timeouts?: Partial<HttpTimeouts>;
  /** Where GET /metrics is served: the public port (default) or the admin listener only. */
  metricsListener?: MetricsListener;
  /** Keys, request logs, usage and the admin API (persistence.ts); none when absent. */
  persistence?: PersistenceOptions | false;
  /** Redis (REDIS_URL) or in-process state (shared-state.ts); in-process when absent. */
  shared?: SharedStateOptions;
  /** One line per request (access-log.ts), sampled like the request log; on by default. */
  accessLog?: AccessLogOptions | false;
  /** LOG_FORMAT: `json` (default) or `pretty`. */
  logFormat?: LogFormat;
}

export interface RunningRelay extends RelayApp {
  url: string;
  source: FileConfigSource | undefined;
  secretSource: SecretConfigSource | undefined;
  store: StateStore;
  persistence: Persistence | undefined;
  adminUrl: string | undefined;
  shared: SharedState;
  /** Writes this pod's report to Redis (with REDIS_URL). */
  reporter: PodReporter | undefined;
  /** Stop accepting, finish in-flight requests up to the deadline, then cut what is left. */
  shutdown(): Promise<void>;
}

export async function startRelay(opts: RelayProcessOptions): Promise<RunningRelay> {
  const metricsOnAdmin = opts.metricsListener === 'admin';
  if (metricsOnAdmin && !opts.persistence) {
    throw new PersistenceConfigError(
      'KUBERELAY_METRICS_LISTENER=admin needs the admin API, which runs with a database (client auth on, or DATABASE_URL)',
    );
  }
  const shared = await openSharedState(opts.shared);
  const store = shared.store;
  const stats = new ChannelStats();
  // One log destination for the process (the database's logger too), buffered (log-buffer.ts).
  const logStream = opts.logFormat === 'pretty' ? logDestination('pretty')! : bufferedLogStream();
  // Exemplars (a latency bucket's trace id) only when there are traces to link to.
  const metrics = createRelayMetrics({ exemplars: tracingEnabled() });
  // Loaded only when used: Prisma and the drivers cost ~20 MB a relay without a database can skip.
  const persistence = opts.persistence
    ? await (await import('./persistence.ts')).startPersistence(opts.persistence, {
        auth: opts.auth,
        store,
        metrics,
        logLevel: opts.logLevel,
        logStream,
      })
    : undefined;
  // Loaded only with OTEL_EXPORTER_OTLP_ENDPOINT set: tracing off costs nothing (tracing.ts).
  const tracer = await loadTracer();
  let log: Logger | undefined;
  // Which channel each upstream object lives on: fleet-wide with Redis and/or the database.
  const pins = await openPinStore({
    connection: shared.connection,
    database: persistence?.db,
    log: () => log as unknown as FastifyBaseLogger,
  });
  let accessLines: AccessLogOutput | undefined;
  const accessLog =
    opts.accessLog === false
      ? undefined
      : new AccessLog(
          () => (accessLines ??= accessLogOutput(log!, logStream)),
          opts.accessLog ?? DEFAULT_REQUEST_LOG_OPTIONS,
        );
  const relay = await buildRelayApp({
    store,
    metrics,
    authenticator: persistence?.authenticator,
    recorder: fanOut(accessLog, persistence?.recorder),
    tracer,
    databaseUp: persistence && (() => persistence.health.up),
    limiter: shared.limiter,
    pins,
    stats,
    auth: opts.auth,
    maxAttempts: opts.maxAttempts,
    bodyLimit: opts.bodyLimit,
    trustProxy: opts.trustProxy,
    timeouts: opts.timeouts,
    publicMetrics: !metricsOnAdmin,
    // Async jobs live in the database: with one, this pod runs its share of the job plane.
    jobs: persistence
      ? (ctx) => new JobPlane({ ...ctx, db: persistence.db, store, pod: shared.pod })
      : undefined,
    logger: {
      level: opts.logLevel,
      // Secrets never reach the logs, whatever a future log line includes.
      redact: [
        'req.headers.authorization',
        'req.headers["x-api-key"]',
        '*.apiKey',
        'apiKey',
        '*.credentials',
        'credentials',
      ],
      stream: logStream,
    },
  });
  const { app } = relay;
  log = app.log as unknown as Logger;
  if (shared.connection) shared.connection.log = app.log;
  if (opts.auth === 'none') {
    app.log.warn(
      'KUBERELAY_AUTH=none: client authentication is OFF, anyone who can reach this port can use every channel',
    );
  }
  const streams = relay.streams;
  const drain = connectionDrain(app.server);
  const source = opts.configFile ? new FileConfigSource(opts.configFile, relay.state) : undefined;
  let secretSource: SecretConfigSource | undefined;
  if (opts.configSecret) {
    // The mounted copy of the Secret only bridges an unreachable API server at start.
    if (source) await source.start().catch((err) => app.log.warn({ err }, 'config file fallback unusable'));
    // Loaded only in cluster mode: the Kubernetes client costs ~60 MB a standalone relay does not need.
    const [{ loadKube }, { SecretConfigSource }] = await Promise.all([
      import('../kube/client.ts'),
      import('./secret-source.ts'),
    ]);
    secretSource = new SecretConfigSource(loadKube(opts.kubeconfig), opts.configSecret, relay.state);
    await secretSource.start();
  } else if (source) {
    await source.start();
  } else {
    throw new Error('give --config FILE or --config-secret NAMESPACE/NAME');
  }
  settleAfterStart(); // start-up garbage out before the first request (relay/memory-pacer.ts)
  await app.listen({ port: opts.port, host: opts.host });
  relay.jobs?.start();
  const addr = app.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : opts.port;
  const adminUrl = await persistence?.startAdmin(
    relay.state,
    port,
    metricsOnAdmin ? relay.serveMetrics : undefined,
  );
  const reporter = shared.connection
    ? startPodReporter({
        connection: shared.connection,
        pod: shared.pod,
        state: relay.state,
        store,
        stats,
        metrics,
        log: app.log,
        intervalMs: shared.reportIntervalMs,
        ...(relay.jobs ? { jobs: () => relay.jobs!.counts } : {}),
      })
    : undefined;

  let closing: Promise<void> | undefined;
  const shutdown = () => {
    closing ??= (async () => {
      relay.state.draining = true;
      drain.start();
      source?.stop();
      await secretSource?.stop();
      const deadline = setTimeout(() => {
        app.log.warn('shutdown deadline reached; closing remaining connections');
        void streams.endAll().then(() => app.server.closeAllConnections());
      }, opts.shutdownTimeoutMs);
      // Keep-alive connections become idle as their last response ends; close them once quiet.
      const sweep = setInterval(() => app.server.closeIdleConnections(), 100);
      try {
        await app.close();
      } finally {
        clearTimeout(deadline);
        clearInterval(sweep);
        await persistence?.close();
        await reporter?.stop();
        await store.close();
        await tracer?.shutdown().catch((err) => app.log.warn({ err }, 'trace export at shutdown failed'));
        if ('stop' in logStream) logStream.stop();
        await flushLog(app.log);
      }
    })();
    return closing;
  };
  if (metricsOnAdmin && !adminUrl) {
    await shutdown();
    throw new PersistenceConfigError('KUBERELAY_METRICS_LISTENER=admin needs the admin API: set ADMIN_TOKEN');
  }
  return {
    ...relay,
    url: `http://${opts.host}:${port}`,
    source,
    secretSource,
    store,
    persistence,
    adminUrl,
    shared,
    reporter,
    shutdown,
  };
}

/** SIGTERM/SIGINT -> graceful shutdown, then exit. Errors never take the process down silently. */
export function handleSignals(log: FastifyBaseLogger, shutdown: () => Promise<void>) {
  const onSignal = (signal: string) => {
    log.info({ signal }, 'shutting down');
    // The log is buffered (log-buffer.ts): its last lines leave before the process does.
    shutdown().then(
      () => flushLog(log).then(() => process.exit(0)),
      (err) => {
        log.error({ err }, 'shutdown failed');
        void flushLog(log).then(() => process.exit(1));
      },
    );
  };
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
  process.on('unhandledRejection', (err) => log.error({ err }, 'unhandled rejection'));
}
