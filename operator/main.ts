import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { hostname } from 'node:os';
import pino, { type Logger } from 'pino';
import { describeError, type Kube, loadKube } from '../kube/client.ts';
import { logDestination, logFormatFromEnv } from '../relay/logger.ts';
import { EventRecorder } from './events.ts';
import { LeaderElector } from './leader.ts';
import { createOperatorMetrics, type OperatorMetrics } from './metrics.ts';
import { type FleetView, Reconciler } from './reconciler.ts';

export interface OperatorOptions {
  kubeconfig?: string;
  /** Where the operator runs; the config Secret and the Lease live here by default. */
  namespace: string;
  namespaces: string[] | '*';
  configSecret: { namespace: string; name: string };
  leaseName: string;
  metricsPort: number;
  metricsHost?: string;
  identity?: string;
  fleet?: FleetView;
  /** Opens a fleet view on this Redis (pod reports, spend) when `fleet` is not given. */
  redisUrl?: string;
  redisPrefix?: string;
  logLevel?: string;
  leaseDurationMs?: number | undefined;
  renewDeadlineMs?: number | undefined;
  retryPeriodMs?: number | undefined;
}

export interface RunningOperator {
  reconciler: Reconciler;
  elector: LeaderElector;
  metrics: OperatorMetrics;
  kube: Kube;
  log: Logger;
  server: Server;
  port: number;
  /** Hands leadership over (releases the Lease) and stops watching. */
  shutdown(): Promise<void>;
}

export async function startOperator(o: OperatorOptions): Promise<RunningOperator> {
  const options = { level: o.logLevel ?? process.env.LOG_LEVEL ?? 'info', base: { component: 'operator' } };
  const destination = logDestination(logFormatFromEnv());
  const log = destination ? pino(options, destination) : pino(options);
  const kube = loadKube(o.kubeconfig);
  const metrics = createOperatorMetrics();
  const identity = o.identity ?? `${process.env.POD_NAME ?? hostname()}-${randomBytes(3).toString('hex')}`;
  // Loaded only with REDIS_URL (not in a default install): ioredis and the store cost ~10 MB RSS.
  const redis =
    !o.fleet && o.redisUrl
      ? await (await import('./fleet.ts')).openRedisFleet(o.redisUrl, o.redisPrefix)
      : undefined;
  const events = new EventRecorder({
    core: kube.core,
    log,
    component: 'kuberelay-operator',
    host: process.env.POD_NAME ?? hostname(),
    onResult: (result) => metrics.events.inc({ result }),
  });
  const reconciler = new Reconciler({
    kube,
    events,
    namespaces: o.namespaces,
    configSecret: o.configSecret,
    fleet: o.fleet ?? redis?.fleet,
    metrics,
    log,
  });

  const server = createServer((req, res) => {
    const path = req.url?.split('?')[0];
    if (path === '/metrics') {
      metrics.registry.metrics().then(
        (text) => {
          res.writeHead(200, { 'content-type': metrics.registry.contentType });
          res.end(text);
        },
        () => res.writeHead(500).end(),
      );
    } else if (path === '/healthz') {
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok"}');
    } else if (path === '/readyz') {
      const ok = reconciler.synced;
      res
        .writeHead(ok ? 200 : 503, { 'content-type': 'application/json' })
        .end(JSON.stringify(ok ? { status: 'ok' } : { status: 'error', message: 'watches not synced yet' }));
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve) => server.listen(o.metricsPort, o.metricsHost ?? '0.0.0.0', resolve));
  const port = (server.address() as { port: number }).port;

  await reconciler.start();
  const elector = new LeaderElector(kube.coordination, {
    namespace: o.namespace,
    name: o.leaseName,
    identity,
    leaseDurationMs: o.leaseDurationMs,
    renewDeadlineMs: o.renewDeadlineMs,
    retryPeriodMs: o.retryPeriodMs,
    onStartedLeading: () => {
      log.info({ identity }, 'became leader');
      reconciler.setLeader(true);
    },
    onStoppedLeading: () => {
      log.info({ identity }, 'no longer leader');
      reconciler.setLeader(false);
    },
    onError: (err) => log.warn({ err: describeError(err) }, 'leader election'),
  });
  elector.start();
  log.info(
    {
      identity,
      lease: elector.timings,
      namespaces: o.namespaces,
      configSecret: `${o.configSecret.namespace}/${o.configSecret.name}`,
      port,
    },
    'operator started',
  );

  let closing: Promise<void> | undefined;
  const shutdown = () => {
    closing ??= (async () => {
      // Writes stop (and an in-flight reconcile is cancelled) before the Lease is handed over.
      await reconciler.stop();
      await elector.stop();
      await events.close();
      await redis?.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    })();
    return closing;
  };
  return { reconciler, elector, metrics, kube, log, server, port, shutdown };
}
