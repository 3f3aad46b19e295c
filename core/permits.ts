/**
 * Concurrency permits, the one shape every store keeps them in: per key (a channel, a policy's
 * `concurrent` bucket), the holders and when each permit expires. Channel permits
 * (`StateStore.tryAcquire`) and policy `concurrent` limits (`Limiter`) are both permits; in
 * process they live here, in Redis as a sorted set scored with the expiry (redis/lua.ts PERMITS),
 * renewed by redis/lease-keeper.ts. An expired permit no longer counts (a holder that died).
 */
export class PermitSets {
  readonly #sets = new Map<string, Map<string, number>>(); // key -> holder -> expiry (epoch ms)
  // key -> no permit of the set expires before this (a lower bound): held() scans for expired
  // permits only from then on, not on every call.
  readonly #soonest = new Map<string, number>();

  /** Permits held on `key` at `now` (expired ones are dropped). */
  held(key: string, now = Number.NEGATIVE_INFINITY): number {
    const set = this.#sets.get(key);
    if (!set) return 0;
    if (now < this.#soonest.get(key)!) return set.size;
    let soonest = Number.POSITIVE_INFINITY;
    for (const [id, expiry] of set) {
      if (expiry <= now) set.delete(id);
      else if (expiry < soonest) soonest = expiry;
    }
    if (set.size === 0) this.#forget(key);
    else this.#soonest.set(key, soonest);
    return set.size;
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
      set = new Map();
      this.#sets.set(key, set);
      this.#soonest.set(key, expiresAt);
    } else if (expiresAt < this.#soonest.get(key)!) {
      this.#soonest.set(key, expiresAt);
    }
    set.set(id, expiresAt);
  }

  /** Returns a permit; false when it was not held (released already, or expired and dropped). */
  drop(key: string, id: string): boolean {
    const set = this.#sets.get(key);
    if (!set?.delete(id)) return false;
    if (set.size === 0) this.#forget(key);
    return true;
  }

  /** Keys with permits held (memory accounting). */
  get size(): number {
    return this.#sets.size;
  }

  #forget(key: string) {
    this.#sets.delete(key);
    this.#soonest.delete(key);
  }
}
