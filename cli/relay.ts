import { accessLogFromEnv } from '../relay/access-log.ts';
import type { AuthMode } from '../relay/app.ts';
import { maxBodyBytesFromEnv } from '../relay/body-limit.ts';
import { httpTimeoutsFromEnv } from '../relay/http-timeouts.ts';
import { logFormatFromEnv } from '../relay/logger.ts';
import { handleSignals, type MetricsListener, type RunningRelay, startRelay } from '../relay/main.ts';
import { persistenceFromEnv } from '../relay/persistence-config.ts';
import { sharedStateFromEnv } from '../relay/shared-state.ts';

export function authModeFromEnv(): AuthMode {
  const v = process.env.KUBERELAY_AUTH || 'keys';
  if (v !== 'keys' && v !== 'none') throw new Error(`KUBERELAY_AUTH must be "keys" or "none", not "${v}"`);
  return v;
}

/** KUBERELAY_TRUST_PROXY: `true`, a number of hops, or comma-separated addresses/CIDRs. */
export function trustProxyFromEnv(v = process.env.KUBERELAY_TRUST_PROXY): boolean | number | string[] {
  if (!v || v === 'false') return false;
  if (v === 'true') return true;
  if (/^\d+$/.test(v)) return Number(v);
  return v
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

/** KUBERELAY_METRICS_LISTENER: `public` (GET /metrics on the public port) or `admin`. */
export function metricsListenerFromEnv(v = process.env.KUBERELAY_METRICS_LISTENER): MetricsListener {
  if (!v || v === 'public') return 'public';
  if (v === 'admin') return 'admin';
  throw new Error(`KUBERELAY_METRICS_LISTENER must be "public" or "admin", not "${v}"`);
}

/**
 * In cluster the admin API listens on 8081 (the chart's admin Service points there); standalone
 * on a free loopback port, found by `kuberelay keys` through the data directory's lock file.
 */
const IN_CLUSTER_ADMIN_PORT = 8081;

export async function runRelayCommand(o: {
  configFile?: string;
  configSecret?: { namespace: string; name: string };
  kubeconfig?: string;
  port: number;
  host: string;
  auth?: AuthMode;
}): Promise<RunningRelay> {
  const auth = o.auth ?? authModeFromEnv();
  const relay = await startRelay({
    configFile: o.configFile,
    configSecret: o.configSecret,
    kubeconfig: o.kubeconfig,
    port: o.port,
    host: o.host,
    auth,
    persistence: persistenceFromEnv(auth, process.env, o.configSecret ? IN_CLUSTER_ADMIN_PORT : 0),
    shared: sharedStateFromEnv(),
    trustProxy: trustProxyFromEnv(),
    bodyLimit: maxBodyBytesFromEnv(),
    timeouts: httpTimeoutsFromEnv(),
    metricsListener: metricsListenerFromEnv(),
    logLevel: process.env.LOG_LEVEL ?? 'info',
    logFormat: logFormatFromEnv(),
    accessLog: accessLogFromEnv(),
    shutdownTimeoutMs: Number(process.env.KUBERELAY_SHUTDOWN_TIMEOUT_MS ?? 25_000),
  });
  relay.app.log.info({ url: relay.url }, 'relay listening');
  handleSignals(relay.app.log, relay.shutdown);
  return relay;
}
