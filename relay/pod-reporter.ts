import type { FastifyBaseLogger } from 'fastify';
import type { StateStore } from '../core/state/store.ts';
import type { RedisConnection } from '../redis/connection.ts';
import {
  type ChannelReport,
  DEFAULT_REPORT_TTL_MS,
  deletePodReport,
  type PodReport,
  writePodReport,
} from '../redis/pod-reports.ts';
import type { ChannelStats } from './channel-stats.ts';
import type { RelayMetrics } from './metrics.ts';
import type { RelayState } from './relay-state.ts';

/**
 * Writes this pod's report (redis/pod-reports.ts) every `intervalMs`, and at once when the
 * served config changes so the operator sees a rollout without waiting a whole interval. The
 * report lives three intervals: a pod that stops reporting drops out of the fleet by itself.
 */
export interface PodReporter {
  /** Writes a report now (tests, shutdown ordering). */
  write(): Promise<void>;
  /** Stops reporting and removes this pod's report. */
  stop(): Promise<void>;
}

export function startPodReporter(o: {
  connection: RedisConnection;
  pod: string;
  state: RelayState;
  store: StateStore;
  stats: ChannelStats;
  metrics: RelayMetrics;
  log: FastifyBaseLogger;
  intervalMs: number;
  /** Fleet-wide job figures per channel (the job plane's last count), when this pod runs jobs. */
  jobs?: () => ReadonlyMap<string, NonNullable<ChannelReport['jobs']>>;
}): PodReporter {
  const startedAt = new Date().toISOString();
  const ttlMs = Math.max(DEFAULT_REPORT_TTL_MS, o.intervalMs * 3);
  let lastHash: string | null | undefined;
  let lastAt = 0;
  let writing: Promise<void> | undefined;
  let stopped = false;

  const write = async () => {
    if (!o.connection.up || stopped) return;
    const rt = o.state.runtime;
    const inflight = new Map<string, number>();
    for (const v of (await o.metrics.inflight.get()).values) {
      inflight.set(String(v.labels.channel), v.value);
    }
    const channels: Record<string, ChannelReport> = {};
    const jobs = o.jobs?.();
    await Promise.all(
      (rt?.config.channels ?? []).map(async (c) => {
        const h = await o.store.channelHealth(c.id);
        channels[c.id] = {
          generation: c.generation,
          ...o.stats.snapshot(c.id),
          consecutiveFailures: h.consecutiveFailures,
          cooldownUntil: h.cooldownUntil,
          inflight: inflight.get(c.id) ?? 0,
        };
        // Channels whose provider runs jobs report their figures (zeros before the first job).
        if (jobs && rt?.channels.get(c.id)?.adapter.jobs) {
          channels[c.id]!.jobs = {
            ...(jobs.get(c.id) ?? { queued: 0, running: 0, completed: 0, failed: 0 }),
          };
        }
      }),
    );
    const report: PodReport = {
      pod: o.pod,
      loadedHash: rt?.config.hash ?? null,
      generation: rt?.config.generation ?? null,
      at: new Date().toISOString(),
      startedAt,
      channels,
    };
    await o.connection.run('podReport', (c) => writePodReport(c, o.connection.keys, report, ttlMs));
    lastHash = report.loadedHash;
    lastAt = Date.now();
  };

  const tick = () => {
    if (writing) return;
    const hash = o.state.runtime?.config.hash ?? null;
    if (hash === lastHash && Date.now() - lastAt < o.intervalMs) return;
    writing = write()
      .catch((err) => o.log.debug({ err }, 'pod report not written'))
      .finally(() => {
        writing = undefined;
      });
  };
  const timer = setInterval(tick, Math.min(1000, o.intervalMs));
  timer.unref();
  tick();

  return {
    write,
    async stop() {
      stopped = true;
      clearInterval(timer);
      await writing;
      if (o.connection.up) {
        await o.connection
          .run('podReport', (c) => deletePodReport(c, o.connection.keys, o.pod))
          .catch(() => {});
      }
    },
  };
}
