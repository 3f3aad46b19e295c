import type { Lease, StateStore } from './state/store.ts';

/**
 * Per-channel `maxConcurrent` with a bounded FIFO queue. Permits live in the state store (so with
 * Redis they are fleet-wide and expire with a crashed pod); the queue is local to this process.
 * Waiters wake on a release event and, as a safety net for releases on other pods, on a poll.
 *
 * A request may wait for any of several channels (the peers of a priority tier): it takes the
 * first with room, and waits in each of their queues at once only when none has room, so it never
 * waits behind a busy channel while a peer has a free permit. A waiter whose client went away
 * (its signal aborts) leaves every queue at once.
 */

export type AcquireResult =
  | { ok: true; lease: Lease }
  | { ok: false; reason: 'queue_full' | 'queue_timeout' | 'busy' | 'aborted' };

/** The result of acquireAny: which of the options the permit is for. */
export type AcquireAnyResult =
  | { ok: true; lease: Lease; index: number }
  | { ok: false; reason: 'queue_full' | 'queue_timeout' | 'busy' | 'aborted' };

export interface GateLimits {
  maxConcurrent: number;
  maxQueue: number;
  queueTimeoutMs: number;
  leaseMs: number;
}

export interface GateOption {
  channelId: string;
  limits: GateLimits;
}

export interface AcquireOptions {
  /** Aborted when the client is gone: the request leaves the queues at once. */
  signal?: AbortSignal;
  /** false: take a free permit or answer `busy`, never queue. */
  wait?: boolean;
}

interface Waiter {
  /** channel id -> index into the request's options */
  options: Map<string, number>;
  limits: Map<string, GateLimits>;
  settle: (r: AcquireAnyResult) => boolean;
}

const ABORTED: AcquireAnyResult = Object.freeze({ ok: false, reason: 'aborted' });

export class ConcurrencyGate {
  readonly #store: StateStore;
  readonly #queues = new Map<string, Waiter[]>();
  readonly #pumping = new Set<string>();
  readonly #pollMs: number;
  #poll: NodeJS.Timeout | undefined;
  readonly #unsubscribe: () => void;
  readonly #waiters = new Set<Waiter>();

  constructor(store: StateStore, opts: { pollMs?: number } = {}) {
    this.#store = store;
    this.#pollMs = opts.pollMs ?? 250;
    this.#unsubscribe = store.onRelease((id) => void this.#pump(id));
  }

  /** Requests waiting for a permit on this channel in this process. */
  depth(channelId: string): number {
    return this.#queues.get(channelId)?.length ?? 0;
  }

  async acquire(channelId: string, limits: GateLimits, opts: AcquireOptions = {}): Promise<AcquireResult> {
    const r = await this.acquireAny([{ channelId, limits }], opts);
    return r.ok ? { ok: true, lease: r.lease } : r;
  }

  /** A permit for the first of `options` (in order of preference) that has room, or the first to free. */
  acquireAny(options: readonly GateOption[], opts: AcquireOptions = {}): Promise<AcquireAnyResult> {
    const now = this.tryAnyNow(options, opts);
    return now !== undefined ? Promise.resolve(now) : this.#acquireAny(options, opts);
  }

  /**
   * acquireAny() when it can be answered at once: the store never waits (the embedded one) and one
   * of the options, with nobody queued, has room; or the request is gone. Otherwise undefined (then
   * call acquireAny).
   */
  tryAnyNow(options: readonly GateOption[], opts: AcquireOptions = {}): AcquireAnyResult | undefined {
    if (opts.signal?.aborted) return ABORTED;
    const store = this.#store;
    if (store.tryAcquireNow === undefined) return undefined;
    for (let index = 0; index < options.length; index++) {
      const { channelId, limits } = options[index]!;
      if (this.depth(channelId) > 0) continue;
      const lease = store.tryAcquireNow(channelId, limits.maxConcurrent, limits.leaseMs);
      if (lease) return { ok: true, lease, index };
    }
    return undefined;
  }

