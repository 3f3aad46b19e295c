import { type CoordinationV1Api, type V1Lease, V1MicroTime } from '@kubernetes/client-node';
import { statusCode } from '../kube/client.ts';

/**
 * Leader election on a coordination.k8s.io Lease, as client-go does it (client-node has none):
 * - a candidate takes the lease when it is free or when its record has not changed for
 *   `leaseDurationMs` of *local* time (no trust in other machines' clocks);
 * - every write is an update conditioned on resourceVersion, so two candidates never both win;
 * - the leader renews every `retryPeriodMs` and steps down if it cannot renew within
 *   `renewDeadlineMs`; on shutdown it releases the lease so a successor takes over at once.
 */
export interface LeaderElectionOptions {
  namespace: string;
  name: string;
  identity: string;
  leaseDurationMs?: number;
  renewDeadlineMs?: number;
  retryPeriodMs?: number;
  onStartedLeading: () => void;
  onStoppedLeading: () => void;
  onError?: (err: unknown) => void;
  now?: () => number;
}

export class LeaderElector {
  readonly #api: CoordinationV1Api;
  readonly #o: Required<Omit<LeaderElectionOptions, 'onError'>> & Pick<LeaderElectionOptions, 'onError'>;
  #leading = false;
  #stopped = false;
  #timer: NodeJS.Timeout | undefined;
  /** The last record seen and when (local clock) it last changed. */
  #observed: { holder: string; resourceVersion: string; at: number } | undefined;
  #lastRenew = 0;

  constructor(api: CoordinationV1Api, opts: LeaderElectionOptions) {
    this.#api = api;
    this.#o = {
      leaseDurationMs: 15_000,
      renewDeadlineMs: 10_000,
      retryPeriodMs: 2_000,
      now: Date.now,
      ...opts,
    };
  }

  get isLeader(): boolean {
    return this.#leading;
  }

  start() {
    void this.#tick();
  }

  /** Stops campaigning; a leader releases the lease so another candidate can take it now. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    if (!this.#leading) return;
    this.#setLeading(false);
    try {
      const lease = await this.#api.readNamespacedLease({ name: this.#o.name, namespace: this.#o.namespace });
      if (lease.spec?.holderIdentity !== this.#o.identity) return;
      lease.spec = {
        ...lease.spec,
        holderIdentity: undefined,
        leaseDurationSeconds: 1,
        acquireTime: undefined,
      };
      await this.#api.replaceNamespacedLease({
        name: this.#o.name,
        namespace: this.#o.namespace,
        body: lease,
      });
    } catch (err) {
      this.#o.onError?.(err);
    }
  }

  async #tick() {
    if (this.#stopped) return;
    try {
      const ok = await this.#tryAcquireOrRenew();
      if (ok) this.#lastRenew = this.#o.now();
      if (ok && !this.#leading) this.#setLeading(true);
      if (!ok && this.#leading) this.#setLeading(false);
    } catch (err) {
      this.#o.onError?.(err);
      if (this.#leading && this.#o.now() - this.#lastRenew > this.#o.renewDeadlineMs) this.#setLeading(false);
    }
    if (!this.#stopped) {
      this.#timer = setTimeout(() => void this.#tick(), this.#o.retryPeriodMs);
      this.#timer.unref();
    }
  }

  async #tryAcquireOrRenew(): Promise<boolean> {
    const { name, namespace, identity } = this.#o;
    const now = this.#o.now();
    let lease: V1Lease;
    try {
      lease = await this.#api.readNamespacedLease({ name, namespace });
    } catch (err) {
      if (statusCode(err) !== 404) throw err;
      try {
        await this.#api.createNamespacedLease({ namespace, body: this.#record(undefined, now, 0) });
        return true;
      } catch (e) {
        if (statusCode(e) === 409) return false;
        throw e;
      }
    }
    const holder = lease.spec?.holderIdentity ?? '';
    const rv = lease.metadata?.resourceVersion ?? '';
    if (!this.#observed || this.#observed.resourceVersion !== rv)
      this.#observed = { holder, resourceVersion: rv, at: now };
    const durationMs = (lease.spec?.leaseDurationSeconds ?? 15) * 1000;
    const expired = now - this.#observed.at > durationMs;
    if (holder !== '' && holder !== identity && !expired) return false;

    const transitions = (lease.spec?.leaseTransitions ?? 0) + (holder === identity ? 0 : 1);
    try {
      const updated = await this.#api.replaceNamespacedLease({
        name,
        namespace,
        body: this.#record(lease, now, transitions),
      });
      this.#observed = {
        holder: identity,
        resourceVersion: updated.metadata?.resourceVersion ?? '',
        at: now,
      };
      return true;
    } catch (err) {
      if (statusCode(err) === 409) return false; // someone else wrote first
      throw err;
    }
  }

  #record(existing: V1Lease | undefined, now: number, transitions: number): V1Lease {
    // Lease times are MicroTime: six fractional digits, which V1MicroTime serialises.
    const iso = new V1MicroTime(now);
    const holding = existing?.spec?.holderIdentity === this.#o.identity;
    return {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { ...(existing?.metadata ?? {}), name: this.#o.name, namespace: this.#o.namespace },
      spec: {
        holderIdentity: this.#o.identity,
        leaseDurationSeconds: Math.ceil(this.#o.leaseDurationMs / 1000),
        acquireTime: holding ? existing?.spec?.acquireTime : iso,
        renewTime: iso,
        leaseTransitions: transitions,
      },
    };
  }

  #setLeading(v: boolean) {
    this.#leading = v;
    if (v) this.#o.onStartedLeading();
    else this.#o.onStoppedLeading();
  }
}
