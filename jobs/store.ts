import type { Database, Sql } from '../db/database.ts';
import type { CanonicalError } from '../providers/contract.ts';
import type { JobKind, JobStatus } from '../providers/jobs.ts';
import type { Job, JobLimits, JobResult, StoredRequest } from './model.ts';

/**
 * The durable job table (media_tasks) and the fleet-wide coordination that lives in it:
 * - a slot is a row: dispatched (`dispatched_at` set) and not terminal. Slots are taken under a
 *   per-channel transaction lock (`pg_advisory_xact_lock`), so `limits.jobs.maxConcurrent` holds
 *   across every pod, and a slot outlives any pod: it is freed by the job reaching a terminal
 *   state, whoever observes it;
 * - the queue is the undispatched rows of a channel in `seq` (submit) order;
 * - the one poller of a job is whoever claims it (`FOR UPDATE SKIP LOCKED`, a lease with expiry):
 *   due jobs are claimed in batches, so pods share the work and never poll one job twice.
 * Every time comparison uses the database clock, so pods with skewed clocks agree.
 */

const COLUMNS = `id, channel, upstream_task_id, key_id, model, kind, status, progress, request, result, error,
  poll_attempts, seq, created_at, completed_at, dispatched_at, cost::float8 AS cost, version`;

const OPEN = `status IN ('queued', 'in_progress')`;

/** Slot transactions wait for each other (other pods') on the channel's lock: allow for a busy fleet. */
const TX = { statementTimeoutMs: 30_000 };

interface Row {
  id: string;
  channel: string;
  upstream_task_id: string | null;
  key_id: string | null;
  model: string;
  kind: string;
  status: string;
  progress: number | null;
  request: unknown;
  result: unknown;
  error: unknown;
  poll_attempts: number;
  /** int8: a decimal string (db/database.ts). */
  seq: string;
  created_at: Date;
  completed_at: Date | null;
  dispatched_at: Date | null;
  cost: number;
  version: number;
  input_reference?: Uint8Array | null;
}

/** A job claimed for one step, with the input bytes when it still has to be submitted. */
export interface ClaimedJob extends Job {
  input: Uint8Array | null;
  /** ms since dispatch, on the database clock. */
  elapsedMs: number;
  /** The deadline passed (jobs.timeout). */
  expired: boolean;
  /** How late the poll is (ms past next_poll_at), when it was scheduled. */
  lateMs?: number | null;
}

export interface NewJob {
  id: string;
  channel: string;
  keyId: string | null;
  model: string;
  kind: JobKind;
  request: StoredRequest;
  input: Uint8Array | null;
}

export type Placement = 'dispatched' | 'queued' | 'full';

export interface JobChange {
  status?: JobStatus;
  progress?: number;
  result?: JobResult;
  error?: CanonicalError | null;
  upstreamId?: string;
  cost?: number;
  /** ms from now (database clock) of the next poll. */
  nextPollInMs?: number;
  /** ms from now of the deadline (set once, at submit). */
  deadlineInMs?: number;
  pollAttempts?: number;
  /** Drop the stored input bytes (the upstream has them). */
  dropInput?: boolean;
}

export class JobStore {
  readonly #db: Database;
  /** Counts database round trips (bench/jobs.ts reports them). */
  queries = 0;

  constructor(db: Database) {
    this.#db = db;
  }

  /** This pod's slot transactions, one at a time per channel (the rest wait here, not on a connection). */
  readonly #chains = new Map<string, Promise<unknown>>();

  #serial<T>(channel: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.#chains.get(channel) ?? Promise.resolve();
    const run = prev.then(fn, fn);
    const tail = run.catch(() => {});
    this.#chains.set(channel, tail);
    void tail.then(() => {
      if (this.#chains.get(channel) === tail) this.#chains.delete(channel);
    });
    return run;
  }