  async #acquireAny(options: readonly GateOption[], opts: AcquireOptions): Promise<AcquireAnyResult> {
    if (opts.signal?.aborted) return ABORTED;
    // A channel with nobody queued: try the store first. Otherwise join its queue, so waiters keep
    // their order.
    for (let index = 0; index < options.length; index++) {
      const { channelId, limits } = options[index]!;
      if (this.depth(channelId) > 0) continue;
      const lease = await this.#store.tryAcquire(channelId, limits.maxConcurrent, limits.leaseMs);
      if (opts.signal?.aborted) {
        if (lease) await this.#store.release(lease);
        return ABORTED;
      }
      if (lease) return { ok: true, lease, index };
    }
    if (opts.wait === false) return { ok: false, reason: 'busy' };
    // Looked up after the awaits: other requests may have queued meanwhile.
    const joined = options.filter((o) => this.depth(o.channelId) < o.limits.maxQueue);
    if (joined.length === 0) return { ok: false, reason: 'queue_full' };
    const timeoutMs = Math.max(...joined.map((o) => o.limits.queueTimeoutMs));
    return new Promise<AcquireAnyResult>((resolve) => {
      let done = false;
      const onAbort = () => waiter.settle({ ok: false, reason: 'aborted' });
      const timer = setTimeout(() => waiter.settle({ ok: false, reason: 'queue_timeout' }), timeoutMs);
      const waiter: Waiter = {
        options: new Map(joined.map((o) => [o.channelId, options.indexOf(o)])),
        limits: new Map(joined.map((o) => [o.channelId, o.limits])),
        settle: (r) => {
          if (done) return false;
          done = true;
          clearTimeout(timer);
          opts.signal?.removeEventListener('abort', onAbort);
          this.#waiters.delete(waiter);
          for (const id of waiter.options.keys()) {
            const q = this.#queues.get(id);
            const i = q?.indexOf(waiter) ?? -1;
            if (i >= 0) q!.splice(i, 1);
            if (q?.length === 0) this.#queues.delete(id);
          }
          resolve(r);
          return true;
        },
      };
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      this.#waiters.add(waiter);
      for (const o of joined) this.#queueFor(o.channelId).push(waiter);
      this.#ensurePoll();
      // A permit may have been released while we were trying the store.
      for (const o of joined) void this.#pump(o.channelId);
    });
  }

  release(lease: Lease): Promise<void> {
    return this.#store.release(lease);
  }

  close() {
    this.#unsubscribe();
    clearInterval(this.#poll);
    this.#poll = undefined;
    for (const w of [...this.#waiters]) w.settle({ ok: false, reason: 'queue_timeout' });
  }

  #queueFor(channelId: string): Waiter[] {
    let q = this.#queues.get(channelId);
    if (!q) {
      q = [];
      this.#queues.set(channelId, q);
    }
    return q;
  }

  async #pump(channelId: string) {
    if (this.depth(channelId) === 0 || this.#pumping.has(channelId)) return;
    this.#pumping.add(channelId);
    try {
      for (;;) {
        const head = this.#queues.get(channelId)?.[0];
        if (!head) break;
        const limits = head.limits.get(channelId)!;
        const lease = await this.#store.tryAcquire(channelId, limits.maxConcurrent, limits.leaseMs);
        if (!lease) break;
        // The head may have left meanwhile (timed out, gone, served by a peer): the next one gets it.
        const next = this.#queues.get(channelId)?.[0];
        if (!next?.settle({ ok: true, lease, index: next.options.get(channelId)! })) {
          await this.#store.release(lease);
          if (!next) break;
        }
      }
    } catch {
      // The store is unavailable: waiters time out on their own; the poll retries.
    } finally {
      this.#pumping.delete(channelId);
    }
  }

  #ensurePoll() {
    if (this.#poll) return;
    this.#poll = setInterval(() => {
      for (const id of this.#queues.keys()) void this.#pump(id);
      if (this.#queues.size === 0) {
        clearInterval(this.#poll);
        this.#poll = undefined;
      }
    }, this.#pollMs);
    this.#poll.unref();
  }
}
