import { randomBytes } from 'node:crypto';
import type { ChannelConfig, ModelPricing } from '../core/config/relay-config.ts';
import type { CanonicalError } from '../providers/contract.ts';
import type { JobKind, JobRequest, JobSnapshot, JobStatus } from '../providers/jobs.ts';

/**
 * The plain core of the job plane: what a job is, how the client sees it (the OpenAI video
 * object), when it is polled next, and what it costs. No I/O: jobs/store.ts keeps jobs in the
 * database, jobs/plane.ts runs them.
 */

/** One job as the plane holds it (a media_tasks row). */
export interface Job {
  id: string;
  channel: string;
  upstreamId: string | null;
  keyId: string | null;
  /** The model the client asked for (a configured name). */
  model: string;
  kind: JobKind;
  status: JobStatus;
  progress: number;
  /** What the client asked for (without the input bytes). */
  request: StoredRequest;
  /** Upstream facts worth showing (size, expires_at, seconds produced). */
  result: JobResult;
  error: CanonicalError | null;
  pollAttempts: number;
  seq: bigint;
  createdAt: Date;
  completedAt: Date | null;
  dispatchedAt: Date | null;
  cost: number;
  version: number;
}

export interface StoredRequest {
  upstreamModel: string;
  prompt: string;
  seconds?: number;
  size?: string;
  /** Remix: kuberelay's id of the source video (its upstream id is in remixOfUpstream). */
  remixOf?: string;
  remixOfUpstream?: string;
  extra?: Record<string, unknown>;
  inputReference?: { contentType: string; filename?: string };
}

export interface JobResult {
  seconds?: number;
  resultURL?: string;
  /** The resultURL needs the channel's credential (on the channel's origin only). */
  resultAuth?: boolean;
  meta?: Record<string, unknown>;
}

/** What `limits.jobs` and `jobs` say, defaults applied (DESIGN.md: 30 s, 30 min, queue of 100). */
export interface JobLimits {
  maxConcurrent: number | null;
  maxQueue: number;
  pollIntervalMs: number;
  timeoutMs: number;
}

export const DEFAULT_JOB_LIMITS: Readonly<JobLimits> = Object.freeze({
  maxConcurrent: null,
  maxQueue: 100,
  pollIntervalMs: 30_000,
  timeoutMs: 30 * 60_000,
});

export function jobLimitsOf(c: Pick<ChannelConfig, 'jobs'>): JobLimits {
  return c.jobs ?? DEFAULT_JOB_LIMITS;
}

export const TERMINAL: ReadonlySet<JobStatus> = new Set(['completed', 'failed', 'cancelled']);

export function isTerminal(s: JobStatus): boolean {
  return TERMINAL.has(s);
}

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

/** `video_<ULID>`: time-ordered, 128 bits, kuberelay's own (never the upstream's id). */
export function newJobId(kind: JobKind, now = Date.now()): string {
  let t = now;
  let time = '';
  for (let i = 0; i < 10; i++) {
    time = CROCKFORD[t % 32]! + time;
    t = Math.floor(t / 32);
  }
  const r = randomBytes(16);
  let rand = '';
  for (let i = 0; i < 16; i++) rand += CROCKFORD[r[i]! % 32];
  return `${kind}_${time}${rand}`;
}

/** The canonical request the adapter gets, from what was stored (plus the input bytes, if kept). */
export function jobRequestOf(
  kind: JobKind,
  r: StoredRequest,
  input: Uint8Array | null | undefined,
): JobRequest {
  const req: JobRequest = { kind, upstreamModel: r.upstreamModel, prompt: r.prompt };
  if (r.seconds !== undefined) req.seconds = r.seconds;
  if (r.size !== undefined) req.size = r.size;
  if (r.remixOfUpstream !== undefined) req.remixOf = r.remixOfUpstream;
  if (r.extra) req.extra = r.extra;
  if (input && r.inputReference) req.inputReference = { ...r.inputReference, data: input };
  return req;
}

/**
 * When to poll next, in ms from now: the channel's interval with +/-10% jitter (so jobs submitted
 * together spread out), stretched after upstream trouble (x2 per failed poll in a row, at most
 * x8), and shortened to the estimated finish when the upstream's progress says it is near (never
 * below a quarter interval, so "adaptive" never means "hammering").
 */
export function nextPollDelay(o: {
  intervalMs: number;
  /** Consecutive failed polls (429, 5xx, network). */
  failures: number;
  /** ms since the job was dispatched, and its progress then (0..100), when known. */
  elapsedMs?: number;
  progress?: number;
  random?: () => number;
}): number {
  const rnd = o.random ?? Math.random;
  const jitter = 0.9 + 0.2 * rnd();
  let base = o.intervalMs * 2 ** Math.min(Math.max(0, o.failures), 3);
  if (o.failures === 0 && o.progress !== undefined && o.progress > 0 && o.progress < 100 && o.elapsedMs) {
    const remaining = (o.elapsedMs * (100 - o.progress)) / o.progress;
    base = Math.min(base, Math.max(o.intervalMs / 4, remaining));
  }
  return Math.round(base * jitter);
}

/** A finished job's cost: perSecond x seconds (the upstream's figure, else the request's) + perRequest. */
export function jobCost(pricing: ModelPricing, seconds: number | undefined): number {
  return pricing.perRequest + pricing.perSecond * (seconds ?? 0);
}

/** The client's view: OpenAI's video object, with kuberelay's id. */
export function videoObject(j: Job): Record<string, unknown> {
  const meta = j.result.meta ?? {};
  const seconds = j.result.seconds ?? j.request.seconds;
  return {
    id: j.id,
    object: 'video',
    model: j.model,
    status: j.status === 'cancelled' ? 'failed' : j.status,
    progress: j.status === 'completed' ? 100 : j.progress,
    created_at: Math.floor(j.createdAt.getTime() / 1000),
    completed_at: j.completedAt ? Math.floor(j.completedAt.getTime() / 1000) : null,
    expires_at: typeof meta.expires_at === 'number' ? meta.expires_at : null,
    prompt: j.request.prompt,
    seconds: seconds === undefined ? null : String(seconds),
    size: typeof meta.size === 'string' ? meta.size : (j.request.size ?? null),
    remixed_from_video_id: j.request.remixOf ?? null,
    error: j.error ? { code: j.error.code ?? 'video_generation_failed', message: j.error.message } : null,
  };
}

/** Applies an upstream snapshot to a job; returns what changed (undefined: nothing). */
export function applySnapshot(
  j: Job,
  s: JobSnapshot,
): Partial<Pick<Job, 'status' | 'progress' | 'result' | 'error'>> | undefined {
  const next: Partial<Pick<Job, 'status' | 'progress' | 'result' | 'error'>> = {};
  if (s.status !== j.status) next.status = s.status;
  if (s.progress !== undefined && s.progress !== j.progress) next.progress = s.progress;
  const result: JobResult = { ...j.result };
  if (s.seconds !== undefined) result.seconds = s.seconds;
  if (s.resultURL !== undefined) result.resultURL = s.resultURL;
  if (s.resultAuth) result.resultAuth = true;
  if (s.meta) result.meta = { ...result.meta, ...s.meta };
  if (JSON.stringify(result) !== JSON.stringify(j.result)) next.result = result;
  if (s.status === 'failed')
    next.error = s.error ?? {
      message: 'the video generation failed',
      type: 'video_generation_error',
      code: 'video_generation_failed',
    };
  return Object.keys(next).length > 0 ? next : undefined;
}
