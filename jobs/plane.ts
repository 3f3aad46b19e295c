import { EventEmitter } from 'node:events';
import type { FastifyBaseLogger } from 'fastify';
import type { Dispatcher } from 'undici';
import type { RequestRecorder } from '../core/accounting.ts';
import { type Candidate, orderCandidates } from '../core/selection.ts';
import type { StateStore } from '../core/state/store.ts';
import { parseRetryAfter } from '../core/status-match.ts';
import type { Database } from '../db/database.ts';
import { type CanonicalError, UntranslatableError } from '../providers/contract.ts';
import type { JobKind, JobSnapshot } from '../providers/jobs.ts';
import { modelNotFound, RelayError } from '../relay/errors.ts';
import type { RelayMetrics } from '../relay/metrics.ts';
import type { RelayState } from '../relay/relay-state.ts';
import type { ChannelRuntime } from '../relay/runtime.ts';
import { upstreamFault } from '../relay/upstream-fault.ts';
import type { JobMetrics } from './metrics.ts';
import {
  applySnapshot,
  isTerminal,
  type Job,
  type JobLimits,
  jobCost,
  jobLimitsOf,
  jobRequestOf,
  newJobId,
  nextPollDelay,
  type StoredRequest,
} from './model.ts';
import { JobPoller } from './poller.ts';
import { fetchResult } from './result-fetch.ts';
import { type ClaimedJob, type JobChange, type JobCounts, JobStore, type NewJob } from './store.ts';
import { readJson, sendCall } from './upstream.ts';

/**
 * The job plane of one relay pod: accepts jobs (failover at submit only; a job belongs to its
 * channel after that), submits queued ones as slots free, runs this pod's share of the polling
 * (jobs/poller.ts), bills at success and tells local listeners (SSE) about every change. All
 * coordination between pods is in the job table (jobs/store.ts).
 */

export interface JobPlaneDeps {
  db: Database;
  state: RelayState;
  store: StateStore;
  metrics: RelayMetrics;
  log: FastifyBaseLogger;
  recorder?: RequestRecorder | undefined;
  /** This pod's name (lease owner). */
  pod: string;
  maxAttempts: number;
  /** How often the poller looks for due jobs (default 250 ms). */
  tickMs?: number;
}

/** A submit call is bounded by this, whatever the channel's timeouts say; a status call by less. */
const CALL_TIMEOUT_MS = 60_000;
const POLL_TIMEOUT_MS = 15_000;
/**
 * A claim lasts this long: past it another pod takes the job (its claimer died). A poll's claim is
 * short, so a pod killed mid-poll delays that job by seconds, not minutes.
 */
const LEASE_MS = CALL_TIMEOUT_MS + 15_000;
const POLL_LEASE_MS = POLL_TIMEOUT_MS + 5_000;
/** A queued job whose submit keeps failing on the upstream's side fails after this many tries. */
const MAX_SUBMITS = 10;

export interface CreateJob {
  kind: JobKind;
  model: string;
  keyId: string | null;
  request: Omit<StoredRequest, 'upstreamModel'>;
  input: Uint8Array | null;
}

type SubmitOutcome =
  | { ok: true; job: Job }
  | { ok: false; retryable: boolean; error: RelayError; status?: number; retryAfterMs?: number };

export class JobPlane {
  readonly store: JobStore;
  readonly metrics: JobMetrics;
  readonly #d: JobPlaneDeps;
  readonly #events = new EventEmitter();
  readonly #poller: JobPoller;
  /** Consecutive failed polls per job (this pod's view; it only stretches the interval). */
  readonly #pollFailures = new Map<string, number>();

