import type { KubernetesObject } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { type ObjectResult, renderRelayConfig, type SourcedObject } from '../core/config/render.ts';
import {
  CONFIG_SECRET_KEY,
  decodeSnapshot,
  encodeSnapshot,
  GENERATION_ANNOTATION,
  HASH_ANNOTATION,
} from '../core/config/snapshot.ts';
import {
  describeError,
  FIELD_MANAGER,
  GROUP,
  type Kube,
  serverSideApply,
  statusCode,
  VERSION,
} from '../kube/client.ts';
import { ResilientWatch } from '../kube/watch.ts';
import type { PodReport } from '../redis/pod-reports.ts';
import type { OperatorMetrics } from './metrics.ts';
import {
  type ChannelStatus,
  type Condition,
  channelStatus,
  type PolicyStatus,
  policyStatus,
  sameStatus,
} from './status.ts';

/**
 * Level-triggered reconcile, the prometheus-operator way: any change to a Channel, a
 * RateLimitPolicy or a Secret schedules one full render of every object into one RelayConfig
 * (the relay's own render function), written with server-side apply into one Secret. Then each
 * object's status is derived from the render and the relay pods' reports and patched only when
 * it changed. Only the leader writes.
 */

/** What the relay fleet reports (Redis): pod reports and spend counters. */
export interface FleetView {
  reports(): Promise<PodReport[]>;
  spend(channelId: string): Promise<{ today: number; month: number }>;
}

export interface ReconcilerOptions {
  kube: Kube;
  /** Namespaces to watch, or '*' for all (needs cluster-wide RBAC). */
  namespaces: string[] | '*';
  configSecret: { namespace: string; name: string };
  fleet?: FleetView;
  metrics: OperatorMetrics;
  log: Logger;
  /** How often the leader folds pod reports into status (default 2 s). */
  statusIntervalMs?: number;
  /** Usage-only status changes are written at most this often per object (default 15 s). */
  usageWriteIntervalMs?: number;
  resyncMs?: number;
}

type Obj = KubernetesObject & { spec?: Record<string, unknown>; status?: { conditions?: Condition[] } };

const PLURAL: Record<string, string> = { Channel: 'channels', RateLimitPolicy: 'ratelimitpolicies' };

export class Reconciler {
  readonly #o: ReconcilerOptions;
  readonly #watches: { kind: string; watch: ResilientWatch<Obj> }[] = [];
  #leader = false;
  #timer: NodeJS.Timeout | undefined;
  #statusTimer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #dirty = false;
  /** Last config written (or found) in the Secret. */
  #written: { hash: string; generation: number } | undefined;
  /** Last status written per object, and when: suppresses repeats until the cache catches up. */
  readonly #statusMemo = new Map<string, { status: unknown; at: number; usageOnlyAt: number }>();

  constructor(opts: ReconcilerOptions) {
    this.#o = opts;
  }

  get leader(): boolean {
    return this.#leader;
  }

  /** Synced when every watch has listed once (before that a render would drop objects). */
  get synced(): boolean {
    return this.#watches.every((w) => w.watch.synced);
  }

