/**
 * Concurrency permits, the one shape every store keeps them in: per key (a channel, a policy's
 * `concurrent` bucket), the holders and when each permit expires. Channel permits
 * (`StateStore.tryAcquire`) and policy `concurrent` limits (`Limiter`) are both permits; in
 * process they live here, in Redis as a sorted set scored with the expiry (redis/lua.ts PERMITS),
 * renewed by redis/lease-keeper.ts. An expired permit no longer counts (a holder that died).
 */
interface PermitSet {
  /** holder -> expiry (epoch ms) */
  holders: Map<string, number>;
  /** No permit of the set expires before this (a lower bound): held() scans for expired permits only from then on. */
  soonest: number;
}

export class PermitSets {
  readonly #sets = new Map<string, PermitSet>(); // by key: one lookup per call

  /** Permits held on `key` at `now` (expired ones are dropped). */
  held(key: string, now = Number.NEGATIVE_INFINITY): number {
    const set = this.#sets.get(key);
    if (!set) return 0;
    const holders = set.holders;
    if (now < set.soonest) return holders.size;
    let soonest = Number.POSITIVE_INFINITY;
    for (const [id, expiry] of holders) {
      if (expiry <= now) holders.delete(id);
      else if (expiry < soonest) soonest = expiry;
    }
    if (holders.size === 0) this.#sets.delete(key);
    else set.soonest = soonest;
    return holders.size;
  }

  /** Takes a permit when fewer than `max` are held at `now`. */
  tryTake(key: string, max: number, id: string, expiresAt = Number.POSITIVE_INFINITY, now?: number): boolean {
    if (this.held(key, now) >= max) return false;
    this.put(key, id, expiresAt);
    return true;
  }

  /** Takes a permit without a check (the caller decided, e.g. with other limits at once). */
  put(key: string, id: string, expiresAt = Number.POSITIVE_INFINITY) {
    let set = this.#sets.get(key);
    if (!set) {
      set = { holders: new Map(), soonest: expiresAt };
      this.#sets.set(key, set);
    } else if (expiresAt < set.soonest) {
      set.soonest = expiresAt;
    }
    set.holders.set(id, expiresAt);
  }

  /** Returns a permit; false when it was not held (released already, or expired and dropped). */
  drop(key: string, id: string): boolean {
    const set = this.#sets.get(key);
    if (!set?.holders.delete(id)) return false;
    if (set.holders.size === 0) this.#sets.delete(key);
    return true;
  }

  /** Keys with permits held (memory accounting). */
  get size(): number {
    return this.#sets.size;
  }
}
