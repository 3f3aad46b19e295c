import { type CanonicalError, type ChannelTarget, UntranslatableError } from '../contract.ts';
import type {
  JobOperations,
  JobRequest,
  JobSnapshot,
  JobStatus,
  MultipartPart,
  SubmitResult,
  UpstreamCall,
} from '../jobs.ts';

/**
 * The OpenAI Videos API as an upstream (Sora: `POST /videos`, `GET /videos/{id}`,
 * `GET /videos/{id}/content`, `DELETE /videos/{id}`, `POST /videos/{id}/remix`), for `openai`,
 * `openai-compatible` and `azure-openai` (whose v1 API serves the same paths under `/openai/v1`).
 * JSON unless the client sent an `input_reference` file, which goes up as multipart, as OpenAI
 * takes it.
 */

const STATUSES: ReadonlySet<string> = new Set(['queued', 'in_progress', 'completed', 'failed', 'cancelled']);

/** `prefix(channel)`: the path the video routes hang under (`/v1`, `/openai/v1`). */
export function openAIVideoJobs(prefix: (ch: ChannelTarget) => string): JobOperations {
  const base = (ch: ChannelTarget, upstreamId?: string) =>
    `${prefix(ch)}/videos${upstreamId === undefined ? '' : `/${encodeURIComponent(upstreamId)}`}`;
  return {
    supports: (kind) => kind === 'video',
    submit(req: JobRequest, ch: ChannelTarget): UpstreamCall {
      if (req.remixOf !== undefined) {
        return { method: 'POST', path: `${base(ch, req.remixOf)}/remix`, body: { prompt: req.prompt } };
      }
      const fields: Record<string, unknown> = { ...req.extra, model: req.upstreamModel, prompt: req.prompt };
      if (req.seconds !== undefined) fields.seconds = String(req.seconds);
      if (req.size !== undefined) fields.size = req.size;
      if (!req.inputReference) return { method: 'POST', path: base(ch), body: fields };
      const parts: Record<string, MultipartPart> = {};
      for (const [k, v] of Object.entries(fields)) {
        if (v === undefined || v === null) continue;
        parts[k] = typeof v === 'string' ? v : JSON.stringify(v);
      }
      parts.input_reference = {
        contentType: req.inputReference.contentType,
        data: req.inputReference.data,
        filename: req.inputReference.filename ?? 'input_reference',
      };
      return { method: 'POST', path: base(ch), body: parts, multipart: true };
    },
    parseSubmit(body: unknown): SubmitResult {
      const v = asObject(body);
      if (typeof v.id !== 'string' || v.id === '') {
        throw new UntranslatableError('id', 'the upstream accepted the video job but named no id');
      }
      return { upstreamId: v.id, snapshot: snapshotOf(v) };
    },
    poll: (upstreamId, ch) => ({ method: 'GET', path: base(ch, upstreamId) }),
    parsePoll(status: number, body: unknown): JobSnapshot | 'gone' | 'retry' {
      if (status === 404) return 'gone';
      if (status < 200 || status >= 300) return 'retry';
      const v = asObject(body);
      return typeof v.status === 'string' && STATUSES.has(v.status) ? snapshotOf(v) : 'retry';
    },
    content(upstreamId, variant, ch) {
      const q = variant ? `?variant=${encodeURIComponent(variant)}` : '';
      return { method: 'GET', path: `${base(ch, upstreamId)}/content${q}` };
    },
    cancel: (upstreamId, ch) => ({ method: 'DELETE', path: base(ch, upstreamId) }),
  };
}

/** Azure: the v1 API only (dated versions have no videos route). */
export function azureVideoPrefix(ch: ChannelTarget): string {
  const version = ch.azureApiVersion ?? 'v1';
  if (version !== 'v1') {
    throw new UntranslatableError(
      'model',
      `video jobs on Azure OpenAI need azure.apiVersion v1 (this channel uses ${version})`,
    );
  }
  return `${ch.basePath}/openai/v1`;
}

function asObject(body: unknown): Record<string, unknown> {
  return body !== null && typeof body === 'object' && !Array.isArray(body)
    ? (body as Record<string, unknown>)
    : {};
}

function snapshotOf(v: Record<string, unknown>): JobSnapshot {
  const status = (typeof v.status === 'string' && STATUSES.has(v.status) ? v.status : 'queued') as JobStatus;
  const s: JobSnapshot = { status };
  if (typeof v.progress === 'number' && Number.isFinite(v.progress)) {
    s.progress = Math.max(0, Math.min(100, Math.round(v.progress)));
  }
  const seconds = Number(v.seconds);
  if (v.seconds !== undefined && v.seconds !== null && Number.isFinite(seconds) && seconds > 0) {
    s.seconds = seconds;
  }
  if (status === 'failed') s.error = errorOf(v.error);
  const meta: Record<string, unknown> = {};
  for (const k of ['size', 'expires_at', 'remixed_from_video_id']) if (v[k] !== undefined) meta[k] = v[k];
  if (Object.keys(meta).length > 0) s.meta = meta;
  return s;
}

function errorOf(e: unknown): CanonicalError {
  const o = asObject(e);
  return {
    message: typeof o.message === 'string' ? o.message : 'the upstream reported the video generation failed',
    type: typeof o.type === 'string' ? o.type : 'video_generation_error',
    code: typeof o.code === 'string' ? o.code : 'video_generation_failed',
  };
}
