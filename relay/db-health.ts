import type { FastifyBaseLogger } from 'fastify';
import type { RelayMetrics } from './metrics.ts';

/**
 * Whether the database answered lately, as seen by every part that uses it (key lookups and polls,
 * budgets, the log writer). While it is down the request path stops waiting on it: cached keys
 * keep serving and the writers buffer. Transitions are logged once, not per failure.
 */
export class DatabaseHealth {
  #up = true;
  readonly #metrics: RelayMetrics;
  readonly #log: FastifyBaseLogger;

  constructor(metrics: RelayMetrics, log: FastifyBaseLogger) {
    this.#metrics = metrics;
    this.#log = log;
    metrics.databaseUp.set(1);
  }

  get up(): boolean {
    return this.#up;
  }

  ok() {
    if (this.#up) return;
    this.#up = true;
    this.#metrics.databaseUp.set(1);
    this.#log.info('database reachable again');
  }

  failed(operation: string, err: unknown) {
    this.#metrics.databaseErrors.inc({ operation });
    if (!this.#up) return;
    this.#up = false;
    this.#metrics.databaseUp.set(0);
    this.#log.error(
      { operation, err: { message: (err as Error)?.message, code: (err as { code?: unknown })?.code } },
      'database unreachable: serving cached keys, buffering request logs',
    );
  }
}
