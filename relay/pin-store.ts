import type { FastifyBaseLogger } from 'fastify';
import { LayeredPinStore } from '../core/pins/layered.ts';
import { MemoryPinStore } from '../core/pins/memory.ts';
import type { PinStore } from '../core/pins/store.ts';
import type { Sql } from '../db/database.ts';
import type { RedisConnection } from '../redis/connection.ts';

/**
 * Which pin store a relay process uses (core/pins): Redis in front of the database when both are
 * configured (a fleet: fast lookups, durable record), either one alone, or in-process pins for a
 * single relay with neither. Redis and database modules are loaded only when used.
 */
export async function openPinStore(o: {
  connection: RedisConnection | undefined;
  database: Sql | undefined;
  log: () => FastifyBaseLogger;
}): Promise<PinStore> {
  if (!o.connection && !o.database) return new MemoryPinStore();
  const record = o.database ? new (await import('../db/pins.ts')).PrismaPinStore(o.database) : undefined;
  if (!o.connection) return record!;
  const { RedisPinStore } = await import('../redis/pin-store.ts');
  const cache = new RedisPinStore({ connection: o.connection, index: record === undefined });
  if (!record) return cache;
  let lastWarn = 0;
  return new LayeredPinStore(cache, record, (err) => {
    // Degraded, not failed: the database answers meanwhile. Said at most every 10 s.
    if (Date.now() - lastWarn < 10_000) return;
    lastWarn = Date.now();
    o.log().warn(
      { err: (err as Error).message },
      'pin cache (redis) unavailable; reading pins from the database',
    );
  });
}
