import { createHash } from 'node:crypto';
import type { KubernetesListObject, KubernetesObject, V1Secret } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { RelayConfig } from '../core/config/relay-config.ts';
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
  withSignal,
} from '../kube/client.ts';
import { ResilientWatch } from '../kube/watch.ts';
import type { PodReport } from '../redis/pod-reports.ts';
import { retryDelayMs } from './backoff.ts';
import type { EventRecorder } from './events.ts';
import type { OperatorMetrics } from './metrics.ts';
import { SecretRefs } from './secret-refs.ts';
import {
  type ChannelStatus,
  type Condition,
  channelStatus,
  channelStatusWithoutFleet,
  type PolicyStatus,
  policyStatus,
  sameStatus,
} from './status.ts';
import { statusEvents } from './status-events.ts';

/**
 * Level-triggered reconcile, the prometheus-operator way: any change to a Channel, a
 * RateLimitPolicy, a referenced Secret or the config Secret itself schedules one full render of
 * every object into one RelayConfig (the relay's own render function). The render is compared
 * with the config Secret *as it is in the cluster* (not a memo of the last write), so a deleted
 * or hand-edited Secret is written again. Then each object's status is derived from the render
 * and the relay pods' reports and patched only when it changed. Only the leader writes, and each
 * leadership term has an AbortSignal: losing the lease cancels whatever is in flight.
 */

/** What the relay fleet reports (Redis): pod reports and spend counters. */

/** The longest one reconcile run may take (1,000 Channels take ~2 s; see BENCHMARKS.md). */
const RUN_DEADLINE_MS = 30_000;
export interface FleetView {
  reports(): Promise<PodReport[]>;
  spend(channelId: string): Promise<{ today: number; month: number }>;
}

export interface ReconcilerOptions {
  kube: Kube;
  /** Namespaces to watch, or '*' for all (needs cluster-wide RBAC). */
  namespaces: string[] | '*';
  configSecret: { namespace: string; name: string };
  fleet?: FleetView | undefined;
  metrics: OperatorMetrics;
  log: Logger;
  /** Kubernetes Events on status transitions (refused, cooldown, Programmed). */
  events?: EventRecorder | undefined;
  /** How often the leader folds pod reports into status (default 2 s). */
  statusIntervalMs?: number;
  /** Usage-only status changes are written at most this often per object (default 15 s). */
  usageWriteIntervalMs?: number;
  resyncMs?: number;
  /** Re-read period of each referenced Secret (default 10 s, stretched for many Secrets). */
  secretRefreshMs?: number;
  /** Retry of a failed reconcile: exponential from initialMs to maxMs, with jitter. */
  backoff?: { initialMs: number; maxMs: number };
}

type Obj = KubernetesObject & { spec?: Record<string, unknown>; status?: { conditions?: Condition[] } };

const PLURAL: Record<string, string> = { Channel: 'channels', RateLimitPolicy: 'ratelimitpolicies' };
/** Parallel status patches: enough to converge 1,000 objects in seconds, not a socket each. */
const WRITE_CONCURRENCY = 16;

export class Reconciler {
  readonly #o: ReconcilerOptions;
  readonly #watches: { kind: string; watch: ResilientWatch<Obj> }[] = [];
  readonly #configWatch: ResilientWatch<V1Secret>;
  readonly #secrets: SecretRefs;
  /** The current leadership term; aborted when the lease is lost or on stop. */
  #term: AbortController | undefined;
  #timer: NodeJS.Timeout | undefined;
  #statusTimer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  /** What the next run does: a full render, or only fold pod reports into status. */
  #want: 'full' | 'status' | undefined;
  #failures = 0;
  #retryAt = 0;
  #stopped = false;
  #lastFullMs = 0;
  #lastFullEnd = 0;
  /** Digest of the config Secret data last written or confirmed, and the render hash it holds. */
  #confirmed: { hash: string; digest: string } | undefined;
  /** Highest config generation seen or written: generations never go back, even on delete. */
  #generation = 0;
  /** The last render's per-object results, for status-only runs. */
  #results: Map<string, ObjectResult> | undefined;
  /** Last status written per object, and when: suppresses repeats until the cache catches up. */
  readonly #statusMemo = new Map<string, { status: unknown; at: number; usageOnlyAt: number }>();