  async start(): Promise<void> {
    const { kube, namespaces } = this.#o;
    const scopes = namespaces === '*' ? [undefined] : namespaces;
    for (const ns of scopes) {
      const crdPath = (plural: string) =>
        ns ? `/apis/${GROUP}/${VERSION}/namespaces/${ns}/${plural}` : `/apis/${GROUP}/${VERSION}/${plural}`;
      for (const kind of ['Channel', 'RateLimitPolicy']) {
        const plural = PLURAL[kind]!;
        this.#add(kind, crdPath(plural), () =>
          ns
            ? kube.custom.listNamespacedCustomObject({
                group: GROUP,
                version: VERSION,
                namespace: ns,
                plural,
              })
            : kube.custom.listClusterCustomObject({ group: GROUP, version: VERSION, plural }),
        );
      }
      this.#add('Secret', ns ? `/api/v1/namespaces/${ns}/secrets` : '/api/v1/secrets', async () =>
        ns ? kube.core.listNamespacedSecret({ namespace: ns }) : kube.core.listSecretForAllNamespaces(),
      );
    }
    await Promise.all(this.#watches.map((w) => w.watch.start()));
    this.#statusTimer = setInterval(() => this.schedule(), this.#o.statusIntervalMs ?? 2000);
    this.#statusTimer.unref();
  }

  async stop() {
    clearTimeout(this.#timer);
    clearInterval(this.#statusTimer);
    await Promise.all(this.#watches.map((w) => w.watch.stop()));
    await this.#running;
  }

  setLeader(leader: boolean) {
    this.#leader = leader;
    this.#o.metrics.leader.set(leader ? 1 : 0);
    this.#written = undefined; // re-read the Secret: another leader may have written since
    if (leader) this.schedule();
  }

  /** Coalesces bursts of events into one reconcile; runs are never concurrent. */
  schedule() {
    if (this.#timer) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      if (this.#running) {
        this.#dirty = true;
        return;
      }
      this.#running = this.#reconcile().finally(() => {
        this.#running = undefined;
        if (this.#dirty) {
          this.#dirty = false;
          this.schedule();
        }
      });
    }, 20);
  }

  #add(kind: string, path: string, list: () => Promise<unknown>) {
    const watch = new ResilientWatch<Obj>(this.#o.kube.kc, {
      resource: `${kind.toLowerCase()}s`,
      path,
      list: list as never,
      onChange: () => this.schedule(),
      onRestart: (resource, reason) => {
        this.#o.metrics.watchRestarts.inc({
          resource,
          reason: reason.startsWith('error') ? 'error' : reason,
        });
        this.#o.log.warn({ resource, reason }, 'watch re-established');
      },
      resyncMs: this.#o.resyncMs,
    });
    this.#watches.push({ kind, watch });
  }

  /** Cached objects of a kind, with apiVersion/kind set (typed client lists drop them on items). */
  #objects(kind: string): Obj[] {
    const apiVersion = kind === 'Secret' ? 'v1' : `${GROUP}/${VERSION}`;
    return this.#watches
      .filter((w) => w.kind === kind)
      .flatMap((w) => w.watch.list().map((o) => ({ ...o, apiVersion, kind })));
  }

  async #reconcile() {
    const m = this.#o.metrics;
    if (!this.#leader) return;
    if (!this.synced) {
      m.reconciles.inc({ result: 'skipped_not_synced' });
      return;
    }
    const end = m.reconcileDuration.startTimer();
    try {
      const channels = this.#objects('Channel');
      const policies = this.#objects('RateLimitPolicy');
      const secrets = this.#objects('Secret');
      const sourced: SourcedObject[] = [...secrets, ...channels, ...policies].map((object) => ({ object }));
      const previous = await this.#currentConfig();
      const { config, results } = renderRelayConfig(sourced, { generation: previous.generation });
      if (config.hash !== previous.hash) {
        config.generation = previous.generation + 1;
        await this.#writeConfig(config.hash, config.generation, encodeSnapshot(config));
      }
      m.configGeneration.set(this.#written?.generation ?? 0);
      await this.#writeStatuses(channels, policies, results);
      m.reconciles.inc({ result: 'success' });
    } catch (err) {
      m.reconciles.inc({ result: 'error' });
      this.#o.log.error({ err: describeError(err) }, 'reconcile failed; retrying');
      setTimeout(() => this.schedule(), 1000).unref();
    } finally {
      end();
    }
  }

  async #currentConfig(): Promise<{ hash: string; generation: number }> {
    if (this.#written) return this.#written;
    const { namespace, name } = this.#o.configSecret;
    try {
      const secret = await this.#o.kube.core.readNamespacedSecret({ namespace, name });
      const ann = secret.metadata?.annotations ?? {};
      let generation = Number(ann[GENERATION_ANNOTATION] ?? 0);
      if (!Number.isFinite(generation)) generation = 0;
      if (!ann[GENERATION_ANNOTATION]) {
        const snap = decodeSnapshot(secret.data) as { generation?: number } | undefined;
        generation = snap?.generation ?? 0;
      }
      this.#written = { hash: ann[HASH_ANNOTATION] ?? '', generation };
    } catch (err) {
      if (statusCode(err) !== 404) throw err;
      this.#written = { hash: '', generation: 0 };
    }
    return this.#written;
  }

  async #writeConfig(hash: string, generation: number, b64: string) {
    const { namespace, name } = this.#o.configSecret;
    try {
      await this.#o.kube.core.patchNamespacedSecret(
        {
          namespace,
          name,
          fieldManager: FIELD_MANAGER,
          force: true,
          body: {
            apiVersion: 'v1',
            kind: 'Secret',
            metadata: {
              name,
              namespace,
              labels: {
                'app.kubernetes.io/managed-by': 'kuberelay-operator',
                'app.kubernetes.io/name': 'kuberelay',
              },
              annotations: { [HASH_ANNOTATION]: hash, [GENERATION_ANNOTATION]: String(generation) },
            },
            type: 'Opaque',
            data: { [CONFIG_SECRET_KEY]: b64 },
          },
        },
        serverSideApply(),
      );
      this.#written = { hash, generation };
      this.#o.metrics.configWrites.inc({ result: 'success' });
      this.#o.log.info(
        { generation, hash: hash.slice(0, 12), secret: `${namespace}/${name}` },
        'relay config written',
      );
    } catch (err) {
      this.#o.metrics.configWrites.inc({ result: 'error' });
      this.#written = undefined;
      throw err;
    }
  }

  async #writeStatuses(channels: Obj[], policies: Obj[], results: ObjectResult[]) {
    const now = Date.now();
    const byKey = new Map(results.map((r) => [`${r.kind}/${r.namespace}/${r.name}`, r]));
    let reports: PodReport[] = [];
    if (this.#o.fleet) {
      try {
        reports = await this.#o.fleet.reports();
      } catch (err) {
        this.#o.log.warn({ err: describeError(err) }, 'cannot read relay reports; health left as is');
        return;
      }
    }
    const counts = new Map<string, number>();
    const writes: Promise<void>[] = [];
    for (const obj of channels) {
      const r = byKey.get(`Channel/${obj.metadata!.namespace}/${obj.metadata!.name}`);
      if (!r) continue;
      count(counts, r);
      const id = `${r.namespace}/${r.name}`;
      const spend = this.#o.fleet ? await this.#o.fleet.spend(id).catch(() => undefined) : undefined;
      const desired = channelStatus(
        { result: r, suspend: obj.spec?.suspend === true, id, reports, spend, now },
        obj.status?.conditions,
      );
      writes.push(this.#maybePatch('Channel', obj, desired, now));
    }
    for (const obj of policies) {
      const r = byKey.get(`RateLimitPolicy/${obj.metadata!.namespace}/${obj.metadata!.name}`);
      if (!r) continue;
      count(counts, r);
      writes.push(
        this.#maybePatch('RateLimitPolicy', obj, policyStatus(r, obj.status?.conditions, now), now),
      );
    }
    this.#o.metrics.objects.reset();
    for (const [k, n] of counts) {
      const [kind, accepted] = k.split('|');
      this.#o.metrics.objects.set({ kind: kind!, accepted: accepted! }, n);
    }
    await Promise.all(writes);
  }

  async #maybePatch(kind: string, obj: Obj, desired: ChannelStatus | PolicyStatus, now: number) {
    const key = `${kind}/${obj.metadata!.namespace}/${obj.metadata!.name}`;
    if (sameStatus(obj.status, desired)) {
      this.#statusMemo.delete(key);
      return;
    }
    const memo = this.#statusMemo.get(key);
    if (memo && sameStatus(memo.status, desired)) return; // written; the watch has not caught up yet
    // Usage counters move with every request: write them at a slower pace than real changes.
    const usageOnly = sameStatus(
      { ...(obj.status ?? {}), usage: undefined, relays: undefined },
      {
        ...desired,
        usage: undefined,
        relays: undefined,
      },
    );
    if (usageOnly && memo && now - memo.usageOnlyAt < (this.#o.usageWriteIntervalMs ?? 15_000)) return;
    const { namespace, name } = obj.metadata as { namespace: string; name: string };
    try {
      await this.#o.kube.custom.patchNamespacedCustomObjectStatus(
        {
          group: GROUP,
          version: VERSION,
          namespace,
          plural: PLURAL[kind]!,
          name,
          fieldManager: FIELD_MANAGER,
          force: true,
          body: { apiVersion: `${GROUP}/${VERSION}`, kind, metadata: { name, namespace }, status: desired },
        },
        serverSideApply(),
      );
      this.#statusMemo.set(key, {
        status: desired,
        at: now,
        usageOnlyAt: usageOnly ? now : (memo?.usageOnlyAt ?? 0),
      });
      this.#o.metrics.statusWrites.inc({ kind, result: 'success' });
    } catch (err) {
      this.#o.metrics.statusWrites.inc({ kind, result: statusCode(err) === 404 ? 'gone' : 'error' });
      if (statusCode(err) !== 404)
        this.#o.log.warn({ err: describeError(err), object: key }, 'status write failed');
    }
  }
}

function count(counts: Map<string, number>, r: ObjectResult) {
  const accepted = r.conditions.find((c) => c.type === 'Accepted')?.status === 'True' ? 'true' : 'false';
  const k = `${r.kind}|${accepted}`;
  counts.set(k, (counts.get(k) ?? 0) + 1);
}