  constructor(d: JobPlaneDeps) {
    this.#d = d;
    this.store = new JobStore(d.db);
    this.metrics = d.metrics.jobs;
    this.#events.setMaxListeners(0);
    this.#poller = new JobPoller(
      {
        claimDue: (owner, batch, leaseMs) => this.store.claimDue(owner, batch, leaseMs),
        queuedChannels: () => this.store.queuedChannels(),
        step: (j) => this.step(j),
        dispatch: (c) => this.dispatch(c),
        refreshGauges: () => this.refreshGauges(),
      },
      {
        owner: d.pod,
        tickMs: d.tickMs ?? 250,
        leaseMs: POLL_LEASE_MS,
        log: d.log,
      },
    );
  }

  start() {
    this.#poller.start();
  }

  async stop() {
    await this.#poller.stop();
  }

  /** Called with the job after every change this pod made (SSE streams on this pod). */
  onChange(id: string, listener: (j: Job) => void): () => void {
    this.#events.on(id, listener);
    return () => this.#events.off(id, listener);
  }

  #changed(j: Job) {
    this.#events.emit(j.id, j);
  }

  channel(id: string): ChannelRuntime | undefined {
    return this.#d.state.runtime?.channels.get(id);
  }

  limitsOf(ch: ChannelRuntime): JobLimits {
    return jobLimitsOf(ch.config);
  }

  // ---- accept --------------------------------------------------------------------------------

  /**
   * A new job: submitted at once to the first candidate with a free slot (failing over to the
   * next on a retryable failure), else queued on the first candidate with queue room.
   */
  async create(c: CreateJob): Promise<Job> {
    const runtime = this.#d.state.runtime;
    if (!runtime)
      throw new RelayError(503, 'server_error', 'config_not_loaded', 'the relay has no config loaded yet');
    const tiers = runtime.index.get(c.model);
    if (!tiers) {
      throw modelNotFound(c.model);
    }
    const now = Date.now();
    const serves = (cand: Candidate) => {
      const ch = runtime.channels.get(cand.channel.id);
      return ch?.adapter.jobs?.supports(c.kind) === true;
    };
    const able = tiers.map((t) => t.filter(serves)).filter((t) => t.length > 0);
    if (able.length === 0) {
      throw new RelayError(
        400,
        'invalid_request_error',
        'unsupported_operation',
        `no channel serving model '${c.model}' runs ${c.kind} jobs`,
        { param: 'model' },
      );
    }
    const available = (cand: Candidate) => this.#d.store.cooldownUntil(cand.channel.id) <= now;
    const candidates = orderCandidates(able, available, this.#d.maxAttempts);
    if (candidates.length === 0) {
      throw new RelayError(
        503,
        'server_error',
        'no_channel_available',
        `no channel is available for model '${c.model}': every channel serving it is cooling down`,
      );
    }
    const id = newJobId(c.kind);
    const lease = { owner: this.#d.pod, ms: LEASE_MS };
    let last: SubmitOutcome | undefined;
    for (const cand of candidates) {
      const ch = runtime.channels.get(cand.channel.id)!;
      const nj = this.#newJob(id, c, cand);
      const placed = await this.store.place(nj, this.limitsOf(ch), 'claim', lease);
      if (placed !== 'dispatched') continue;
      last = await this.#submit(ch, { ...nj, request: nj.request }, nj.input, true);
      if (last.ok) return last.job;
      if (!last.retryable) break;
    }
    if (last && !last.ok) {
      await this.store.remove(id);
      throw last.error;
    }
    // Every slot is taken: wait in kuberelay's queue of the first candidate with room.
    for (const cand of candidates) {
      const ch = runtime.channels.get(cand.channel.id)!;
      const nj = this.#newJob(id, c, cand);
      if ((await this.store.place(nj, this.limitsOf(ch), 'queue', lease)) === 'queued') {
        const job = await this.store.get(id, c.keyId);
        if (job) {
          this.#changed(job);
          return job;
        }
      }
    }
    throw new RelayError(
      429,
      'rate_limit_error',
      'job_queue_full',
      `every channel serving '${c.model}' has all its job slots busy and its queue full (limits.jobs); retry later`,
      { headers: { 'retry-after': '30' } },
    );
  }

  /** A remix of a finished video: on the source's channel (its upstream has the source). */
  async remix(source: Job, prompt: string): Promise<Job> {
    const ch = this.channel(source.channel);
    if (!ch) {
      throw new RelayError(
        409,
        'invalid_request_error',
        'channel_gone',
        `the channel that made video ${source.id} is no longer configured`,
      );
    }
    const id = newJobId(source.kind);
    const request: StoredRequest = {
      upstreamModel: source.request.upstreamModel,
      prompt,
      remixOf: source.id,
      remixOfUpstream: source.upstreamId!,
    };
    if (source.request.seconds !== undefined) request.seconds = source.request.seconds;
    if (source.request.size !== undefined) request.size = source.request.size;
    const nj: NewJob = {
      id,
      channel: source.channel,
      keyId: source.keyId,
      model: source.model,
      kind: source.kind,
      request,
      input: null,
    };
    const lease = { owner: this.#d.pod, ms: LEASE_MS };
    const limits = this.limitsOf(ch);
    if ((await this.store.place(nj, limits, 'claim', lease)) === 'dispatched') {
      const r = await this.#submit(ch, nj, null, true);
      if (r.ok) return r.job;
      await this.store.remove(id);
      throw r.error;
    }
    if ((await this.store.place(nj, limits, 'queue', lease)) === 'queued') {
      const job = await this.store.get(id, nj.keyId);
      if (job) return job;
    }
    throw new RelayError(
      429,
      'rate_limit_error',
      'job_queue_full',
      `channel ${source.channel} has all its job slots busy and its queue full (limits.jobs); retry later`,
      { headers: { 'retry-after': '30' } },
    );
  }

  #newJob(id: string, c: CreateJob, cand: Candidate): NewJob {
    return {
      id,
      channel: cand.channel.id,
      keyId: c.keyId,
      model: c.model,
      kind: c.kind,
      request: { ...c.request, upstreamModel: cand.model.upstreamName },
      input: c.input,
    };
  }

  /**
   * Sends the submit call for a job that holds a slot. On success the job is in progress; on a
   * failure the slot is let go (`accepting`: the row is removed by the caller, which may fail
   * over; otherwise the queued job fails).
   */
  async #submit(
    ch: ChannelRuntime,
    j: Pick<NewJob, 'id' | 'kind' | 'request' | 'keyId'>,
    input: Uint8Array | null,
    accepting: boolean,
  ): Promise<SubmitOutcome> {
    const ops = ch.adapter.jobs!;
    const id = ch.config.id;
    const fail = async (o: Exclude<SubmitOutcome, { ok: true }>) => {
      if (o.retryable) this.#channelFailed(ch, o.status, o.retryAfterMs, o.error.message);
      if (!accepting && o.retryable && (await this.store.requeue(j.id)) < MAX_SUBMITS) return o;
      if (!accepting) {
        const done = await this.store.update(j.id, {
          status: 'failed',
          error: { message: o.error.message, type: o.error.type, code: o.error.code },
        });
        if (done) this.#terminal(done, 'submit');
      }
      return o;
    };
    const req = jobRequestOf(j.kind, j.request, input);
    let call: ReturnType<typeof ops.submit>;
    try {
      call = ops.submit(req, ch.target);
    } catch (err) {
      if (!(err instanceof UntranslatableError)) throw err;
      return fail({
        ok: false,
        retryable: false,
        error: new RelayError(
          400,
          'invalid_request_error',
          'unsupported_parameter',
          `${err.message} (channel ${id})`,
          {
            param: err.field,
          },
        ),
      });
    }
    let res: Dispatcher.ResponseData;
    try {
      res = await sendCall(ch, call, { timeoutMs: Math.min(ch.config.timeouts.totalMs, CALL_TIMEOUT_MS) });
    } catch (err) {
      const reason = upstreamFault(err) ?? 'network';
      return fail({
        ok: false,
        retryable: true,
        error: new RelayError(
          502,
          'upstream_error',
          'upstream_unreachable',
          `channel ${id}: the upstream could not be reached (${reason})`,
        ),
      });
    }
    const body = await readJson(res).catch(() => undefined);
    if (res.statusCode < 200 || res.statusCode >= 300) {
      const retryable = ch.isFailure(res.statusCode);
      const upstream = upstreamErrorOf(ch, res.statusCode, body);
      const message = upstream?.message ?? `the upstream answered ${res.statusCode}`;
      return fail({
        ok: false,
        retryable,
        status: res.statusCode,
        retryAfterMs: parseRetryAfter(res.headers['retry-after']),
        error: retryable
          ? new RelayError(
              res.statusCode === 429 ? 429 : 502,
              res.statusCode === 429 ? 'rate_limit_error' : 'upstream_error',
              `upstream_${res.statusCode}`,
              `channel ${id}: ${message}`,
            )
          : new RelayError(
              res.statusCode,
              'invalid_request_error',
              upstream?.code ?? `upstream_${res.statusCode}`,
              message,
              upstream?.param ? { param: upstream.param } : {},
            ),
      });
    }
    let upstreamId: string;
    let snap: JobSnapshot;
    try {
      ({ upstreamId, snapshot: snap } = ops.parseSubmit(body, req));
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      return fail({
        ok: false,
        retryable: true,
        error: new RelayError(502, 'upstream_error', 'upstream_bad_answer', `channel ${id}: ${message}`),
      });
    }
    this.metrics.dispatched.inc({ channel: id });
    void this.#d.store.recordSuccess(id).catch(() => {});
    const limits = this.limitsOf(ch);
    const change: JobChange = {
      upstreamId,
      status: snap.status,
      progress: snap.progress ?? 0,
      result: resultOf(snap),
      nextPollInMs: nextPollDelay({ intervalMs: limits.pollIntervalMs, failures: 0 }),
      deadlineInMs: limits.timeoutMs,
      dropInput: true,
    };
    if (snap.status === 'failed') change.error = snap.error ?? null;
    const job = await this.store.update(j.id, change);
    if (!job) {
      // Cancelled while the submit was in flight: tell the upstream to drop it too.
      const cancelled = await this.store.get(j.id, j.keyId);
      if (cancelled) void this.#cancelUpstream(ch, upstreamId);
      return { ok: true, job: cancelled ?? ({ id: j.id } as Job) };
    }
    this.#changed(job);
    if (isTerminal(job.status)) this.#terminal(job, 'upstream');
    return { ok: true, job };
  }

  /** The last fleet-wide job figures per channel (refreshGauges), for the pod report. */
  counts = new Map<string, JobCounts>();

  // ---- the queue -----------------------------------------------------------------------------

  /** Submits the oldest queued jobs of a channel into its free slots, in submit order. */
  async dispatch(channelId: string): Promise<void> {
    const ch = this.channel(channelId);
    if (!ch?.adapter.jobs) return;
    const jobs = await this.store.dispatchNext(channelId, this.limitsOf(ch), {
      owner: this.#d.pod,
      ms: LEASE_MS,
    });
    // In order: the upstream sees them in the order clients submitted them.
    for (const j of jobs) await this.#submit(ch, j, j.input, false);
  }

  // ---- polling (jobs/poller.ts calls these) --------------------------------------------------

  /** One step of a claimed job: fail it past its deadline, else ask the upstream once. */
  async step(j: ClaimedJob): Promise<void> {
    const ch = this.channel(j.channel);
    if (j.expired) {
      return this.#fail(j, 'timeout', {
        message: `the job did not finish within its channel's jobs.timeout; it was given up (its slot is free)`,
        type: 'server_error',
        code: 'job_timeout',
      });
    }
    if (j.upstreamId === null) {
      return this.#fail(j, 'submit', {
        message:
          'the relay that was submitting this job stopped before the upstream answered; submit it again',
        type: 'server_error',
        code: 'submit_interrupted',
      });
    }
    if (!ch?.adapter.jobs) {
      // The channel left the config: keep the job until it returns or the deadline passes.
      await this.store.update(j.id, { nextPollInMs: 30_000 });
      return;
    }
    if (j.lateMs !== undefined && j.lateMs !== null)
      this.metrics.pollLateness.observe(Math.max(0, j.lateMs) / 1000);
    const limits = this.limitsOf(ch);
    const ops = ch.adapter.jobs;
    const req = jobRequestOf(j.kind, j.request, null);
    let verdict: JobSnapshot | 'gone' | 'retry';
    try {
      const res = await sendCall(ch, ops.poll(j.upstreamId, ch.target, req), {
        timeoutMs: Math.min(ch.config.timeouts.firstByteMs, POLL_TIMEOUT_MS),
      });
      const body = await readJson(res).catch(() => undefined);
      verdict = ops.parsePoll(res.statusCode, body);
    } catch {
      verdict = 'retry';
    }
    this.metrics.polls.inc({ channel: ch.config.id, result: typeof verdict === 'string' ? verdict : 'ok' });
    if (verdict === 'gone') {
      return this.#fail(j, 'gone', {
        message: `the upstream of channel ${j.channel} no longer knows this job (it answered 404 to its status call); it cannot be completed`,
        type: 'upstream_error',
        code: 'upstream_job_not_found',
      });
    }
    if (verdict === 'retry') {
      const failures = (this.#pollFailures.get(j.id) ?? 0) + 1;
      this.#pollFailures.set(j.id, failures);
      await this.store.update(j.id, {
        pollAttempts: j.pollAttempts + 1,
        nextPollInMs: nextPollDelay({ intervalMs: limits.pollIntervalMs, failures }),
      });
      return;
    }
    this.#pollFailures.delete(j.id);
    const change: JobChange = { ...applySnapshot(j, verdict), pollAttempts: j.pollAttempts + 1 };
    if (verdict.status === 'completed') {
      const pricing = ch.config.models.find((m) => m.name === j.model)?.pricing;
      change.cost = pricing ? jobCost(pricing, verdict.seconds ?? j.result.seconds ?? j.request.seconds) : 0;
    } else if (!isTerminal(verdict.status)) {
      change.nextPollInMs = nextPollDelay({
        intervalMs: limits.pollIntervalMs,
        failures: 0,
        elapsedMs: j.elapsedMs,
        progress: verdict.progress,
      });
    }
    const next = await this.store.update(j.id, change);
    if (!next) return; // cancelled meanwhile
    if (next.version !== j.version) this.#changed(next);
    if (isTerminal(next.status)) this.#terminal(next, 'upstream');
  }

  async #fail(j: Job, reason: string, error: CanonicalError): Promise<void> {
    this.#pollFailures.delete(j.id);
    const done = await this.store.update(j.id, { status: 'failed', error });
    if (done) this.#terminal(done, reason);
  }

  /** A job reached a terminal state (once, fleet-wide): count it, bill it, free its slot. */
  #terminal(j: Job, reason: string) {
    this.#pollFailures.delete(j.id);
    this.#changed(j);
    const m = this.metrics;
    if (j.status === 'completed') m.completed.inc({ channel: j.channel });
    else m.failed.inc({ channel: j.channel, reason: j.status === 'cancelled' ? 'cancelled' : reason });
    const at = Date.now();
    if (j.cost > 0) {
      this.#d.metrics.cost.inc({ channel: j.channel, model: j.model }, j.cost);
      void this.#d.store
        .recordSpend({
          channelId: j.channel,
          ...(j.keyId ? { keyId: j.keyId } : {}),
          model: j.model,
          cost: j.cost,
          promptTokens: 0,
          completionTokens: 0,
          at,
        })
        .catch((err) => this.#d.log.warn({ err }, 'state store: recordSpend failed'));
    }
    this.#d.recorder?.record({
      requestId: j.id,
      at,
      ...(j.keyId ? { keyId: j.keyId } : {}),
      route: '/v1/videos',
      model: j.model,
      channel: j.channel,
      status: j.status === 'completed' ? 200 : 500,
      durationMs: at - j.createdAt.getTime(),
      attempts: 1,
      stream: false,
      promptTokens: 0,
      completionTokens: 0,
      cachedTokens: 0,
      cacheWriteTokens: 0,
      reasoningTokens: 0,
      cost: j.cost,
      ...(j.status === 'completed' ? {} : { errorCode: j.error?.code ?? 'job_failed' }),
    });
    // Its slot is free: the next queued job of the channel goes now, not at the next sweep.
    void this.dispatch(j.channel).catch((err) =>
      this.#d.log.warn({ err, channel: j.channel }, 'job dispatch failed'),
    );
  }

  #channelFailed(
    ch: ChannelRuntime,
    status: number | undefined,
    retryAfterMs: number | undefined,
    message: string,
  ) {
    const id = ch.config.id;
    this.#d.metrics.upstreamErrors.inc({ channel: id, reason: status ? `status_${status}` : 'connect' });
    this.#d.store.recordFailure(id, ch.config.cooldown, retryAfterMs).catch(() => {});
    this.#d.log.warn({ channel: id, status, message }, 'job submit failed');
  }

  // ---- client calls on an existing job -------------------------------------------------------

  /** Cancels a job that is not finished and deletes it from the caller's view. */
  async delete(j: Job): Promise<void> {
    const ch = this.channel(j.channel);
    if (!isTerminal(j.status)) {
      const done = await this.store.update(j.id, {
        status: 'cancelled',
        error: {
          message: 'the job was cancelled by its owner',
          type: 'invalid_request_error',
          code: 'cancelled',
        },
      });
      if (done) this.#terminal(done, 'cancelled');
    }
    if (ch && j.upstreamId) await this.#cancelUpstream(ch, j.upstreamId);
    await this.store.markDeleted(j.id);
  }

  async #cancelUpstream(ch: ChannelRuntime, upstreamId: string): Promise<void> {
    const call = ch.adapter.jobs?.cancel?.(upstreamId, ch.target);
    if (!call) return;
    try {
      const res = await sendCall(ch, call, { timeoutMs: 10_000 });
      await res.body.dump().catch(() => {});
    } catch (err) {
      this.#d.log.warn({ err: (err as Error).message, channel: ch.config.id }, 'upstream job delete failed');
    }
  }

  /** Opens the finished bytes upstream (the caller streams them on). */
  async content(
    j: Job,
    variant: string | undefined,
    range: string | undefined,
  ): Promise<Dispatcher.ResponseData> {
    if (j.status !== 'completed') {
      throw new RelayError(
        400,
        'invalid_request_error',
        'video_not_ready',
        `video ${j.id} is ${j.status}; its content is available once it is completed`,
      );
    }
    const ch = this.channel(j.channel);
    const ops = ch?.adapter.jobs;
    if (!ch || !ops) {
      throw new RelayError(
        409,
        'invalid_request_error',
        'channel_gone',
        `the channel that made video ${j.id} is no longer configured`,
      );
    }
    const headers: Record<string, string> = { accept: '*/*' };
    if (range) headers.range = range;
    const timeoutMs = ch.config.timeouts.totalMs;
    try {
      if (j.result.resultURL && !variant) {
        return await fetchResult(ch, j.result.resultURL, {
          auth: j.result.resultAuth === true,
          headers,
          timeoutMs,
        });
      }
      if (!ops.content) {
        throw new RelayError(
          404,
          'invalid_request_error',
          'not_found',
          `video ${j.id} has no downloadable content`,
        );
      }
      return await sendCall(ch, ops.content(j.upstreamId!, variant, ch.target), { headers, timeoutMs });
    } catch (err) {
      if (err instanceof RelayError) throw err;
      throw new RelayError(
        502,
        'upstream_error',
        'upstream_unreachable',
        `the upstream of channel ${j.channel} could not be reached for the content (${upstreamFault(err) ?? 'network'})`,
      );
    }
  }

  /** Gauges from the job table (fleet-wide figures). */
  async refreshGauges(): Promise<void> {
    const counts = await this.store.channelCounts();
    this.counts = new Map(counts.map(({ channel, ...c }) => [channel, c]));
    this.metrics.queued.reset();
    this.metrics.running.reset();
    for (const id of this.#d.state.runtime?.channels.keys() ?? []) {
      const ch = this.channel(id);
      if (!ch?.adapter.jobs) continue;
      this.metrics.queued.set({ channel: id }, 0);
      this.metrics.running.set({ channel: id }, 0);
    }
    for (const c of counts) {
      this.metrics.queued.set({ channel: c.channel }, c.queued);
      this.metrics.running.set({ channel: c.channel }, c.running);
    }
  }
}

