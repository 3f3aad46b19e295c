import type { RedisClient } from './connection.ts';
import type { KeyLayout } from './keys.ts';

/**
 * Pod reports: every relay pod writes what it serves and what it sees per channel, with a TTL;
 * the operator reads them all to fill `Programmed`, `Healthy` and the Channel status fields. A pod
 * that stops reporting disappears when its report expires.
 *
 * Layout (one hash tag, so writing and reading are single-slot on Redis Cluster):
 *   <prefix>{pods}:r:<pod>   JSON PodReport, PX = ttl
 *   <prefix>{pods}:index     zset pod -> time of its last report (ms); stale members are pruned
 *
 * Reading them (the operator):
 *   const conn = new RedisConnection({ url: process.env.REDIS_URL!, prefix });  // redis/connection.ts
 *   await conn.waitReady(5000);
 *   const reports = await readPodReports(conn.client, conn.keys);
 */

export interface ChannelReport {
  /** metadata.generation of the Channel in the config this pod serves (drives `Programmed`). */
  generation: number;
  /** Attempts sent to the channel in the last 5 minutes (failovers included). */
  requests5m: number;
  /** Of those, the ones that failed (status in cooldown.onStatus, connect errors, timeouts). */
  errors5m: number;
  /** Since the pod started. */
  requestsTotal: number;
  errorsTotal: number;
  consecutiveFailures: number;
  /** Epoch ms; 0 when not cooling down. */
  cooldownUntil: number;
  lastError?: { code: string; message: string; at: string };
  /** Median time to response headers over the last 5 minutes; absent without samples. */
  p50LatencyMs?: number;
  /** Requests in flight from this pod now. */
  inflight: number;
  /**
   * Async jobs of this channel, fleet-wide (read from the job table, so every pod reports the
   * same figures): open now, and finished in the last 24 hours. Absent without a job plane.
   */
  jobs?: { queued: number; running: number; completed: number; failed: number };
}

export interface PodReport {
  pod: string;
  /** Hash of the config snapshot this pod serves (RelayConfig.hash); null before the first. */
  loadedHash: string | null;
  generation: number | null;
  /** ISO time of the report. */
  at: string;
  startedAt: string;
  channels: Record<string, ChannelReport>;
}

export const DEFAULT_REPORT_TTL_MS = 15_000;

export async function writePodReport(
  client: RedisClient,
  keys: KeyLayout,
  report: PodReport,
  ttlMs = DEFAULT_REPORT_TTL_MS,
): Promise<void> {
  const now = Date.parse(report.at);
  await client
    .multi()
    .set(keys.podReport(report.pod), JSON.stringify(report), 'PX', ttlMs)
    .zadd(keys.podIndex(), now, report.pod)
    .zremrangebyscore(keys.podIndex(), '-inf', now - ttlMs)
    .pexpire(keys.podIndex(), ttlMs * 4)
    .exec();
}

/** Every live pod's report (the operator's view of the fleet), sorted by pod name. */
export async function readPodReports(client: RedisClient, keys: KeyLayout): Promise<PodReport[]> {
  const pods = await client.zrange(keys.podIndex(), 0, '-1');
  if (pods.length === 0) return [];
  const raw = await client.mget(...pods.map((p) => keys.podReport(p)));
  const reports: PodReport[] = [];
  for (const r of raw) {
    if (r === null) continue; // expired: the pod stopped reporting
    try {
      reports.push(JSON.parse(r) as PodReport);
    } catch {
      // a report from an incompatible version: skip it rather than fail the whole read
    }
  }
  return reports.sort((a, b) => a.pod.localeCompare(b.pod));
}

export async function deletePodReport(client: RedisClient, keys: KeyLayout, pod: string): Promise<void> {
  await client.multi().del(keys.podReport(pod)).zrem(keys.podIndex(), pod).exec();
}
