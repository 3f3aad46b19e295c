import { type CoordinationV1Api, type V1Lease, V1MicroTime } from '@kubernetes/client-node';
import { statusCode, withSignal } from '../kube/client.ts';

/**
 * Leader election on a coordination.k8s.io Lease, as client-go does it (client-node has none):
 * - a candidate takes the lease when it is free or when its record has not changed for the
 *   lease's `leaseDurationSeconds` of *local* time (no trust in other machines' clocks);
 * - every write is an update conditioned on resourceVersion, so two candidates never both win;
 * - the leader renews every `retryPeriodMs`; each renew is cut off at the renew deadline
 *   (`renewDeadlineMs` after the last successful renew), and the leader steps down the moment
 *   that deadline passes, even while a request to a hanging API server is still open;
 * - candidates retry with jitter; on stop a leader releases the lease so a successor takes over
 *   at once.
 */
export interface LeaderElectionOptions {
  namespace: string;
  name: string;
  identity: string;
  leaseDurationMs?: number | undefined;
  renewDeadlineMs?: number | undefined;
  retryPeriodMs?: number | undefined;
  onStartedLeading: () => void;
  onStoppedLeading: () => void;
  onError?: ((err: unknown) => void) | undefined;
  now?: (() => number) | undefined;
}

export interface LeaseTimings {
  leaseDurationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
}

/** client-go's defaults (leaderelection.LeaderElectionConfig as kube-controller-manager sets it). */
export const DEFAULT_LEASE_TIMINGS: LeaseTimings = {
  leaseDurationMs: 15_000,
  renewDeadlineMs: 10_000,
  retryPeriodMs: 2_000,
};

/** client-go's JitterFactor, used as it is in its validation of the timings. */
const JITTER = 1.2;
/** Candidates wait retryPeriod * [1, 1.2). */
const CANDIDATE_JITTER = 0.2;

/**
 * Timings from options, unset ones from the defaults. An option that is `undefined` means
 * "not set" (a spread would let it override the default). Shorter leases scale the other two.
 */
export function leaseTimings(o: Partial<Record<keyof LeaseTimings, number | undefined>>): LeaseTimings {
  const valid = (v: number | undefined) => (v !== undefined && Number.isFinite(v) && v > 0 ? v : undefined);
  const leaseDurationMs = valid(o.leaseDurationMs) ?? DEFAULT_LEASE_TIMINGS.leaseDurationMs;
  const scale = leaseDurationMs / DEFAULT_LEASE_TIMINGS.leaseDurationMs;
  const renewDeadlineMs =
    valid(o.renewDeadlineMs) ?? Math.round(DEFAULT_LEASE_TIMINGS.renewDeadlineMs * scale);
  const retryPeriodMs = valid(o.retryPeriodMs) ?? Math.round(DEFAULT_LEASE_TIMINGS.retryPeriodMs * scale);
  if (!(leaseDurationMs > renewDeadlineMs))
    throw new Error(
      `lease duration (${leaseDurationMs} ms) must be greater than the renew deadline (${renewDeadlineMs} ms)`,
    );
  if (!(renewDeadlineMs > JITTER * retryPeriodMs))
    throw new Error(
      `renew deadline (${renewDeadlineMs} ms) must be greater than ${JITTER} x the retry period (${retryPeriodMs} ms)`,
    );
  if (leaseDurationMs < 1000)
    throw new Error(`lease duration must be at least 1 s, not ${leaseDurationMs} ms`);
  return { leaseDurationMs, renewDeadlineMs, retryPeriodMs };
}

export class LeaderElector {
  readonly #api: CoordinationV1Api;
  readonly #o: LeaderElectionOptions;
  readonly #t: LeaseTimings;
  readonly #now: () => number;
  #leading = false;
  #stopped = false;
  #timer: NodeJS.Timeout | undefined;
  #deadline: NodeJS.Timeout | undefined;
  #inflight: AbortController | undefined;
  #tick: Promise<void> | undefined;
  /** The last record seen and when (local clock) it last changed. */
  #observed: { holder: string; resourceVersion: string; at: number; durationMs: number } | undefined;
  #lastRenew = 0;

  constructor(api: CoordinationV1Api, opts: LeaderElectionOptions) {
    this.#api = api;
    this.#o = opts;
    this.#t = leaseTimings(opts);
    this.#now = opts.now ?? Date.now;
  }

  get isLeader(): boolean {
    return this.#leading;
  }

