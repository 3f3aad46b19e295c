import { DEFAULT_CONFIG_SECRET, parseSecretRef } from '../core/config/snapshot.ts';
import { startOperator } from '../operator/main.ts';

export async function runOperatorCommand(o: {
  namespace: string;
  watchNamespaces?: string;
  configSecret?: string;
  leaseName: string;
  kubeconfig?: string;
  metricsPort: number;
}) {
  const namespaces =
    o.watchNamespaces === '*'
      ? '*'
      : (o.watchNamespaces ?? o.namespace)
          .split(',')
          .map((n) => n.trim())
          .filter(Boolean);
  const op = await startOperator({
    kubeconfig: o.kubeconfig,
    namespace: o.namespace,
    namespaces,
    configSecret: parseSecretRef(o.configSecret ?? `${o.namespace}/${DEFAULT_CONFIG_SECRET}`),
    leaseName: o.leaseName,
    metricsPort: o.metricsPort,
    redisUrl: process.env.REDIS_URL || undefined,
    redisPrefix: process.env.KUBERELAY_REDIS_PREFIX || undefined,
    // Tests shorten the handover; production keeps client-go's defaults (15 s / 2 s).
    leaseDurationMs: envMs('KUBERELAY_LEASE_DURATION_MS'),
    retryPeriodMs: envMs('KUBERELAY_LEASE_RETRY_MS'),
  });
  const onSignal = (signal: string) => {
    op.log.info({ signal }, 'shutting down: handing over the lease');
    op.shutdown().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
  process.on('unhandledRejection', (err) => op.log.error({ err }, 'unhandled rejection'));
}

function envMs(name: string): number | undefined {
  const v = process.env[name];
  return v ? Number(v) : undefined;
}