  constructor(opts: ReconcilerOptions) {
    this.#o = opts;
    const { kube, configSecret } = opts;
    const fieldSelector = `metadata.name=${configSecret.name}`;
    // Its own output, watched by name (RBAC: resourceNames), so a delete or an edit is undone.
    this.#configWatch = new ResilientWatch<V1Secret>(kube.kc, {
      resource: 'config-secret',
      path: `/api/v1/namespaces/${configSecret.namespace}/secrets`,
      fieldSelector,
      list: () =>
        kube.core.listNamespacedSecret({
          namespace: configSecret.namespace,
          fieldSelector,
        }) as Promise<KubernetesListObject<V1Secret>>,
      onChange: () => this.schedule(),
      onRestart: (resource, reason) => this.#onRestart(resource, reason),
      resyncMs: opts.resyncMs,
    });
    this.#secrets = new SecretRefs({
      core: kube.core,
      onChange: () => this.schedule(),
      refreshMs: opts.secretRefreshMs,
    });
  }

  get leader(): boolean {
    return this.#term !== undefined;
  }

  /** Synced when every watch has listed once (before that a render would drop objects). */
  get synced(): boolean {
    return this.#configWatch.synced && this.#watches.every((w) => w.watch.synced);
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
    }
    await Promise.all([this.#configWatch.start(), ...this.#watches.map((w) => w.watch.start())]);
    if (this.#o.fleet) {
      this.#statusTimer = setInterval(() => this.schedule('status'), this.#o.statusIntervalMs ?? 2000);
      this.#statusTimer.unref();
    }
  }

  /** Stops writing first (cancels an in-flight run and waits for it), then stops watching. */
  async stop() {
    this.#stopped = true;
    clearTimeout(this.#timer);
    clearInterval(this.#statusTimer);
    this.setLeader(false);
    await this.#running;
    await Promise.all([this.#configWatch.stop(), ...this.#watches.map((w) => w.watch.stop())]);
  }

  setLeader(leader: boolean) {
    if (leader === this.leader || (leader && this.#stopped)) return;
    this.#o.metrics.leader.set(leader ? 1 : 0);
    if (leader) {
      this.#term = new AbortController();
      this.#failures = 0;
      this.#retryAt = 0;
      this.#secrets.start();
      this.schedule();
    } else {
      this.#term?.abort(new Error('no longer leader'));
      this.#term = undefined;
      this.#secrets.stop();
      this.#secrets.clear();
      this.#results = undefined;
      this.#statusMemo.clear();
    }
  }

  /** Coalesces bursts of events into one run; runs are never concurrent. */
  schedule(kind: 'full' | 'status' = 'full') {
    if (!this.leader) return;
    this.#want = this.#want === 'full' || kind === 'full' ? 'full' : 'status';
    if (this.#timer || this.#running) return; // the running one reschedules when done
    // A burst of events (1,000 Channels applied at once) is coalesced into fewer renders: the next
    // one waits at least as long as the last one took, so rendering never takes more than about
    // half the time, and each relay sees fewer intermediate configs.
    const delay =
      this.#want === 'full'
        ? Math.max(20, this.#retryAt - Date.now(), this.#lastFullEnd + this.#lastFullMs - Date.now())
        : 20;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      const want = this.#want;
      const term = this.#term;
      this.#want = undefined;
      if (!want || !term) return;
      this.#start(want, term.signal);
    }, delay);
    this.#timer.unref();
  }

  /**
   * Runs one reconcile under a deadline. Runs are never concurrent, so one that never settles
   * would stop every later one (a dependency that never answers): past the deadline its
   * signal is aborted, it is logged and counted, and the loop goes on with a full run.
   */
  #start(want: 'full' | 'status', termSignal: AbortSignal) {
    const deadline = new AbortController();
    const run = this.#run(want, AbortSignal.any([termSignal, deadline.signal]));
    let settled = false;
    const settle = () => {
      if (settled) return;
      settled = true;
      clearTimeout(watchdog);
      this.#running = undefined;
      if (this.#want) this.schedule(this.#want);
    };
    const watchdog = setTimeout(() => {
      this.#o.log.error(
        { want, deadlineMs: RUN_DEADLINE_MS },
        'reconcile run passed its deadline; abandoned',
      );
      this.#o.metrics.reconciles.inc({ result: 'deadline' });
      deadline.abort(new Error('reconcile deadline'));
      this.#want = 'full';
      settle();
    }, RUN_DEADLINE_MS);
    watchdog.unref();
    this.#running = run.finally(settle);
  }

  #add(kind: string, path: string, list: () => Promise<unknown>) {
    const watch = new ResilientWatch<Obj>(this.#o.kube.kc, {
      resource: `${kind.toLowerCase()}s`,
      path,
      list: list as never,
      onChange: (obj, phase) => {
        // Its own status writes come back as updates: only a spec change (a new generation),
        // an add or a delete needs a render.
        if (phase === 'update' && obj && this.#renderedAt(kind, obj) === obj.metadata?.generation) return;
        this.schedule();
      },
      onRestart: (resource, reason) => this.#onRestart(resource, reason),
      resyncMs: this.#o.resyncMs,
    });
    this.#watches.push({ kind, watch });
  }

  /** The generation of this object that the last render saw, if any. */
  #renderedAt(kind: string, obj: Obj): number | undefined {
    return this.#results?.get(`${kind}/${obj.metadata?.namespace}/${obj.metadata?.name}`)?.generation;
  }

  #onRestart(resource: string, reason: string) {
    this.#o.metrics.watchRestarts.inc({ resource, reason: reason.startsWith('error') ? 'error' : reason });
    this.#o.log.warn({ resource, reason }, 'watch re-established');
  }

  /** Cached objects of a kind, with apiVersion/kind set (typed client lists drop them on items). */
  #objects(kind: string): Obj[] {
    const apiVersion = `${GROUP}/${VERSION}`;
    return this.#watches
      .filter((w) => w.kind === kind)
      .flatMap((w) => w.watch.list().map((o) => ({ ...o, apiVersion, kind })));
  }

  async #run(want: 'full' | 'status', signal: AbortSignal) {
    const m = this.#o.metrics;
    if (!this.synced) {
      m.reconciles.inc({ result: 'skipped_not_synced' });
      return;
    }
    if (want === 'status') {
      if (this.#results) await this.#writeStatuses(signal).catch((err) => this.#statusFailed(err, signal));
      return;
    }
    const end = m.reconcileDuration.startTimer();
    const started = Date.now();
    try {
      const channels = this.#objects('Channel');
      const policies = this.#objects('RateLimitPolicy');
      const secrets = await this.#secrets.resolve(referencedSecrets(channels), signal);
      const sourced: SourcedObject[] = [
        ...secrets.map((object) => ({ object })),
        ...channels.map((object) => ({ object })),
        ...policies.map((object) => ({ object })),
      ];
      const { config, results } = renderRelayConfig(sourced, { generation: 0 });
      await this.#ensureConfig(config, signal);
      this.#results = new Map(results.map((r) => [`${r.kind}/${r.namespace}/${r.name}`, r]));
      await this.#writeStatuses(signal);
      this.#failures = 0;
      this.#retryAt = 0;
      m.reconciles.inc({ result: 'success' });
    } catch (err) {
      if (signal.aborted) {
        m.reconciles.inc({ result: 'cancelled' });
        return;
      }
      m.reconciles.inc({ result: 'error' });
      const delay = this.#backoffMs();
      this.#o.log.error({ err: describeError(err), retryInMs: delay }, 'reconcile failed; retrying');
      this.#retryAt = Date.now() + delay;
      this.#want = 'full';
    } finally {
      end();
      this.#lastFullEnd = Date.now();
      this.#lastFullMs = Math.min(this.#lastFullEnd - started, 5000);
    }
  }

  #backoffMs(): number {
    return retryDelayMs(this.#failures++, this.#o.backoff ?? { initialMs: 500, maxMs: 60_000 });
  }

  #statusFailed(err: unknown, signal: AbortSignal) {
    if (!signal.aborted) this.#o.log.warn({ err: describeError(err) }, 'status update failed');
  }

  /** Writes the config unless the Secret in the cluster already holds exactly this render. */
  async #ensureConfig(config: RelayConfig, signal: AbortSignal) {
    const { namespace, name } = this.#o.configSecret;
    // Fast path, no request and no encoding: the watched Secret holds exactly what was last
    // written or confirmed, and the render has not changed since.
    const cached = this.#configWatch.list().find((x) => x.metadata?.name === name);
    const data = cached?.data?.[CONFIG_SECRET_KEY];
    if (
      this.#confirmed?.hash === config.hash &&
      cached?.metadata?.annotations?.[HASH_ANNOTATION] === config.hash &&
      data !== undefined &&
      digest(data) === this.#confirmed.digest
    ) {
      return;
    }
    // Otherwise compare with the Secret as it is now (the watch may lag behind a write).
    let live: V1Secret | undefined;
    try {
      live = await this.#o.kube.core.readNamespacedSecret({ namespace, name }, withSignal(signal));
    } catch (err) {
      if (statusCode(err) !== 404) throw err;
    }
    const liveGeneration = live ? generationOf(live) : 0;
    this.#generation = Math.max(this.#generation, liveGeneration);
    const liveData = live?.data?.[CONFIG_SECRET_KEY];
    if (
      liveData !== undefined &&
      live?.metadata?.annotations?.[HASH_ANNOTATION] === config.hash &&
      liveData === encodeSnapshot({ ...config, generation: liveGeneration })
    ) {
      this.#confirmed = { hash: config.hash, digest: digest(liveData) };
      this.#o.metrics.configGeneration.set(liveGeneration);
      return;
    }
    if (!live && this.#o.fleet) {
      // Deleted while no operator ran: continue above what the relays serve, not from 1.
      const served = await this.#o.fleet.reports().catch(() => [] as PodReport[]);
      for (const r of served) this.#generation = Math.max(this.#generation, r.generation ?? 0);
    }
    config.generation = this.#generation + 1;
    signal.throwIfAborted();
    await this.#writeConfig(config, signal, live === undefined ? 'missing' : 'differs');
    this.#generation = config.generation;
    this.#o.metrics.configGeneration.set(config.generation);
  }

  async #writeConfig(config: RelayConfig, signal: AbortSignal, why: string) {
    const { namespace, name } = this.#o.configSecret;
    const { hash, generation } = config;
    const data = encodeSnapshot(config);
    this.#confirmed = undefined;
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
            data: { [CONFIG_SECRET_KEY]: data },
          },
        },
        withSignal(signal, serverSideApply()),
      );
      this.#confirmed = { hash, digest: digest(data) };
      this.#o.metrics.configWrites.inc({ result: 'success' });
      this.#o.log.info(
        { generation, hash: hash.slice(0, 12), secret: `${namespace}/${name}`, was: why },
        'relay config written',
      );
    } catch (err) {
      this.#o.metrics.configWrites.inc({ result: 'error' });
      throw err;
    }
  }

  async #writeStatuses(signal: AbortSignal) {
    const results = this.#results;
    if (!results) return;
    const now = Date.now();
    const channels = this.#objects('Channel');
    const policies = this.#objects('RateLimitPolicy');
    let reports: PodReport[] | undefined = [];
    if (this.#o.fleet) {
      try {
        reports = await this.#o.fleet.reports();
      } catch (err) {
        // Accepted and ResolvedRefs do not depend on the fleet: they are written anyway.
        this.#o.log.warn(
          { err: describeError(err) },
          'cannot read relay reports; fleet fields left as they are',
        );
        reports = undefined;
      }
    }
    const counts = new Map<string, number>();
    const jobs: (() => Promise<void>)[] = [];
    for (const obj of channels) {
      const r = results.get(`Channel/${obj.metadata!.namespace}/${obj.metadata!.name}`);
      if (!r || r.generation !== (obj.metadata?.generation ?? 1)) continue; // re-rendered soon
      count(counts, r);
      jobs.push(async () => {
        const previous = obj.status as ChannelStatus | undefined;
        let desired: ChannelStatus;
        if (reports === undefined) {
          desired = channelStatusWithoutFleet(r, previous, now);
        } else {
          const id = `${r.namespace}/${r.name}`;
          const spend =
            this.#o.fleet && reports.length > 0
              ? await this.#o.fleet.spend(id).catch(() => undefined)
              : undefined;
          desired = channelStatus(
            {
              result: r,
              suspend: obj.spec?.suspend === true,
              id,
              reports,
              reportsAvailable: this.#o.fleet !== undefined,
              spend,
              now,
            },
            previous?.conditions,
          );
        }
        await this.#maybePatch('Channel', obj, desired, now, signal);
      });
    }
    for (const obj of policies) {
      const r = results.get(`RateLimitPolicy/${obj.metadata!.namespace}/${obj.metadata!.name}`);
      if (!r || r.generation !== (obj.metadata?.generation ?? 1)) continue;
      count(counts, r);
      jobs.push(() =>
        this.#maybePatch('RateLimitPolicy', obj, policyStatus(r, obj.status?.conditions, now), now, signal),
      );
    }
    this.#o.metrics.objects.reset();
    for (const [k, n] of counts) {
      const [kind, accepted] = k.split('|');
      this.#o.metrics.objects.set({ kind: kind!, accepted: accepted! }, n);
    }
    let next = 0;
    const worker = async () => {
      while (next < jobs.length && !signal.aborted) await jobs[next++]!();
    };
    await Promise.all(Array.from({ length: Math.min(WRITE_CONCURRENCY, jobs.length) }, worker));
  }

  async #maybePatch(
    kind: string,
    obj: Obj,
    desired: ChannelStatus | PolicyStatus,
    now: number,
    signal: AbortSignal,
  ) {
    const key = `${kind}/${obj.metadata!.namespace}/${obj.metadata!.name}`;
    if (sameStatus(obj.status, desired)) {
      this.#statusMemo.delete(key);
      return;
    }
    const memo = this.#statusMemo.get(key);
    if (memo && sameStatus(memo.status, desired)) return; // written; the watch has not caught up yet
    // What was last written, even if the watch has not delivered it yet: each transition once.
    const before = (memo?.status ?? obj.status) as ChannelStatus | PolicyStatus | undefined;
    // Usage counters move with every request: write them at a slower pace than real changes.
    const usageOnly = sameStatus(
      { ...(obj.status ?? {}), usage: undefined, relays: undefined },
      { ...desired, usage: undefined, relays: undefined },
    );
    if (usageOnly && memo && now - memo.usageOnlyAt < (this.#o.usageWriteIntervalMs ?? 15_000)) return;
    if (signal.aborted) return;
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
        withSignal(signal, serverSideApply()),
      );
      this.#statusMemo.set(key, {
        status: desired,
        at: now,
        usageOnlyAt: usageOnly ? now : (memo?.usageOnlyAt ?? 0),
      });
      this.#o.metrics.statusWrites.inc({ kind, result: 'success' });
      const involved = { apiVersion: `${GROUP}/${VERSION}`, kind, namespace, name, uid: obj.metadata?.uid };
      for (const e of statusEvents(before, desired)) this.#o.events?.emit({ object: involved, ...e });
    } catch (err) {
      if (signal.aborted) return;
      this.#o.metrics.statusWrites.inc({ kind, result: statusCode(err) === 404 ? 'gone' : 'error' });
      if (statusCode(err) !== 404)
        this.#o.log.warn({ err: describeError(err), object: key }, 'status write failed');
    }
  }
}