  async #q<T>(sql: string, ...params: unknown[]): Promise<T[]> {
    this.queries++;
    return this.#db.query<T>(sql, params);
  }

  /**
   * Puts a new job on a channel: `claim` takes a slot now (only when one is free and nobody waits
   * before it in the queue), `queue` appends it to the channel's queue (up to maxQueue). An
   * existing row with this id (a failed-over attempt) moves.
   */
  async place(
    j: NewJob,
    limits: JobLimits,
    mode: 'claim' | 'queue',
    lease: { owner: string; ms: number },
  ): Promise<Placement> {
    // No slot limit: nothing ever waits, so there is nothing to count and no lock to take.
    if (mode === 'claim' && limits.maxConcurrent === null) {
      this.queries++;
      await insertJob(this.#db, j, true, lease);
      return 'dispatched';
    }
    return this.#serial(j.channel, () =>
      this.#db.transaction(async (tx) => {
        this.queries += 3;
        await tx.query('SELECT pg_advisory_xact_lock(hashtext($1))::text', [j.channel]);
        const [c] = await tx.query<{ held: number; waiting: number }>(
          `SELECT count(*) FILTER (WHERE dispatched_at IS NOT NULL)::int AS held,
                count(*) FILTER (WHERE dispatched_at IS NULL)::int AS waiting
         FROM media_tasks WHERE channel = $1 AND ${OPEN} AND id <> $2`,
          [j.channel, j.id],
        );
        const free = limits.maxConcurrent === null || c!.held < limits.maxConcurrent;
        let placed: Placement;
        if (mode === 'claim') placed = free && c!.waiting === 0 ? 'dispatched' : 'full';
        else placed = c!.waiting < limits.maxQueue ? 'queued' : 'full';
        if (placed === 'full') return placed;
        await insertJob(tx, j, placed === 'dispatched', lease);
        return placed;
      }, TX),
    );
  }

  /** Takes the channel's free slots for the oldest queued jobs; returns them (to be submitted). */
  async dispatchNext(
    channel: string,
    limits: JobLimits,
    lease: { owner: string; ms: number },
  ): Promise<ClaimedJob[]> {
    return this.#serial(channel, () =>
      this.#db.transaction(async (tx) => {
        this.queries += 3;
        await tx.query('SELECT pg_advisory_xact_lock(hashtext($1))::text', [channel]);
        let n = 1000;
        if (limits.maxConcurrent !== null) {
          const [c] = await tx.query<{ held: number }>(
            `SELECT count(*)::int AS held FROM media_tasks WHERE channel = $1 AND ${OPEN} AND dispatched_at IS NOT NULL`,
            [channel],
          );
          n = limits.maxConcurrent - c!.held;
        }
        if (n <= 0) return [];
        const rows = await tx.query<Row & { elapsed_ms: number; expired: boolean }>(
          `UPDATE media_tasks SET dispatched_at = now(), lease_owner = $2,
           lease_until = now() + $3::float8 * interval '1 millisecond', updated_at = now()
         WHERE id IN (SELECT id FROM media_tasks WHERE channel = $1 AND status = 'queued'
                        AND dispatched_at IS NULL ORDER BY seq LIMIT $4)
         RETURNING ${COLUMNS}, input_reference, 0::float8 AS elapsed_ms, false AS expired`,
          [channel, lease.owner, lease.ms, n],
        );
        return rows.sort((a, b) => Number(BigInt(a.seq) - BigInt(b.seq))).map(claimedOf);
      }, TX),
    );
  }

  /**
   * Claims up to `batch` jobs that are due: submitted and past their next poll time, or
   * dispatched with no upstream id whose submitter's lease ran out (it died mid-submit). Each job
   * is claimed by one pod only; the lease lets another take it if this one dies.
   */
  async claimDue(owner: string, batch: number, leaseMs: number): Promise<ClaimedJob[]> {
    const rows = await this.#q<Row & { elapsed_ms: number; expired: boolean }>(
      `UPDATE media_tasks SET lease_owner = $1, lease_until = now() + $2::float8 * interval '1 millisecond'
       WHERE id IN (
         SELECT id FROM media_tasks
         WHERE ${OPEN} AND dispatched_at IS NOT NULL AND (lease_until IS NULL OR lease_until < now())
           AND (upstream_task_id IS NULL OR next_poll_at <= now() OR deadline_at <= now())
         ORDER BY next_poll_at NULLS FIRST LIMIT $3 FOR UPDATE SKIP LOCKED)
       RETURNING ${COLUMNS}, NULL::bytea AS input_reference,
         (extract(epoch FROM now() - dispatched_at) * 1000)::float8 AS elapsed_ms,
         coalesce(deadline_at <= now(), false) AS expired,
         (extract(epoch FROM now() - next_poll_at) * 1000)::float8 AS late_ms`,
      owner,
      leaseMs,
      batch,
    );
    return rows.map((r) => ({
      ...claimedOf(r),
      lateMs: (r as unknown as { late_ms: number | null }).late_ms,
    }));
  }

  /**
   * Writes a change and lets go of the lease. A change to a terminal status applies only if the
   * job was not terminal yet (so a job is billed and counted once); returns the job after the
   * change, or undefined when it did not apply.
   */
  async update(id: string, ch: JobChange, owner?: string): Promise<Job | undefined> {
    const sets = ['lease_owner = NULL', 'lease_until = NULL', 'updated_at = now()'];
    const params: unknown[] = [id];
    const p = (v: unknown) => {
      params.push(v);
      return `$${params.length}`;
    };
    let visible = false;
    if (ch.status !== undefined) {
      sets.push(`status = ${p(ch.status)}`);
      visible = true;
      if (ch.status === 'completed' || ch.status === 'failed' || ch.status === 'cancelled') {
        sets.push('completed_at = now()', 'input_reference = NULL');
      }
    }
    if (ch.progress !== undefined) {
      sets.push(`progress = ${p(ch.progress)}`);
      visible = true;
    }
    if (ch.result !== undefined) {
      sets.push(`result = ${p(JSON.stringify(ch.result))}::jsonb`);
      visible = true;
    }
    if (ch.error !== undefined) {
      sets.push(`error = ${p(ch.error === null ? null : JSON.stringify(ch.error))}::jsonb`);
      visible = true;
    }
    if (ch.upstreamId !== undefined) sets.push(`upstream_task_id = ${p(ch.upstreamId)}`);
    if (ch.cost !== undefined) sets.push(`cost = ${p(ch.cost)}`);
    if (ch.nextPollInMs !== undefined) {
      sets.push(`next_poll_at = now() + ${p(ch.nextPollInMs)}::float8 * interval '1 millisecond'`);
    }
    if (ch.deadlineInMs !== undefined) {
      sets.push(`deadline_at = now() + ${p(ch.deadlineInMs)}::float8 * interval '1 millisecond'`);
    }
    if (ch.pollAttempts !== undefined) sets.push(`poll_attempts = ${p(ch.pollAttempts)}`);
    if (ch.dropInput) sets.push('input_reference = NULL');
    if (visible) sets.push('version = version + 1');
    let where = `id = $1 AND ${OPEN}`;
    if (owner !== undefined) where += ` AND (lease_owner IS NULL OR lease_owner = ${p(owner)})`;
    const rows = await this.#q<Row>(
      `UPDATE media_tasks SET ${sets.join(', ')} WHERE ${where} RETURNING ${COLUMNS}`,
      ...params,
    );
    return rows[0] ? jobOf(rows[0]) : undefined;
  }

  /**
   * Puts a dispatched job back at its place in the queue (its submit failed on the upstream's
   * side); returns how many times that happened to it.
   */
  async requeue(id: string): Promise<number> {
    const rows = await this.#q<{ poll_attempts: number }>(
      `UPDATE media_tasks SET dispatched_at = NULL, lease_owner = NULL, lease_until = NULL,
         poll_attempts = poll_attempts + 1, updated_at = now()
       WHERE id = $1 AND status = 'queued' AND upstream_task_id IS NULL RETURNING poll_attempts`,
      id,
    );
    return rows[0]?.poll_attempts ?? 0;
  }

  /** Drops a job that never reached an upstream (every submit attempt failed). */
  async remove(id: string): Promise<void> {
    await this.#q('DELETE FROM media_tasks WHERE id = $1 RETURNING id', id);
  }

  /** A job as its owner sees it (undefined: none, deleted, or another key's). */
  async get(id: string, keyId: string | null): Promise<Job | undefined> {
    const rows = await this.#q<Row>(
      `SELECT ${COLUMNS} FROM media_tasks WHERE id = $1 AND key_id IS NOT DISTINCT FROM $2 AND deleted_at IS NULL`,
      id,
      keyId,
    );
    return rows[0] ? jobOf(rows[0]) : undefined;
  }

  /** The key's jobs, newest first (or oldest with `asc`), after a cursor id. */
  async list(
    keyId: string | null,
    o: { after?: string; limit: number; order: 'asc' | 'desc' },
  ): Promise<Job[]> {
    const cmp = o.order === 'asc' ? '>' : '<';
    const params: unknown[] = [keyId, o.limit];
    let cursor = '';
    if (o.after) {
      params.push(o.after);
      cursor = `AND seq ${cmp} (SELECT seq FROM media_tasks WHERE id = $3)`;
    }
    const rows = await this.#q<Row>(
      `SELECT ${COLUMNS} FROM media_tasks WHERE key_id IS NOT DISTINCT FROM $1 AND deleted_at IS NULL ${cursor}
       ORDER BY seq ${o.order === 'asc' ? 'ASC' : 'DESC'} LIMIT $2`,
      ...params,
    );
    return rows.map(jobOf);
  }

  async markDeleted(id: string): Promise<void> {
    await this.#q(
      'UPDATE media_tasks SET deleted_at = now(), updated_at = now() WHERE id = $1 RETURNING id',
      id,
    );
  }

  /** Channels with jobs waiting in kuberelay's queue. */
  async queuedChannels(): Promise<string[]> {
    const rows = await this.#q<{ channel: string }>(
      `SELECT DISTINCT channel FROM media_tasks WHERE status = 'queued' AND dispatched_at IS NULL`,
    );
    return rows.map((r) => r.channel);
  }

  /** Open jobs per channel: waiting in kuberelay's queue, and holding a slot (fleet-wide figures). */
  async openCounts(): Promise<{ channel: string; queued: number; running: number }[]> {
    return this.#q(
      `SELECT channel, count(*) FILTER (WHERE dispatched_at IS NULL)::int AS queued,
              count(*) FILTER (WHERE dispatched_at IS NOT NULL)::int AS running
       FROM media_tasks WHERE ${OPEN} GROUP BY channel`,
    );
  }

  /** Fleet-wide figures per channel: open jobs now, and jobs finished in the last 24 hours. */
  async channelCounts(): Promise<({ channel: string } & JobCounts)[]> {
    return this.#q(
      `SELECT channel,
              count(*) FILTER (WHERE ${OPEN} AND dispatched_at IS NULL)::int AS queued,
              count(*) FILTER (WHERE ${OPEN} AND dispatched_at IS NOT NULL)::int AS running,
              count(*) FILTER (WHERE status = 'completed')::int AS completed,
              count(*) FILTER (WHERE status IN ('failed', 'cancelled'))::int AS failed
       FROM media_tasks WHERE ${OPEN} OR completed_at > now() - interval '24 hours' GROUP BY channel`,
    );
  }
}

