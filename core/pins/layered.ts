import type { ListQuery, Pin, PinnedKind, PinnedObject, PinStore } from './store.ts';

/** A fast, forgetful copy of pins (Redis): what the layered store reads first. */
export interface PinCache {
  pin(kind: PinnedKind, id: string, pin: Pin): Promise<void>;
  lookup(kind: PinnedKind, id: string): Promise<Pin | undefined>;
  /** Puts back a pin read from the durable record. */
  refill(kind: PinnedKind, id: string, pin: Pin): Promise<void>;
  unpin(kind: PinnedKind, id: string): Promise<void>;
}

/**
 * The fleet-wide pin store: the durable record (the database) decides, the cache (Redis) answers
 * lookups fast. Writes go to the record first, so a pin the client was told about survives a
 * cache that is down; a lookup the cache misses is read from the record and put back. A cache
 * that fails is left out of that call (degraded: every lookup is a database read) and used again
 * as soon as it answers; `onCacheError` sees each failure.
 */
export class LayeredPinStore implements PinStore {
  readonly #cache: PinCache;
  readonly #record: PinStore;
  readonly #onCacheError: (err: unknown) => void;

  constructor(cache: PinCache, record: PinStore, onCacheError: (err: unknown) => void = () => {}) {
    this.#cache = cache;
    this.#record = record;
    this.#onCacheError = onCacheError;
  }

  async pin(kind: PinnedKind, id: string, pin: Pin): Promise<void> {
    await this.#record.pin(kind, id, pin);
    // The first pin wins in the record; the cache gets what the record holds.
    const held = (await this.#record.lookup(kind, id)) ?? pin;
    await this.#cache.pin(kind, id, held).catch(this.#onCacheError);
  }

  async lookup(kind: PinnedKind, id: string): Promise<Pin | undefined> {
    let cacheUp = true;
    const cached = await this.#cache.lookup(kind, id).catch((err) => {
      cacheUp = false;
      this.#onCacheError(err);
      return undefined;
    });
    if (cached) return cached;
    const pin = await this.#record.lookup(kind, id);
    if (pin && cacheUp) await this.#cache.refill(kind, id, pin).catch(this.#onCacheError);
    return pin;
  }

  async unpin(kind: PinnedKind, id: string): Promise<void> {
    await this.#record.unpin(kind, id);
    await this.#cache.unpin(kind, id).catch(this.#onCacheError);
  }

  list(kind: PinnedKind, query: ListQuery): Promise<PinnedObject[]> {
    return this.#record.list(kind, query);
  }

  async claimBilling(kind: PinnedKind, id: string): Promise<boolean> {
    return (await this.#record.claimBilling?.(kind, id)) ?? false;
  }
}