function resultOf(s: JobSnapshot) {
  const r: Job['result'] = {};
  if (s.seconds !== undefined) r.seconds = s.seconds;
  if (s.resultURL !== undefined) r.resultURL = s.resultURL;
  if (s.resultAuth) r.resultAuth = true;
  if (s.meta) r.meta = { ...s.meta };
  return r;
}

/** The adapter's reading of an error answer (its codes and messages), else OpenAI's shape. */
function upstreamErrorOf(
  ch: ChannelRuntime,
  status: number,
  body: unknown,
): { message?: string; code?: string; param?: string } | undefined {
  const e = ch.adapter.errorOf?.(status, body);
  if (!e) return errorOfBody(body);
  const out: { message?: string; code?: string; param?: string } = { message: e.message };
  if (e.code) out.code = e.code;
  if (e.param) out.param = e.param;
  return out;
}

function errorOfBody(body: unknown): { message?: string; code?: string; param?: string } | undefined {
  const e = (body as { error?: unknown } | undefined)?.error;
  if (!e || typeof e !== 'object') return undefined;
  const o = e as Record<string, unknown>;
  const out: { message?: string; code?: string; param?: string } = {};
  if (typeof o.message === 'string') out.message = o.message;
  if (typeof o.code === 'string') out.code = o.code;
  if (typeof o.param === 'string') out.param = o.param;
  return out;
}