/** A channel's jobs: open now (queued, running) and finished in the last 24 h (completed, failed). */
export interface JobCounts {
  queued: number;
  running: number;
  completed: number;
  failed: number;
}

/** Inserts a job (queued, or holding a slot), or moves a failed-over one to its new channel. */
async function insertJob(db: Sql, j: NewJob, dispatched: boolean, lease: { owner: string; ms: number }) {
  await db.query(
    `INSERT INTO media_tasks (id, channel, key_id, model, kind, status, progress, request, input_reference,
     dispatched_at, lease_owner, lease_until, updated_at)
   VALUES ($1, $2, $3, $4, $5, 'queued', 0, $6::jsonb, $7,
     CASE WHEN $8 THEN now() END, CASE WHEN $8 THEN $9 END,
     CASE WHEN $8 THEN now() + $10::float8 * interval '1 millisecond' END, now())
   ON CONFLICT (id) DO UPDATE SET channel = EXCLUDED.channel, dispatched_at = EXCLUDED.dispatched_at,
     lease_owner = EXCLUDED.lease_owner, lease_until = EXCLUDED.lease_until, updated_at = now()`,
    [
      j.id,
      j.channel,
      j.keyId,
      j.model,
      j.kind,
      JSON.stringify(j.request),
      j.input,
      dispatched,
      lease.owner,
      lease.ms,
    ],
  );
}

function jobOf(r: Row): Job {
  return {
    id: r.id,
    channel: r.channel,
    upstreamId: r.upstream_task_id,
    keyId: r.key_id,
    model: r.model,
    kind: r.kind as JobKind,
    status: r.status as JobStatus,
    progress: r.progress ?? 0,
    request: (r.request ?? { upstreamModel: r.model, prompt: '' }) as StoredRequest,
    result: (r.result ?? {}) as JobResult,
    error: (r.error ?? null) as CanonicalError | null,
    pollAttempts: r.poll_attempts,
    seq: BigInt(r.seq),
    createdAt: new Date(r.created_at),
    completedAt: r.completed_at ? new Date(r.completed_at) : null,
    dispatchedAt: r.dispatched_at ? new Date(r.dispatched_at) : null,
    cost: Number(r.cost),
    version: r.version,
  };
}

function claimedOf(r: Row & { elapsed_ms: number; expired: boolean }): ClaimedJob {
  const input = r.input_reference ? new Uint8Array(r.input_reference) : null;
  return { ...jobOf(r), input, elapsedMs: Number(r.elapsed_ms) || 0, expired: r.expired === true };
}
