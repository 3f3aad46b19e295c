import { createHash } from 'node:crypto';
import {
  type ConfigurationOptions,
  CoordinationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  Observable,
  type ObservableMiddleware,
  PatchStrategy,
  setHeaderOptions,
} from '@kubernetes/client-node';
import type { Dispatcher } from 'undici';

/** The Kubernetes edge: config loading, API clients and error helpers, in one place. */

export const GROUP = 'kuberelay.io';
export const VERSION = 'v1alpha1';
export const FIELD_MANAGER = 'kuberelay-operator';

export interface Kube {
  kc: KubeConfig;
  core: CoreV1Api;
  custom: CustomObjectsApi;
  coordination: CoordinationV1Api;
}

/** In-cluster config when running in a pod, otherwise KUBECONFIG / ~/.kube/config. */
export function loadKube(kubeconfig?: string): Kube {
  const kc = new KubeConfig();
  if (kubeconfig) kc.loadFromFile(kubeconfig);
  else kc.loadFromDefault();
  reuseDispatchers(kc);
  return {
    kc,
    core: kc.makeApiClient(CoreV1Api),
    custom: kc.makeApiClient(CustomObjectsApi),
    coordination: kc.makeApiClient(CoordinationV1Api),
  };
}

type DispatcherFactory = (cluster: unknown, agentOptions: unknown) => Dispatcher | undefined;

/**
 * client-node 2.0 builds a new undici Agent for every request when TLS options are set (always,
 * with a cluster CA): each call pays a TLS handshake, and the Agents with their keep-alive
 * sockets pile up (most of the operator's memory and reconcile time at 1,000 Channels). One
 * Agent per distinct TLS identity is reused instead; a rotated client certificate gets a new one.
 */
function reuseDispatchers(kc: KubeConfig) {
  const target = kc as unknown as { createDispatcher: DispatcherFactory };
  const create = target.createDispatcher.bind(kc);
  const cache = new Map<string, Dispatcher | undefined>();
  target.createDispatcher = (cluster, agentOptions) => {
    const key = createHash('sha256')
      .update(JSON.stringify(kc.createDispatcherOptions(cluster as never, agentOptions as never)))
      .digest('hex');
    if (!cache.has(key)) {
      // Only the newest identity is kept: an old certificate's Agent closes once idle.
      for (const old of cache.values()) void old?.close().catch(() => {});
      cache.clear();
      cache.set(key, create(cluster, agentOptions));
    }
    return cache.get(key);
  };
}

export const serverSideApply = () => setHeaderOptions('Content-Type', PatchStrategy.ServerSideApply);
export const mergePatch = () => setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

/** How long one unary API call may take (the API server's own default request timeout is 60 s). */
export const REQUEST_TIMEOUT_MS = 15_000;

/**
 * Request options that abort the call when `signal` fires (a hanging API server, a lost lease),
 * on top of `opt` (e.g. serverSideApply()).
 */
export function withSignal(
  signal: AbortSignal,
  opt?: ConfigurationOptions<ObservableMiddleware>,
  timeoutMs = REQUEST_TIMEOUT_MS,
): ConfigurationOptions<ObservableMiddleware> {
  const abort: ObservableMiddleware = {
    pre: (ctx) => {
      // Every call is bounded on its own too: one that never answers would otherwise hold the
      // reconcile loop (runs are never concurrent) until undici's 5-minute timeouts.
      ctx.setSignal(AbortSignal.any([signal, AbortSignal.timeout(timeoutMs)]));
      return new Observable(signal.aborted ? Promise.reject(signal.reason) : Promise.resolve(ctx));
    },
    post: (res) => new Observable(Promise.resolve(res)),
  };
  return { ...opt, middleware: [...(opt?.middleware ?? []), abort], middlewareMergeStrategy: 'append' };
}

export function statusCode(err: unknown): number | undefined {
  const e = err as { code?: unknown; statusCode?: unknown } | undefined;
  const c = e?.code ?? e?.statusCode;
  return typeof c === 'number' ? c : undefined;
}

/** A short description of an API error, without request bodies (which may carry secrets). */
export function describeError(err: unknown): string {
  const code = statusCode(err);
  const body = (err as { body?: unknown } | undefined)?.body;
  let message: string | undefined;
  if (typeof body === 'string') {
    try {
      message = (JSON.parse(body) as { message?: string }).message;
    } catch {
      message = undefined;
    }
  } else if (body && typeof body === 'object') {
    message = (body as { message?: string }).message;
  }
  return `${code ?? 'error'}: ${message ?? (err as Error)?.message ?? String(err)}`;
}
