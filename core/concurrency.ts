import type { Lease, StateStore } from './state/store.ts';

/**
 * Per-channel `maxConcurrent` with a bounded FIFO queue. Permits live in the state store (so with
 * Redis they are fleet-wide and expire with a crashed pod); the queue is local to this process.
 * Waiters wake on a release event and, as a safety net for releases on other pods, on a poll.
 */

export type AcquireResult =
  | { ok: true; lease: Lease }
  | { ok: false; reason: 'queue_full' | 'queue_timeout' };

export interface GateLimits {
  maxConcurrent: number;
  maxQueue: number;
  queueTimeoutMs: number;
  leaseMs: number;
}

interface Waiter {
  limits: GateLimits;
  resolve: (r: AcquireResult) => void;
  timer: NodeJS.Timeout;
}

export class ConcurrencyGate {
  readonly #store: StateStore;
  readonly #queues = new Map<string, Waiter[]>();
  readonly #pumping = new Set<string>();
  readonly #pollMs: number;
  #poll: NodeJS.Timeout | undefined;
  readonly #unsubscribe: () => void;

  constructor(store: StateStore, opts: { pollMs?: number } = {}) {
    this.#store = store;
    this.#pollMs = opts.pollMs ?? 250;
    this.#unsubscribe = store.onRelease((id) => void this.#pump(id));
  }

  /** Requests waiting for a permit on this channel in this process. */
  depth(channelId: string): number {
    return this.#queues.get(channelId)?.length ?? 0;
  }

  async acquire(channelId: string, limits: GateLimits): Promise<AcquireResult> {
    // Nobody queued: try the store first. Otherwise join the queue, so waiters keep their order.
    if (this.depth(channelId) === 0) {
      const lease = await this.#store.tryAcquire(channelId, limits.maxConcurrent, limits.leaseMs);
      if (lease) return { ok: true, lease };
    }
    // Looked up after the await: another request may have created the queue meanwhile.
    const q = this.#queues.get(channelId) ?? this.#queueFor(channelId);
    if (q.length >= limits.maxQueue) return { ok: false, reason: 'queue_full' };
    return new Promise<AcquireResult>((resolve) => {
      const waiter: Waiter = {
        limits,
        resolve,
        timer: setTimeout(() => {
          const i = q.indexOf(waiter);
          if (i >= 0) q.splice(i, 1);
          resolve({ ok: false, reason: 'queue_timeout' });
        }, limits.queueTimeoutMs),
      };
      q.push(waiter);
      this.#ensurePoll();
    });
  }

  release(lease: Lease): Promise<void> {
    return this.#store.release(lease);
  }

  close() {
    this.#unsubscribe();
    clearInterval(this.#poll);
    for (const q of this.#queues.values()) {
      for (const w of q.splice(0)) {
        clearTimeout(w.timer);
        w.resolve({ ok: false, reason: 'queue_timeout' });
      }
    }
  }

  #queueFor(channelId: string): Waiter[] {
    const q: Waiter[] = [];
    this.#queues.set(channelId, q);
    return q;
  }

  async #pump(channelId: string) {
    const q = this.#queues.get(channelId);
    if (!q || q.length === 0 || this.#pumping.has(channelId)) return;
    this.#pumping.add(channelId);
    try {
      while (q.length > 0) {
        const head = q[0]!;
        const lease = await this.#store.tryAcquire(channelId, head.limits.maxConcurrent, head.limits.leaseMs);
        if (!lease) break;
        const waiter = q.shift();
        if (!waiter) {
          await this.#store.release(lease); // the waiter timed out while we were acquiring
          break;
        }
        clearTimeout(waiter.timer);
        waiter.resolve({ ok: true, lease });
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
      let waiting = false;
      for (const [id, q] of this.#queues) {
        if (q.length > 0) {
          waiting = true;
          void this.#pump(id);
        }
      }
      if (!waiting) {
        clearInterval(this.#poll);
        this.#poll = undefined;
      }
    }, this.#pollMs);
    this.#poll.unref();
  }
}
