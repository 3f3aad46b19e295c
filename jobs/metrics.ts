import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/**
 * The job plane's metrics (`kuberelay_jobs_*`), labelled by channel only. `queued` and `running`
 * are fleet-wide figures read from the job table, so every pod reports the same value: aggregate
 * them with max(), not sum(). The counters count what this pod did: sum them.
 */
export type JobMetrics = ReturnType<typeof createJobMetrics>;

export function createJobMetrics(registry: Registry) {
  const registers = [registry];
  return {
    queued: new Gauge({
      name: 'kuberelay_jobs_queued',
      help: "Async jobs waiting in kuberelay's queue for a slot of their channel (fleet-wide; use max)",
      labelNames: ['channel'],
      registers,
    }),
    running: new Gauge({
      name: 'kuberelay_jobs_running',
      help: 'Async jobs holding a slot of their channel: submitted upstream, not yet terminal (fleet-wide; use max)',
      labelNames: ['channel'],
      registers,
    }),
    dispatched: new Counter({
      name: 'kuberelay_jobs_dispatched_total',
      help: 'Async jobs submitted to their upstream',
      labelNames: ['channel'],
      registers,
    }),
    completed: new Counter({
      name: 'kuberelay_jobs_completed_total',
      help: 'Async jobs that completed',
      labelNames: ['channel'],
      registers,
    }),
    failed: new Counter({
      name: 'kuberelay_jobs_failed_total',
      help: 'Async jobs that failed, by reason (upstream, timeout, gone, submit, cancelled)',
      labelNames: ['channel', 'reason'],
      registers,
    }),
    polls: new Counter({
      name: 'kuberelay_jobs_polls_total',
      help: 'Status calls to upstreams, by result (ok, retry, gone, error)',
      labelNames: ['channel', 'result'],
      registers,
    }),
    pollLateness: new Histogram({
      name: 'kuberelay_jobs_poll_lateness_seconds',
      help: 'How long after its scheduled time a job was polled',
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    }),
  };
}
