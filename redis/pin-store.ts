import {
  type ListQuery,
  listLimit,
  type Pin,
  type PinnedKind,
  type PinnedObject,
  type PinStore,
} from '../core/pins/store.ts';
import type { RedisConnection } from './connection.ts';

/**
 * Pins in Redis (keys in redis/keys.ts, one hash tag per object). In front of the database
 * (core/pins/layered.ts) it is the fleet's fast lookup, refilled from the database on a miss; on
 * its own (REDIS_URL without a database) it also keeps each key's list. Pins live as long as the
 * objects usually do upstream: 30 days (OpenAI keeps batch files, batches and stored responses
 * that long; a file kept longer is still found through the database).
 */

export const PIN_TTL_MS = 30 * 24 * 3600 * 1000;

export interface RedisPinStoreOptions {
  connection: RedisConnection;
  /** Keep per-key lists (only when there is no database to list from). */
  index: boolean;
  ttlMs?: number;
}

export class RedisPinStore implements PinStore {
  readonly #c: RedisConnection;
  readonly #index: boolean;
  readonly #ttl: number;

  constructor(o: RedisPinStoreOptions) {
    this.#c = o.connection;
    this.#index = o.index;
    this.#ttl = o.ttlMs ?? PIN_TTL_MS;
  }

  async pin(kind: PinnedKind, id: string, pin: Pin): Promise<void> {
    const keys = this.#c.keys;
    const value = JSON.stringify({
      channel: pin.channel,
      keyId: pin.keyId,
      model: pin.model,
      at: pin.createdAt,
    });
    const set = await this.#c.run('pin', (c) => c.set(keys.pin(kind, id), value, 'PX', this.#ttl, 'NX'));
    if (set !== 'OK' || !this.#index) return;
    const list = keys.pinList(kind, pin.keyId);
    await this.#c.run('pin', async (c) => {
      await c.zadd(list, pin.createdAt, id);
      await c.pexpire(list, this.#ttl);
    });
  }

  async lookup(kind: PinnedKind, id: string): Promise<Pin | undefined> {
    const raw = await this.#c.run('pin_lookup', (c) => c.get(this.#c.keys.pin(kind, id)));
    return raw === null ? undefined : parse(kind, id, raw);
  }

  /** Sets a pin read from the durable record (no list entry: lists come from there too). */
  async refill(kind: PinnedKind, id: string, pin: Pin): Promise<void> {
    const value = JSON.stringify({
      channel: pin.channel,
      keyId: pin.keyId,
      model: pin.model,
      at: pin.createdAt,
    });
    await this.#c.run('pin', (c) => c.set(this.#c.keys.pin(kind, id), value, 'PX', this.#ttl, 'NX'));
  }

  async unpin(kind: PinnedKind, id: string): Promise<void> {
    const keys = this.#c.keys;
    const pin = this.#index ? await this.lookup(kind, id) : undefined;
    await this.#c.run('unpin', async (c) => {
      await c.del(keys.pin(kind, id), keys.pinBilled(kind, id));
      if (pin) await c.zrem(keys.pinList(kind, pin.keyId), id);
    });
  }

  async list(kind: PinnedKind, query: ListQuery): Promise<PinnedObject[]> {
    const list = this.#c.keys.pinList(kind, query.keyId);
    const limit = listLimit(query);
    let start = 0;
    if (query.after !== undefined) {
      const rank = await this.#c.run('pin_list', (c) => c.zrevrank(list, query.after!));
      if (rank === null) return [];
      start = rank + 1;
    }
    const out: PinnedObject[] = [];
    // Newest first: score (creation ms) descending, ties by id descending.
    while (out.length < limit) {
      const ids = await this.#c.run('pin_list', (c) =>
        c.zrevrange(list, start, start + limit - out.length - 1),
      );
      if (ids.length === 0) break;
      start += ids.length;
      const pins = await Promise.all(ids.map((id) => this.lookup(kind, id)));
      // Entries whose pins expired leave the list when a listing meets them.
      ids.forEach((id, i) => {
        const p = pins[i];
        if (p && p.keyId === query.keyId) out.push({ ...p, kind, id });
        else if (!p) void this.#c.run('unpin', (c) => c.zrem(list, id)).catch(() => {});
      });
    }
    return out;
  }

  async claimBilling(kind: PinnedKind, id: string): Promise<boolean> {
    const keys = this.#c.keys;
    if ((await this.lookup(kind, id)) === undefined) return false;
    const r = await this.#c.run('pin', (c) => c.set(keys.pinBilled(kind, id), '1', 'PX', this.#ttl, 'NX'));
    return r === 'OK';
  }
}

function parse(kind: PinnedKind, id: string, raw: string): PinnedObject | undefined {
  try {
    const v = JSON.parse(raw) as { channel: string; keyId?: string; model?: string; at: number };
    const o: PinnedObject = { kind, id, channel: v.channel, keyId: v.keyId ?? undefined, createdAt: v.at };
    return v.model === undefined ? o : { ...o, model: v.model };
  } catch {
    return undefined;
  }
}
