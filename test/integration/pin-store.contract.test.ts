import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LayeredPinStore } from '../../core/pins/layered.ts';
import type { PinStore } from '../../core/pins/store.ts';
import { type Database, openDatabase } from '../../db/database.ts';
import { applyMigrations } from '../../db/migrate.ts';
import { PrismaPinStore } from '../../db/pins.ts';
import { RedisConnection } from '../../redis/connection.ts';
import { RedisPinStore } from '../../redis/pin-store.ts';
import { type Backend, startBackend } from '../helpers/backends.ts';
import { describePinStore } from '../helpers/pin-store-contract.ts';
import {
  startRedis,
  startRedisCluster,
  type TestRedis,
  type TestRedisDeployment,
  testPrefix,
} from '../helpers/redis.ts';

// The fleet-wide pin stores hold the same contract as the in-process one: Redis alone (per-key
// lists in sorted sets; one server and a Redis Cluster), the database alone (PGlite and
// PostgreSQL), and Redis in front of PostgreSQL. Then what only the layered store does: Redis
// down -> the database answers alone; Redis back -> lookups fill it again.

let redis: TestRedis;
let cluster: TestRedisDeployment;
const backends: Record<string, Backend> = {};
const dbs: Record<string, Database> = {};
const connections: RedisConnection[] = [];

beforeAll(async () => {
  [redis, cluster, backends.pglite, backends.postgresql] = await Promise.all([
    startRedis(),
    startRedisCluster(),
    startBackend('pglite'),
    startBackend('postgresql'),
  ]);
  for (const name of ['pglite', 'postgresql']) {
    const { url, dataDir } = await backends[name]!.fresh();
    dbs[name] = await openDatabase({ url, dataDir });
    await applyMigrations(dbs[name]!);
  }
}, 120_000);
afterAll(async () => {
  await Promise.all(connections.map((c) => c.close()));
  await Promise.all(Object.values(dbs).map((d) => d.close()));
  await Promise.all([redis?.close(), cluster?.close(), ...Object.values(backends).map((b) => b.close())]);
});

async function connect(url: string, prefix = testPrefix('pins')): Promise<RedisConnection> {
  const c = new RedisConnection({ url, prefix, commandTimeoutMs: 500 });
  connections.push(c);
  expect(await c.waitReady(5000)).toBe(true);
  return c;
}

/** The database store on an emptied table: every contract run starts from no pins. */
async function record(name: string): Promise<PrismaPinStore> {
  const db = dbs[name]!;
  await (await db.prisma()).upstreamObject.deleteMany({});
  return new PrismaPinStore(db);
}

describePinStore(
  'Redis',
  async () => new RedisPinStore({ connection: await connect(redis.url), index: true }),
);
describePinStore(
  'Redis Cluster',
  async () => new RedisPinStore({ connection: await connect(cluster.url), index: true }),
);
describePinStore('database on PGlite', () => record('pglite'));
describePinStore('database on PostgreSQL', () => record('postgresql'));
describePinStore(
  'Redis in front of PostgreSQL',
  async (): Promise<PinStore> =>
    new LayeredPinStore(
      new RedisPinStore({ connection: await connect(redis.url), index: false }),
      await record('postgresql'),
    ),
);

describe('Redis in front of the database', () => {
  it('serves from the database alone while Redis is down, and fills Redis again once it is back', async () => {
    const connection = await connect(redis.url);
    const errors: unknown[] = [];
    const cache = new RedisPinStore({ connection, index: false });
    const store = new LayeredPinStore(cache, await record('postgresql'), (e) => errors.push(e));
    await store.pin('file', 'file-before', { channel: 'ns/a', keyId: 'k1', createdAt: 1 });
    expect(await connection.client.get(connection.keys.pin('file', 'file-before'))).not.toBeNull();

    await redis.stop();
    await expect.poll(() => connection.up).toBe(false);
    // Pinned and found while Redis is away: the database is the record.
    await store.pin('file', 'file-during', { channel: 'ns/b', keyId: 'k1', createdAt: 2 });
    expect((await store.lookup('file', 'file-during'))?.channel).toBe('ns/b');
    expect((await store.lookup('file', 'file-before'))?.channel).toBe('ns/a');
    expect((await store.list('file', { keyId: 'k1' })).map((o) => o.id)).toEqual([
      'file-during',
      'file-before',
    ]);
    expect(errors.length).toBeGreaterThan(0);

    await redis.start(); // empty: no persistence
    await expect.poll(() => connection.up, { timeout: 10_000 }).toBe(true);
    expect(await connection.client.get(connection.keys.pin('file', 'file-during'))).toBeNull();
    expect((await store.lookup('file', 'file-during'))?.channel).toBe('ns/b');
    // The miss was read from the database and put back.
    expect(await connection.client.get(connection.keys.pin('file', 'file-during'))).not.toBeNull();
    await store.unpin('file', 'file-during');
    expect(await store.lookup('file', 'file-during')).toBeUndefined();
    expect(await connection.client.get(connection.keys.pin('file', 'file-during'))).toBeNull();
  });

  it('charges a pinned object once, across stores sharing the database and Redis', async () => {
    const db = await record('postgresql');
    const stores = await Promise.all(
      [0, 1, 2].map(
        async () =>
          new LayeredPinStore(new RedisPinStore({ connection: await connect(redis.url), index: false }), db),
      ),
    );
    await stores[0]!.pin('batch', 'batch-1', { channel: 'ns/a', keyId: 'k1', createdAt: 1 });
    const claims = await Promise.all(
      stores.flatMap((s) => [s.claimBilling('batch', 'batch-1'), s.claimBilling('batch', 'batch-1')]),
    );
    expect(claims.filter(Boolean)).toHaveLength(1);
    expect(await stores[1]!.claimBilling('batch', 'batch-unknown')).toBe(false);
  });
});
