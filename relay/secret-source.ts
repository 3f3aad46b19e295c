import type { KubernetesListObject, V1Secret } from '@kubernetes/client-node';
import { decodeSnapshot } from '../core/config/snapshot.ts';
import { describeError, type Kube } from '../kube/client.ts';
import { ResilientWatch } from '../kube/watch.ts';
import type { RelayState } from './relay-state.ts';

/**
 * In-cluster mode: follow the one Secret the operator writes. The watch is narrowed to that name
 * with a field selector, so the relay's RBAC can be limited to it with `resourceNames`. Each
 * version is validated by RelayState before it is served; a bad one is refused and the last good
 * one keeps serving.
 */
export class SecretConfigSource {
  readonly #ref: { namespace: string; name: string };
  readonly #state: RelayState;
  readonly #watch: ResilientWatch<V1Secret>;
  #lastVersion: string | undefined;

  constructor(kube: Kube, ref: { namespace: string; name: string }, state: RelayState) {
    this.#ref = ref;
    this.#state = state;
    const { namespace, name } = ref;
    const fieldSelector = `metadata.name=${name}`;
    this.#watch = new ResilientWatch<V1Secret>(kube.kc, {
      resource: 'config-secret',
      path: `/api/v1/namespaces/${namespace}/secrets`,
      fieldSelector,
      list: () =>
        kube.core.listNamespacedSecret({ namespace, fieldSelector }) as Promise<
          KubernetesListObject<V1Secret>
        >,
      onChange: () => this.#apply(),
      onRestart: () => {},
      resyncMs: 60_000,
      backoff: { initialMs: 200, maxMs: 10_000 },
    });
  }

  get source(): string {
    return `secret ${this.#ref.namespace}/${this.#ref.name}`;
  }

  async start(): Promise<void> {
    await this.#watch.start();
  }

  stop(): Promise<void> {
    return this.#watch.stop();
  }

  #apply() {
    const secret = this.#watch.list().find((s) => s.metadata?.name === this.#ref.name);
    if (!secret) return; // deleted: keep serving what we have
    const version = secret.metadata?.resourceVersion;
    if (version !== undefined && version === this.#lastVersion) return;
    this.#lastVersion = version;
    let snapshot: unknown;
    try {
      snapshot = decodeSnapshot(secret.data);
    } catch (err) {
      this.#state.reject(this.source, [`config.json is not valid JSON: ${describeError(err)}`]);
      return;
    }
    if (snapshot === undefined) {
      this.#state.reject(this.source, ['the Secret has no config.json']);
      return;
    }
    this.#state.offer(snapshot, this.source);
  }
}