  get timings(): LeaseTimings {
    return { ...this.#t };
  }

  start() {
    this.#schedule(0);
  }

  /** Stops campaigning; a leader steps down first, then releases the lease for a successor. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    clearTimeout(this.#timer);
    clearTimeout(this.#deadline);
    this.#inflight?.abort(new Error('leader election stopped'));
    await this.#tick;
    if (!this.#leading) return;
    this.#setLeading(false);
    await this.#release();
  }

  #schedule(ms: number) {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => {
      this.#tick = this.#attempt();
    }, ms);
    this.#timer.unref();
  }

  async #attempt() {
    const { renewDeadlineMs, retryPeriodMs } = this.#t;
    // A leader's request may run until its renew deadline; a candidate's until one deadline.
    const budget = this.#leading ? this.#lastRenew + renewDeadlineMs - this.#now() : renewDeadlineMs;
    const ac = new AbortController();
    this.#inflight = ac;
    const cutoff = setTimeout(() => ac.abort(new Error('lease request timed out')), Math.max(1, budget));
    let ok = false;
    try {
      ok = await this.#tryAcquireOrRenew(ac.signal);
    } catch (err) {
      if (!this.#stopped) this.#o.onError?.(err);
    } finally {
      clearTimeout(cutoff);
      this.#inflight = undefined;
    }
    if (this.#stopped) return;
    if (ok) {
      this.#lastRenew = this.#now();
      if (!this.#leading) this.#setLeading(true);
      this.#armDeadline();
    } else if (this.#leading) {
      const lost = this.#observed !== undefined && this.#observed.holder !== this.#o.identity;
      if (lost || this.#now() - this.#lastRenew >= renewDeadlineMs) this.#stepDown();
    }
    this.#schedule(this.#leading ? retryPeriodMs : this.#candidateWaitMs());
  }

  /**
   * A candidate polls with a little jitter (so standbys do not move in step), and is awake the
   * moment the observed record expires: a dead leader is replaced within lease duration plus
   * one retry period (the delay before its last renew was observed).
   */
  #candidateWaitMs(): number {
    const jittered = this.#t.retryPeriodMs * (1 + Math.random() * CANDIDATE_JITTER);
    const seen = this.#observed;
    if (!seen || seen.holder === '') return jittered;
    const expiresIn = seen.at + seen.durationMs - this.#now() + 1;
    return expiresIn > 0 ? Math.min(jittered, expiresIn) : jittered;
  }

  /** Steps down exactly at the renew deadline, whatever an open request is doing. */
  #armDeadline() {
    clearTimeout(this.#deadline);
    this.#deadline = setTimeout(() => {
      if (this.#leading && this.#now() - this.#lastRenew >= this.#t.renewDeadlineMs) {
        this.#inflight?.abort(new Error('renew deadline passed'));
        this.#stepDown();
      }
    }, this.#t.renewDeadlineMs);
    this.#deadline.unref();
  }

  #stepDown() {
    clearTimeout(this.#deadline);
    this.#setLeading(false);
  }

  async #tryAcquireOrRenew(signal: AbortSignal): Promise<boolean> {
    const { name, namespace } = this.#o;
    const identity = this.#o.identity;
    const now = this.#now();
    let lease: V1Lease;
    try {
      lease = await this.#api.readNamespacedLease({ name, namespace }, withSignal(signal));
    } catch (err) {
      if (statusCode(err) !== 404) throw err;
      try {
        const created = await this.#api.createNamespacedLease(
          { namespace, body: this.#record(undefined, now, 0) },
          withSignal(signal),
        );
        this.#observe(created, now);
        return true;
      } catch (e) {
        if (statusCode(e) === 409) return false;
        throw e;
      }
    }
    const rv = lease.metadata?.resourceVersion ?? '';
    if (!this.#observed || this.#observed.resourceVersion !== rv) this.#observe(lease, now);
    const seen = this.#observed!;
    const expired = now - seen.at > seen.durationMs;
    if (seen.holder !== '' && seen.holder !== identity && !expired) return false;

    const transitions = (lease.spec?.leaseTransitions ?? 0) + (seen.holder === identity ? 0 : 1);
    try {
      const updated = await this.#api.replaceNamespacedLease(
        { name, namespace, body: this.#record(lease, now, transitions) },
        withSignal(signal),
      );
      this.#observe(updated, now);
      return true;
    } catch (err) {
      if (statusCode(err) === 409) return false; // someone else wrote first
      throw err;
    }
  }

  #observe(lease: V1Lease, at: number) {
    // A record without a duration (written by a broken peer) counts as a default-length lease.
    const seconds = lease.spec?.leaseDurationSeconds;
    this.#observed = {
      holder: lease.spec?.holderIdentity ?? '',
      resourceVersion: lease.metadata?.resourceVersion ?? '',
      at,
      durationMs: seconds && seconds > 0 ? seconds * 1000 : DEFAULT_LEASE_TIMINGS.leaseDurationMs,
    };
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
        leaseDurationSeconds: Math.ceil(this.#t.leaseDurationMs / 1000),
        acquireTime: holding ? existing?.spec?.acquireTime : iso,
        renewTime: iso,
        leaseTransitions: transitions,
      },
    };
  }

  /** As client-go's ReleaseOnCancel: an empty holder and a 1 s lease, bounded by one deadline. */
  async #release() {
    const { name, namespace } = this.#o;
    const signal = AbortSignal.timeout(this.#t.renewDeadlineMs);
    try {
      const lease = await this.#api.readNamespacedLease({ name, namespace }, withSignal(signal));
      if (lease.spec?.holderIdentity !== this.#o.identity) return;
      const now = new V1MicroTime(this.#now());
      lease.spec = {
        ...lease.spec,
        holderIdentity: undefined,
        leaseDurationSeconds: 1,
        acquireTime: now,
        renewTime: now,
      };
      await this.#api.replaceNamespacedLease({ name, namespace, body: lease }, withSignal(signal));
    } catch (err) {
      this.#o.onError?.(err);
    }
  }

  #setLeading(v: boolean) {
    if (this.#leading === v) return;
    this.#leading = v;
    if (v) this.#o.onStartedLeading();
    else this.#o.onStoppedLeading();
  }
}
