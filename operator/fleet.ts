import { RedisConnection } from '../redis/connection.ts';
import { SCRIPTS } from '../redis/lua.ts';
import { readPodReports } from '../redis/pod-reports.ts';
import { RedisStore } from '../redis/state-store.ts';
import type { FleetView } from './reconciler.ts';

/**
 * The operator's view of the relay fleet: the pods' reports and the spend counters they keep in
 * Redis (same key prefix as the relays: KUBERELAY_REDIS_PREFIX). Without REDIS_URL there is no
 * fleet view and Channel health stays Unknown.
 */
export async function openRedisFleet(
  url: string,
  prefix?: string,
): Promise<{ fleet: FleetView; close(): Promise<void> }> {
  const connection = new RedisConnection({ url, prefix, name: 'kuberelay:operator', scripts: SCRIPTS });
  await connection.waitReady(3000);
  const store = new RedisStore({ connection });
  return {
    fleet: {
      reports: () => connection.run('podReports', (c) => readPodReports(c, connection.keys)),
      spend: async (channelId) => {
        const [today, month] = await Promise.all([
          store.spend('channel', channelId, 'day'),
          store.spend('channel', channelId, 'month'),
        ]);
        return { today, month };
      },
    },
    close: () => store.close(),
  };
}
