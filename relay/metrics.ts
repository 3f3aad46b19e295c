import { Counter, collectDefaultMetrics, Gauge, Registry } from 'prom-client';
import { createJobMetrics } from '../jobs/metrics.ts';
import { CounterFamily, GaugeFamily, HistogramFamily } from './metric-series.ts';

/**
 * The relay's Prometheus metrics. Labels are bounded by the config: `channel` is a Channel id,
 * `model` a configured model name (anything else is `other`), `route` one of the fixed paths.
 * Never a key, a user or a client address.
 *
 * What every request updates is a family of metric-series.ts (a series object per label set, no
 * label hashing per call); the rest, updated now and then, are prom-client's own.
 */

// Latencies of an AI relay span from sub-millisecond overhead to minutes-long generations.
const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];
const OVERHEAD_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.003, 0.005, 0.01, 0.025, 0.05, 0.1];

export type RelayMetrics = ReturnType<typeof createRelayMetrics>;

export function createRelayMetrics(opts: { defaultMetrics?: boolean; exemplars?: boolean } = {}) {
  const registry = new Registry();
  if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: registry, prefix: 'kuberelay_' });
  const registers = [registry];
  // With tracing on, a request's duration carries its trace id as an exemplar (OpenMetrics only:
  // metrics-exposition.ts); the Prometheus text omits them.
  const exemplars = opts.exemplars === true;
  const requestDuration = new HistogramFamily({
    name: 'kuberelay_request_duration_seconds',
    help: 'Total time from request to the last byte sent to the client',
    labelNames: ['route', 'model'],
    buckets: LATENCY_BUCKETS,
    exemplars,
    registers,
  });
  return {
    registry,
    // Always exported (no series while no job runs), so alerts and dashboards find their families
    // on every relay; the job plane, when a database runs it, counts into them.
    jobs: createJobMetrics(registry),
    /** Observes one request's duration; `traceId` becomes the bucket's exemplar when exemplars are on. */
    observeRequestDuration(labels: { route: string; model: string }, seconds: number, traceId?: string) {
      const exemplar = traceId === undefined ? undefined : { trace_id: traceId };
      requestDuration.labels(labels.route, labels.model).observe(seconds, exemplar);
    },
    requests: new CounterFamily({
      name: 'kuberelay_requests_total',
      help: 'Client requests by route, model, serving channel and HTTP status',
      labelNames: ['route', 'model', 'channel', 'code'],
      registers,
    }),
    requestDuration,
    upstreamDuration: new HistogramFamily({
      name: 'kuberelay_upstream_duration_seconds',
      help: 'Time from sending to an upstream until its response headers, per attempt',
      labelNames: ['channel', 'model'],
      buckets: LATENCY_BUCKETS,
      registers,
    }),
    ttft: new HistogramFamily({
      name: 'kuberelay_time_to_first_token_seconds',
      help: 'Streaming: time from the client request to the first event sent back',
      labelNames: ['channel', 'model'],
      buckets: LATENCY_BUCKETS,
      registers,
    }),
    attempts: new HistogramFamily({
      name: 'kuberelay_attempts_per_request',
      help: 'Upstream attempts of each request that reached a channel (failovers included)',
      labelNames: ['route'],
      buckets: [1, 2, 3, 4, 5, 8],
      registers,
    }),
    overhead: new HistogramFamily({
      name: 'kuberelay_overhead_seconds',
      help: 'Time the relay itself added before the response started (total minus upstream)',
      labelNames: ['route'],
      buckets: OVERHEAD_BUCKETS,
      registers,
    }),
    tokens: new CounterFamily({
      name: 'kuberelay_tokens_total',
      help: 'Tokens accounted, by channel, model and type (prompt, completion, cached, cache_write, reasoning)',
      labelNames: ['channel', 'model', 'type'],
      registers,
    }),
    cost: new CounterFamily({
      name: 'kuberelay_cost_usd_total',
      help: 'Cost in USD computed from channel pricing',
      labelNames: ['channel', 'model'],
      registers,
    }),
    upstreamErrors: new Counter({
      name: 'kuberelay_upstream_errors_total',
      help: 'Failed upstream attempts by channel and reason (status class, connect, timeout, reset, stream)',
      labelNames: ['channel', 'reason'],
      registers,
    }),
    failovers: new Counter({
      name: 'kuberelay_failovers_total',
      help: 'Requests moved from a channel to the next candidate',
      labelNames: ['channel', 'reason'],
      registers,
    }),
    cooldowns: new Counter({
      name: 'kuberelay_cooldowns_total',
      help: 'Times a channel entered cooldown (seen by this process)',
      labelNames: ['channel'],
      registers,
    }),
    channelState: new Gauge({
      name: 'kuberelay_channel_state',
      help: '1 for the current state of each channel (healthy, cooling_down, suspended)',
      labelNames: ['channel', 'state'],
      registers,
    }),
    inflight: new GaugeFamily({
      name: 'kuberelay_inflight_requests',
      help: 'Upstream requests in flight from this process, per channel',
      labelNames: ['channel'],
      registers,
    }),
    queueDepth: new Gauge({
      name: 'kuberelay_queue_depth',
      help: 'Requests waiting for a concurrency permit in this process, per channel',
      labelNames: ['channel'],
      registers,
    }),
    queueRejections: new Counter({
      name: 'kuberelay_queue_rejections_total',
      help: 'Requests that found a channel queue full or waited past queueTimeout',
      labelNames: ['channel', 'reason'],
      registers,
    }),
    configReloads: new Counter({
      name: 'kuberelay_config_reloads_total',
      help: 'Config snapshots offered to this process, by result (success, invalid)',
      labelNames: ['result'],
      registers,
    }),
    configInfo: new Gauge({
      name: 'kuberelay_config_generation',
      help: 'Generation of the config snapshot this process serves',
      registers,
    }),
    configLastReload: new Gauge({
      name: 'kuberelay_config_last_reload_success_timestamp_seconds',
      help: 'When this process last swapped in a new config',
      registers,
    }),
    // Keys, request logs and usage (relay/auth.ts, relay/request-log.ts).
    auth: new CounterFamily({
      name: 'kuberelay_auth_total',
      help: 'Client key checks by result (ok, missing, invalid, revoked, expired, rotated, model_not_allowed, budget_exhausted, unavailable)',
      labelNames: ['result'],
      registers,
    }),
    authCache: new CounterFamily({
      name: 'kuberelay_auth_cache_lookups_total',
      help: 'Key cache lookups: hit, miss (read from the database), stale (database unreachable, cached entry used)',
      labelNames: ['result'],
      registers,
    }),
    requestLogsWritten: new Counter({
      name: 'kuberelay_request_logs_written_total',
      help: 'Request-log rows written to the database',
      registers,
    }),
    requestLogsDropped: new Counter({
      name: 'kuberelay_request_logs_dropped_total',
      help: 'Request-log rows lost: buffer_full (database slow or down), shutdown (unflushed at exit)',
      labelNames: ['reason'],
      registers,
    }),
    requestLogsSampledOut: new Counter({
      name: 'kuberelay_request_logs_sampled_out_total',
      help: 'Successful, fast requests not logged because of KUBERELAY_LOG_SAMPLE_RATE',
      registers,
    }),
    requestLogsBuffered: new Gauge({
      name: 'kuberelay_request_logs_buffered',
      help: 'Request-log rows waiting to be written',
      registers,
    }),
    usageDropped: new Counter({
      name: 'kuberelay_usage_rollups_dropped_total',
      help: 'Pending usage rollup rows (sums per day, key, channel, model) lost: too many while the database was down, or unwritten at shutdown',
      registers,
    }),
    databaseUp: new Gauge({
      name: 'kuberelay_database_up',
      help: '1 when the last database operation succeeded, 0 when it failed',
      registers,
    }),
    databaseErrors: new Counter({
      name: 'kuberelay_database_errors_total',
      help: 'Failed database operations by operation (key_lookup, key_poll, spend, write_logs, write_usage)',
      labelNames: ['operation'],
      registers,
    }),
    ratelimitDecisions: new CounterFamily({
      name: 'kuberelay_ratelimit_decisions_total',
      help: 'RateLimitPolicy decisions by policy: allowed, rejected, shadow_rejected, unavailable_allowed, unavailable_denied',
      labelNames: ['policy', 'decision'],
      registers,
    }),
    ratelimitCheckDuration: new HistogramFamily({
      name: 'kuberelay_ratelimit_check_duration_seconds',
      help: 'Time to decide the rate limits of a request or attempt (one limiter call)',
      buckets: OVERHEAD_BUCKETS,
      registers,
    }),
    // Registered by the app only when a shared store (Redis) is configured.
    redisUp: new Gauge({
      name: 'kuberelay_redis_up',
      help: '1 when Redis is connected and answering in time; 0 while the relay serves on local state',
      registers: [],
    }),
    redisErrors: new Counter({
      name: 'kuberelay_redis_command_errors_total',
      help: 'Redis commands that failed or were skipped because Redis was unavailable, by operation',
      labelNames: ['op'],
      registers: [],
    }),
  };
}
