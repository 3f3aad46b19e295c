import type { FastifyBaseLogger } from 'fastify';
import type { ClaimedJob } from './store.ts';

/**
 * This pod's share of the fleet's polling: every tick it claims the jobs that are due (a batch at
 * a time, each claimed by one pod only, jobs/store.ts) and steps them concurrently, up to a bound;
 * a full batch is followed by the next one at once, so a backlog drains at the pods' combined
 * rate, not one job at a time. Every second it also offers free slots to queued jobs (the pod
 * that freed a slot does that at once; this sweep covers pods that died before they could) and
 * refreshes the fleet-wide gauges.
 */

/** What the poller drives: the job plane's claiming, stepping and dispatching (jobs/plane.ts). */
export interface PollTarget {
  claimDue(owner: string, batch: number, leaseMs: number): Promise<ClaimedJob[]>;
  queuedChannels(): Promise<string[]>;
  step(j: ClaimedJob): Promise<void>;
  dispatch(channelId: string): Promise<void>;
  refreshGauges(): Promise<void>;
}

export interface PollerOptions {
  owner: string;
  tickMs: number;
  leaseMs: number;
  log: FastifyBaseLogger;
  /** Jobs claimed per query (default 100). */
  batch?: number;
  /** Upstream calls in flight from this pod at most (default 64). */
  concurrency?: number;
}

const SWEEP_MS = 1000;

export class JobPoller {
  readonly #target: PollTarget;
  readonly #o: Required<PollerOptions>;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #stopped = false;
  #lastSweep = 0;
  readonly #inflight = new Set<Promise<void>>();

  constructor(target: PollTarget, o: PollerOptions) {
    this.#target = target;
    this.#o = { batch: 100, concurrency: 64, ...o };
  }

  start() {
    this.#stopped = false;
    this.#schedule(0);
  }

  async stop() {
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.#running;
    await Promise.allSettled([...this.#inflight]);
  }

  #schedule(ms: number) {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => {
      this.#running = this.#tick()
        .catch((err) => this.#o.log.warn({ err: (err as Error).message }, 'job poller: tick failed'))
        .finally(() => {
          this.#running = undefined;
          this.#schedule(this.#o.tickMs);
        });
    }, ms);
    this.#timer.unref();
  }

  async #tick() {
    const now = Date.now();
    if (now - this.#lastSweep >= SWEEP_MS) {
      this.#lastSweep = now;
      await this.#sweep();
    }
    for (;;) {
      if (this.#stopped) return;
      const room = this.#o.concurrency - this.#inflight.size;
      if (room <= 0) {
        await Promise.race(this.#inflight);
        continue;
      }
      const jobs = await this.#target.claimDue(this.#o.owner, Math.min(room, this.#o.batch), this.#o.leaseMs);
      for (const j of jobs) {
        const p: Promise<void> = this.#target
          .step(j)
          .catch((err) => this.#o.log.warn({ err: (err as Error).message, job: j.id }, 'job poll failed'))
          .finally(() => this.#inflight.delete(p));
        this.#inflight.add(p);
      }
      if (jobs.length < Math.min(room, this.#o.batch)) return;
    }
  }

  async #sweep() {
    const channels = await this.#target.queuedChannels();
    await Promise.all(
      channels.map((c) =>
        this.#target.dispatch(c).catch((err) => this.#o.log.warn({ err, channel: c }, 'job dispatch failed')),
      ),
    );
    await this.#target.refreshGauges();
  }
}
