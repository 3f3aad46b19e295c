import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

export type OperatorMetrics = ReturnType<typeof createOperatorMetrics>;

export function createOperatorMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'kuberelay_operator_' });
  const registers = [registry];
  return {
    registry,
    reconciles: new Counter({
      name: 'kuberelay_operator_reconciles_total',
      help: 'Reconciles by result (success, error, cancelled, skipped_not_synced)',
      labelNames: ['result'],
      registers,
    }),
    reconcileDuration: new Histogram({
      name: 'kuberelay_operator_reconcile_duration_seconds',
      help: 'Time to render and write the relay config',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    }),
    events: new Counter({
      name: 'kuberelay_operator_events_total',
      help: 'Kubernetes Events by what became of them (created, patched, dropped_spam, dropped_queue, error)',
      labelNames: ['result'],
      registers,
    }),
    configWrites: new Counter({
      name: 'kuberelay_operator_config_writes_total',
      help: 'Writes of the relay config Secret by result',
      labelNames: ['result'],
      registers,
    }),
    statusWrites: new Counter({
      name: 'kuberelay_operator_status_writes_total',
      help: 'Status patches by kind and result',
      labelNames: ['kind', 'result'],
      registers,
    }),
    watchRestarts: new Counter({
      name: 'kuberelay_operator_watch_restarts_total',
      help: 'Watches re-established after an error or a periodic resync',
      labelNames: ['resource', 'reason'],
      registers,
    }),
    leader: new Gauge({
      name: 'kuberelay_operator_leader',
      help: '1 while this operator holds the leader lease',
      registers,
    }),
    configGeneration: new Gauge({
      name: 'kuberelay_operator_config_generation',
      help: 'Generation of the relay config last written',
      registers,
    }),
    objects: new Gauge({
      name: 'kuberelay_operator_objects',
      help: 'Channels and RateLimitPolicies by kind and acceptance',
      labelNames: ['kind', 'accepted'],
      registers,
    }),
  };
}
