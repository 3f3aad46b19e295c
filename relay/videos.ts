import type {
  FastifyInstance,
  FastifyReply,
  FastifyRequest,
  onRequestHookHandler,
  preHandlerHookHandler,
} from 'fastify';
import type { Job } from '../jobs/model.ts';
import { isTerminal, videoObject } from '../jobs/model.ts';
import type { JobPlane } from '../jobs/plane.ts';
import { badRequest, RelayError } from './errors.ts';
import { admitRequest, type LimitDeps } from './limits.ts';
import { paced } from './memory-pacer.ts';
import type { RelayState } from './relay-state.ts';
import { installVideoFormParser, isFormFile, type VideoForm } from './video-form.ts';

/**
 * The OpenAI Videos API on the relay's public port (DESIGN.md "Async jobs"): create (JSON or
 * multipart with `input_reference`), retrieve, list, delete, remix, content (streamed from the
 * upstream, Range passed through) and `/events` (SSE). Every call sees only the caller's key's
 * jobs: another key's id is a 404, as an unknown one. The job plane (jobs/) does the work; this
 * module is its HTTP edge.
 */

export interface VideoRouteDeps {
  plane: JobPlane | undefined;
  state: RelayState;
  limits: LimitDeps;
  requireKey: onRequestHookHandler;
  requireModelAllowed: preHandlerHookHandler;
  bodyLimit: number;
  /** SSE: a heartbeat comment at least this often (default 15 s), a re-read of the job this often (1 s). */
  heartbeatMs?: number;
  refreshMs?: number;
}

/** OpenAI's default model for POST /v1/videos without one. */
const DEFAULT_VIDEO_MODEL = 'sora-2';
const SIZE = /^[1-9][0-9]{1,4}x[1-9][0-9]{1,4}$/;
const ROUTE = '/v1/videos';

export function registerVideoRoutes(app: FastifyInstance, d: VideoRouteDeps) {
  void app.register(async (scope) => {
    installVideoFormParser(scope, d.bodyLimit);
    const keyed = { onRequest: d.requireKey };
    const plane = (): JobPlane => {
      if (d.plane) return d.plane;
      throw new RelayError(
        503,
        'server_error',
        'jobs_unavailable',
        'video jobs need a database: set DATABASE_URL, or run with client auth on (embedded database)',
      );
    };
    const owned = async (req: FastifyRequest<{ Params: { id: string } }>): Promise<Job> => {
      const j = await plane().store.get(req.params.id, req.client.keyId ?? null);
      if (!j) {
        throw new RelayError(
          404,
          'invalid_request_error',
          'video_not_found',
          `Video with id '${req.params.id}' not found.`,
          {
            param: 'video_id',
          },
        );
      }
      return j;
    };

    scope.post(ROUTE, { ...keyed, preHandler: [defaultModel, d.requireModelAllowed] }, async (req, reply) => {
      const p = plane();
      const body = req.body as Record<string, unknown> | VideoForm;
      const c = createOf(body);
      const runtime = d.state.runtime;
      if (!runtime)
        throw new RelayError(503, 'server_error', 'config_not_loaded', 'the relay has no config loaded yet');
      // Key budgets were checked at auth; RateLimitPolicies apply here, at submit.
      const rl = await admitRequest(d.limits, runtime.config, ROUTE, c.model, jsonView(body), req, reply);
      try {
        const job = await p.create({
          kind: 'video',
          model: c.model,
          keyId: req.client.keyId ?? null,
          request: c.request,
          input: c.input,
        });
        reply.header('x-kuberelay-channel', job.channel);
        return videoObject(job);
      } finally {
        rl?.finish();
      }
    });

    scope.get<{ Querystring: { after?: string; limit?: string; order?: string } }>(
      ROUTE,
      keyed,
      async (req) => {
        const q = req.query;
        const limit = q.limit === undefined ? 20 : Number(q.limit);
        if (!Number.isInteger(limit) || limit < 1 || limit > 100) {
          throw badRequest('invalid_value', 'limit must be an integer from 1 to 100', 'limit');
        }
        if (q.order !== undefined && q.order !== 'asc' && q.order !== 'desc') {
          throw badRequest('invalid_value', "order must be 'asc' or 'desc'", 'order');
        }
        const rows = await plane().store.list(req.client.keyId ?? null, {
          ...(q.after ? { after: q.after } : {}),
          limit: limit + 1,
          order: q.order ?? 'desc',
        });
        const data = rows.slice(0, limit).map(videoObject);
        return {
          object: 'list',
          data,
          first_id: data[0]?.id ?? null,
          last_id: data.at(-1)?.id ?? null,
          has_more: rows.length > limit,
        };
      },
    );

    scope.get<{ Params: { id: string } }>(`${ROUTE}/:id`, keyed, async (req) =>
      videoObject(await owned(req)),
    );

    scope.delete<{ Params: { id: string } }>(`${ROUTE}/:id`, keyed, async (req) => {
      const j = await owned(req);
      await plane().delete(j);
      return { id: j.id, object: 'video.deleted', deleted: true };
    });

    scope.post<{ Params: { id: string } }>(`${ROUTE}/:id/remix`, keyed, async (req) => {
      const j = await owned(req);
      const body = (req.body ?? {}) as Record<string, unknown>;
      if (typeof body.prompt !== 'string' || body.prompt === '') {
        throw badRequest('missing_prompt', 'prompt is required and must be a string', 'prompt');
      }
      if (j.status !== 'completed' || !j.upstreamId) {
        throw badRequest(
          'video_not_ready',
          `video ${j.id} is ${j.status}; only a completed video can be remixed`,
          'video_id',
        );
      }
      return videoObject(await plane().remix(j, body.prompt));
    });

    scope.get<{ Params: { id: string }; Querystring: { variant?: string } }>(
      `${ROUTE}/:id/content`,
      keyed,
      async (req, reply) => {
        const j = await owned(req);
        const range = typeof req.headers.range === 'string' ? req.headers.range : undefined;
        const res = await plane().content(j, req.query.variant, range);
        if (res.statusCode >= 400) {
          await res.body.dump().catch(() => {});
          throw new RelayError(
            res.statusCode === 416 ? 416 : 502,
            res.statusCode === 416 ? 'invalid_request_error' : 'upstream_error',
            res.statusCode === 416 ? 'range_not_satisfiable' : `upstream_${res.statusCode}`,
            `the upstream answered ${res.statusCode} for the content of video ${j.id}`,
          );
        }
        reply.code(res.statusCode);
        for (const h of CONTENT_HEADERS) {
          const v = res.headers[h];
          if (v !== undefined) reply.header(h, v);
        }
        reply.header('x-kuberelay-channel', j.channel);
        // Streamed as it arrives (backpressure through the pipe), never held whole.
        return reply.send(paced(res.body));
      },
    );

    scope.get<{ Params: { id: string } }>(`${ROUTE}/:id/events`, keyed, async (req, reply) => {
      const j = await owned(req);
      await streamEvents(plane(), j, req, reply, d.heartbeatMs ?? 15_000, d.refreshMs ?? 1000);
    });
  });
}

