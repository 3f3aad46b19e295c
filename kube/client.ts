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
  return {
    kc,
    core: kc.makeApiClient(CoreV1Api),
    custom: kc.makeApiClient(CustomObjectsApi),
    coordination: kc.makeApiClient(CoordinationV1Api),
  };
}

export const serverSideApply = () => setHeaderOptions('Content-Type', PatchStrategy.ServerSideApply);
export const mergePatch = () => setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

/**
 * Request options that abort the call when `signal` fires (a hanging API server, a lost lease),
 * on top of `opt` (e.g. serverSideApply()).
 */
export function withSignal(
  signal: AbortSignal,
  opt?: ConfigurationOptions<ObservableMiddleware>,
): ConfigurationOptions<ObservableMiddleware> {
  const abort: ObservableMiddleware = {
    pre: (ctx) => {
      ctx.setSignal(signal);
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