/** `namespace/name` of every Secret a Channel references (the only Secrets the operator reads). */
function referencedSecrets(channels: Obj[]): Set<string> {
  const refs = new Set<string>();
  for (const ch of channels) {
    const ref = ch.spec?.apiKeySecretRef as { name?: unknown } | undefined;
    const ns = ch.metadata?.namespace;
    if (ns && typeof ref?.name === 'string' && ref.name !== '') refs.add(`${ns}/${ref.name}`);
  }
  return refs;
}

function digest(s: string): string {
  return createHash('sha256').update(s).digest('hex');
}

function generationOf(secret: V1Secret): number {
  const ann = secret.metadata?.annotations?.[GENERATION_ANNOTATION];
  const n = Number(ann);
  if (ann !== undefined && Number.isInteger(n) && n >= 0) return n;
  try {
    const snap = decodeSnapshot(secret.data) as { generation?: unknown } | undefined;
    return typeof snap?.generation === 'number' ? snap.generation : 0;
  } catch {
    return 0;
  }
}

function count(counts: Map<string, number>, r: ObjectResult) {
  const accepted = r.conditions.find((c) => c.type === 'Accepted')?.status === 'True' ? 'true' : 'false';
  const k = `${r.kind}|${accepted}`;
  counts.set(k, (counts.get(k) ?? 0) + 1);
}