/** Response headers of the content that reach the client (nothing about the provider's account). */
const CONTENT_HEADERS = [
  'content-type',
  'content-length',
  'content-range',
  'accept-ranges',
  'etag',
  'last-modified',
  'content-disposition',
] as const;

/** `model` is optional in OpenAI's API (sora-2); set it before the key's model check reads it. */
async function defaultModel(req: FastifyRequest) {
  const body = req.body as Record<string, unknown> | null | undefined;
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw badRequest('invalid_body', 'the request body must be a JSON object or multipart form');
  }
  if (body.model === undefined || body.model === '') body.model = DEFAULT_VIDEO_MODEL;
}

/** The create request, validated (OpenAI's parameters; others pass through to the upstream). */
function createOf(body: Record<string, unknown>) {
  const { model, prompt, seconds, size, input_reference: ref, ...extra } = body;
  if (typeof model !== 'string') throw badRequest('invalid_type', 'model must be a string', 'model');
  if (typeof prompt !== 'string' || prompt === '') {
    throw badRequest('missing_prompt', 'prompt is required and must be a string', 'prompt');
  }
  const request: {
    prompt: string;
    seconds?: number;
    size?: string;
    extra?: Record<string, unknown>;
    inputReference?: { contentType: string; filename?: string };
  } = { prompt };
  if (seconds !== undefined) {
    const n = typeof seconds === 'string' && /^[0-9]{1,4}$/.test(seconds) ? Number(seconds) : seconds;
    if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > 3600) {
      throw badRequest(
        'invalid_value',
        'seconds must be a whole number of seconds, e.g. "4", "8" or "12"',
        'seconds',
      );
    }
    request.seconds = n;
  }
  if (size !== undefined) {
    if (typeof size !== 'string' || !SIZE.test(size)) {
      throw badRequest('invalid_value', 'size must be WIDTHxHEIGHT, e.g. "1280x720"', 'size');
    }
    request.size = size;
  }
  let input: Uint8Array | null = null;
  if (isFormFile(ref)) {
    input = ref.data;
    request.inputReference = {
      contentType: ref.contentType,
      ...(ref.filename ? { filename: ref.filename } : {}),
    };
  } else if (ref !== undefined) {
    // The JSON form ({image_url} or {file_id}) goes to the upstream as it came.
    extra.input_reference = ref;
  }
  const rest = Object.fromEntries(Object.entries(extra).filter(([, v]) => !isFormFile(v)));
  if (Object.keys(rest).length > 0) request.extra = rest;
  return { model, request, input };
}

/** The body as plain JSON facts (no file bytes) for the rate limiter's size estimate. */
function jsonView(body: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(body).filter(([, v]) => !isFormFile(v)));
}

/**
 * SSE: `event: video.updated` with the object now and on every change (this pod's changes at
 * once; another pod's within `refreshMs`, read from the job table), a heartbeat comment at least
 * every `heartbeatMs`, closed after the terminal state.
 */
async function streamEvents(
  plane: JobPlane,
  first: Job,
  req: FastifyRequest,
  reply: FastifyReply,
  heartbeatMs: number,
  refreshMs: number,
) {
  reply.hijack();
  const raw = reply.raw;
  raw.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache',
    'x-accel-buffering': 'no',
    'x-request-id': String(req.id),
  });
  let version = -1;
  let closed = false;
  const write = (s: string) => {
    if (!closed) raw.write(s);
  };
  const send = (j: Job) => {
    if (closed || j.version <= version) return;
    version = j.version;
    write(`event: video.updated\ndata: ${JSON.stringify(videoObject(j))}\n\n`);
    if (isTerminal(j.status)) end();
  };
  const off = plane.onChange(first.id, send);
  const refresh = setInterval(() => {
    void plane.store.get(first.id, first.keyId).then(
      (j) => (j ? send(j) : end()),
      () => {},
    );
  }, refreshMs);
  // Unconditional: proxies that cut idle streams count bytes, not events.
  const beat = setInterval(() => write(': keep-alive\n\n'), heartbeatMs);
  const end = () => {
    if (closed) return;
    closed = true;
    off();
    clearInterval(refresh);
    clearInterval(beat);
    raw.end();
  };
  raw.on('close', end);
  send(first);
}
