import type { FastifyBaseLogger } from 'fastify';
import { MemoryStore } from '../core/state/memory-store.ts';
import type { StateStore } from '../core/state/store.ts';
import { loadKube } from '../kube/client.ts';
import { type AuthMode, buildRelayApp, type RelayApp } from './app.ts';
import { FileConfigSource } from './file-source.ts';
import { SecretConfigSource } from './secret-source.ts';

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
}

export interface RunningRelay extends RelayApp {
  url: string;
  source: FileConfigSource | undefined;
  secretSource: SecretConfigSource | undefined;
  store: StateStore;
  /** Stop accepting, finish in-flight requests up to the deadline, then cut what is left. */
  shutdown(): Promise<void>;
}

export async function startRelay(opts: RelayProcessOptions): Promise<RunningRelay> {
  const store = new MemoryStore();
  const relay = await buildRelayApp({
    store,
    auth: opts.auth,
    maxAttempts: opts.maxAttempts,
    bodyLimit: opts.bodyLimit,
    logger: {
      level: opts.logLevel,
      // Secrets never reach the logs, whatever a future log line includes.
      redact: ['req.headers.authorization', 'req.headers["x-api-key"]', '*.apiKey', 'apiKey'],
    },
  });
  const { app } = relay;
  if (opts.auth === 'none') {
    app.log.warn(
      'KUBERELAY_AUTH=none: client authentication is OFF, anyone who can reach this port can use every channel',
    );
  }
  const source = opts.configFile ? new FileConfigSource(opts.configFile, relay.state) : undefined;
  let secretSource: SecretConfigSource | undefined;
  if (opts.configSecret) {
    // The mounted copy of the Secret only bridges an unreachable API server at start.
    if (source) await source.start().catch((err) => app.log.warn({ err }, 'config file fallback unusable'));
    secretSource = new SecretConfigSource(loadKube(opts.kubeconfig), opts.configSecret, relay.state);
    await secretSource.start();
  } else if (source) {
    await source.start();
  } else {
    throw new Error('give --config FILE or --config-secret NAMESPACE/NAME');
  }
  await app.listen({ port: opts.port, host: opts.host });
  const addr = app.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : opts.port;

  let closing: Promise<void> | undefined;
  const shutdown = () => {
    closing ??= (async () => {
      relay.state.draining = true;
      source?.stop();
      await secretSource?.stop();
      const deadline = setTimeout(() => {
        app.log.warn('shutdown deadline reached; closing remaining connections');
        app.server.closeAllConnections();
      }, opts.shutdownTimeoutMs);
      // Keep-alive connections become idle as their last response ends; close them as they do.
      const sweep = setInterval(() => app.server.closeIdleConnections(), 100);
      try {
        await app.close();
      } finally {
        clearTimeout(deadline);
        clearInterval(sweep);
        await store.close();
      }
    })();
    return closing;
  };
  return { ...relay, url: `http://${opts.host}:${port}`, source, secretSource, store, shutdown };
}

/** SIGTERM/SIGINT -> graceful shutdown, then exit. Errors never take the process down silently. */
export function handleSignals(log: FastifyBaseLogger, shutdown: () => Promise<void>) {
  const onSignal = (signal: string) => {
    log.info({ signal }, 'shutting down');
    shutdown().then(
      () => process.exit(0),
      (err) => {
        log.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
  process.on('unhandledRejection', (err) => log.error({ err }, 'unhandled rejection'));
}
