// The OpenAI Videos API (Sora) as an async job simulator, under /v1/videos (OpenAI) and
// /openai/v1/videos (Azure OpenAI's v1 API): POST /videos (JSON or multipart with
// input_reference), GET /videos/{id}, GET /videos/{id}/content (?variant=, Range -> 206),
// DELETE /videos/{id}, POST /videos/{id}/remix. A job runs `durationMs` from its submit, its
// progress rising with time; the mock runs at most `maxRunning` at once and answers 429 past
// that, as providers do. Directives in the prompt steer one job through any relay:
// `[fail]` (fails at its end), `[duration=MS]`, `[bytes=N]` (content size).
// Counters for tests: status calls per job, jobs running now and at most, submit order.
import type { ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import { Busboy } from '@fastify/busboy';
import type { MockApi, MockHandler, MockRequest } from '../api.ts';
import type { MockHttp } from '../http.ts';
import { sendOpenAIError, statusError } from './errors.ts';

export interface MockVideoOptions {
  /** How long a job runs (default 2000 ms). */
  durationMs?: number;
  /** Jobs running at once at most; a submit past it gets 429 (default: no limit). */
  maxRunning?: number;
  /** Content bytes per second of video (default 16 KiB), unless the prompt says `[bytes=N]`. */
  bytesPerSecond?: number;
}

interface MockJob {
  id: string;
  model: string;
  prompt: string;
  seconds: number;
  size: string;
  createdAt: number;
  durationMs: number;
  fail: boolean;
  bytes: number;
  remixOf: string | null;
  inputBytes: number;
  statusCalls: number;
  deleted: boolean;
}

export interface MockVideoStats {
  submitted: number;
  rejected: number;
  /** Running now, and the most ever running at once. */
  running: number;
  maxRunning: number;
  /** Status calls (GET /videos/{id}) per upstream job id. */
  statusCalls: Record<string, number>;
  /** Prompts in the order the jobs were submitted. */
  order: string[];
  /** Bytes of the input_reference each job got, by id. */
  inputBytes: Record<string, number>;
}

export interface MockVideos {
  stats(): MockVideoStats;
  /** Forget every job (a provider that lost them: status calls answer 404). */
  forgetAll(): void;
  reset(): void;
}

/** The deterministic content bytes of a video of `size` bytes, from offset `start`. */
export function mockVideoBytes(start: number, end: number): Buffer {
  const b = Buffer.allocUnsafe(end - start);
  for (let i = start; i < end; i++) b[i - start] = (i * 31 + (i >>> 8) * 7 + 13) & 0xff;
  return b;
}

const CHUNK = 64 * 1024;

export function openaiVideosApi(o: MockVideoOptions = {}): MockApi & { videos: MockVideos } {
  const jobs = new Map<string, MockJob>();
  let order: string[] = [];
  let submitted = 0;
  let rejected = 0;
  let maxRunning = 0;
  let seq = 0;
  const now = () => Date.now();
  const runningNow = () => {
    const t = now();
    let n = 0;
    for (const j of jobs.values()) if (!j.deleted && t < j.createdAt + j.durationMs) n++;
    return n;
  };

  const object = (j: MockJob) => {
    const elapsed = now() - j.createdAt;
    const done = elapsed >= j.durationMs;
    const status = done ? (j.fail ? 'failed' : 'completed') : 'in_progress';
    return {
      id: j.id,
      object: 'video',
      model: j.model,
      status,
      progress: done ? 100 : Math.min(99, Math.floor((elapsed / j.durationMs) * 100)),
      created_at: Math.floor(j.createdAt / 1000),
      completed_at: done ? Math.floor((j.createdAt + j.durationMs) / 1000) : null,
      expires_at: done ? Math.floor((j.createdAt + j.durationMs) / 1000) + 3600 : null,
      prompt: j.prompt,
      seconds: String(j.seconds),
      size: j.size,
      remixed_from_video_id: j.remixOf,
      error:
        done && j.fail
          ? { code: 'moderation_blocked', message: 'The mock was told to fail this job ([fail]).' }
          : null,
    };
  };

  const err = (m: MockHttp, res: ServerResponse, status: number, message?: string, code?: string) => {
    const [fallback, type, c] = statusError(status);
    sendOpenAIError(m, res, status, message ?? fallback, type, code ?? c);
  };

  const start = (
    m: MockHttp,
    res: ServerResponse,
    f: Record<string, string>,
    inputBytes: number,
    remixOf: MockJob | null,
  ) => {
    const prompt = f.prompt ?? '';
    if (prompt === '')
      return err(m, res, 400, 'Missing required parameter: prompt.', 'missing_required_parameter');
    if (o.maxRunning !== undefined && runningNow() >= o.maxRunning) {
      rejected++;
      return err(
        m,
        res,
        429,
        'Too many concurrent video generations for this account (mock limit).',
        'rate_limit_exceeded',
      );
    }
    const seconds = Number(f.seconds ?? remixOf?.seconds ?? 4);
    const duration = /\[duration=(\d+)\]/.exec(prompt);
    const bytes = /\[bytes=(\d+)\]/.exec(prompt);
    const j: MockJob = {
      id: `video_mock${String(++seq).padStart(6, '0')}${Math.random().toString(36).slice(2, 8)}`,
      model: f.model ?? remixOf?.model ?? 'sora-2',
      prompt,
      seconds,
      size: f.size ?? remixOf?.size ?? '720x1280',
      createdAt: now(),
      durationMs: duration ? Number(duration[1]) : (o.durationMs ?? 2000),
      fail: prompt.includes('[fail]'),
      bytes: bytes ? Number(bytes[1]) : seconds * (o.bytesPerSecond ?? 16 * 1024),
      remixOf: remixOf?.id ?? null,
      inputBytes,
      statusCalls: 0,
      deleted: false,
    };
    jobs.set(j.id, j);
    submitted++;
    order.push(prompt);
    maxRunning = Math.max(maxRunning, runningNow());
    const body = object(j);
    m.sendJson(res, 200, JSON.stringify({ ...body, status: 'queued', progress: 0 }));
  };

  const create: MockHandler = (m, res, r) => {
    const ct = String(r.req.headers['content-type'] ?? '');
    if (!ct.startsWith('multipart/form-data')) {
      const b = r.body as Record<string, unknown> | undefined;
      if (r.badJson || !b || typeof b !== 'object')
        return err(m, res, 400, 'Invalid JSON body.', 'invalid_json');
      const f = Object.fromEntries(
        Object.entries(b).map(([k, v]) => [k, typeof v === 'string' ? v : JSON.stringify(v)]),
      );
      return start(m, res, f, 0, null);
    }
    const fields: Record<string, string> = {};
    let inputBytes = 0;
    const bb = new Busboy({ headers: r.req.headers as { 'content-type': string } });
    bb.on('field', (k: string, v: string) => {
      fields[k] = v;
    });
    bb.on('file', (_k, stream) => {
      stream.on('data', (c: Buffer) => {
        inputBytes += c.length;
      });
    });
    bb.on('error', () => err(m, res, 400, 'Invalid multipart body.', 'invalid_multipart'));
    bb.on('finish', () => start(m, res, fields, inputBytes, null));
    Readable.from([r.bytes ?? Buffer.alloc(0)]).pipe(bb);
  };

  const find = (m: MockHttp, res: ServerResponse, id: string): MockJob | undefined => {
    const j = jobs.get(id);
    if (j && !j.deleted) return j;
    err(m, res, 404, `Video with id '${id}' not found.`, 'not_found');
    return undefined;
  };

  const retrieve = (m: MockHttp, res: ServerResponse, id: string) => {
    const j = jobs.get(id);
    if (j) j.statusCalls++;
    if (!find(m, res, id)) return;
    m.sendJson(res, 200, JSON.stringify(object(j!)));
  };

  const content = (m: MockHttp, res: ServerResponse, r: MockRequest, id: string) => {
    const j = find(m, res, id);
    if (!j) return;
    if (object(j).status !== 'completed')
      return err(m, res, 400, 'Video is not ready yet.', 'video_not_ready');
    const variant = r.query.get('variant') ?? 'video';
    const type =
      variant === 'thumbnail' ? 'image/webp' : variant === 'spritesheet' ? 'image/jpeg' : 'video/mp4';
    const total = variant === 'video' ? j.bytes : 4096;
    let from = 0;
    let to = total - 1;
    let status = 200;
    const range = /^bytes=(\d*)-(\d*)$/.exec(String(r.req.headers.range ?? ''));
    if (range && (range[1] !== '' || range[2] !== '')) {
      if (range[1] === '') from = Math.max(0, total - Number(range[2]));
      else {
        from = Number(range[1]);
        if (range[2] !== '') to = Math.min(total - 1, Number(range[2]));
      }
      if (from > to || from >= total) {
        res.writeHead(416, { 'content-range': `bytes */${total}`, 'x-mock-name': m.name });
        res.end();
        return;
      }
      status = 206;
    }
    const headers: Record<string, string | number> = {
      'content-type': type,
      'content-length': to - from + 1,
      'accept-ranges': 'bytes',
      'x-mock-name': m.name,
    };
    if (status === 206) headers['content-range'] = `bytes ${from}-${to}/${total}`;
    res.writeHead(status, headers);
    // Generated a chunk at a time, written as the client reads: the mock never holds it whole.
    let at = from;
    const pump = () => {
      while (at <= to) {
        const end = Math.min(to + 1, at + CHUNK);
        const chunk = mockVideoBytes(at, end);
        at = end;
        if (!res.write(chunk)) {
          res.once('drain', pump);
          return;
        }
      }
      res.end();
    };
    pump();
  };

  const remove = (m: MockHttp, res: ServerResponse, id: string) => {
    const j = find(m, res, id);
    if (!j) return;
    j.deleted = true;
    m.sendJson(res, 200, JSON.stringify({ id, object: 'video.deleted', deleted: true }));
  };

  const remix = (m: MockHttp, res: ServerResponse, r: MockRequest, id: string) => {
    const src = find(m, res, id);
    if (!src) return;
    const b = (r.body ?? {}) as { prompt?: unknown };
    start(m, res, { prompt: typeof b.prompt === 'string' ? b.prompt : '' }, 0, src);
  };

  const videos: MockVideos = {
    stats: () => ({
      submitted,
      rejected,
      running: runningNow(),
      maxRunning,
      statusCalls: Object.fromEntries([...jobs.values()].map((j) => [j.id, j.statusCalls])),
      order: [...order],
      inputBytes: Object.fromEntries([...jobs.values()].map((j) => [j.id, j.inputBytes])),
    }),
    forgetAll: () => jobs.clear(),
    reset: () => {
      jobs.clear();
      order = [];
      submitted = 0;
      rejected = 0;
      maxRunning = 0;
    },
  };

  const PREFIX = /^(?:\/openai)?\/v1\/videos(?:\/([^/]+)(?:\/(content|remix))?)?$/;
  return {
    name: 'openai-videos',
    owns: (path) => PREFIX.test(path),
    match(method, path) {
      const p = PREFIX.exec(path);
      if (!p) return undefined;
      const id = p[1] === undefined ? undefined : decodeURIComponent(p[1]);
      const sub = p[2];
      if (id === undefined) return method === 'POST' ? create : undefined;
      if (sub === 'content') return method === 'GET' ? (m, res, r) => content(m, res, r, id) : undefined;
      if (sub === 'remix') return method === 'POST' ? (m, res, r) => remix(m, res, r, id) : undefined;
      if (method === 'GET') return (m, res) => retrieve(m, res, id);
      if (method === 'DELETE') return (m, res) => remove(m, res, id);
      return undefined;
    },
    // OpenAI's Bearer key, or Azure's api-key header (the same routes serve both).
    authorized: (r, apiKey) =>
      r.req.headers.authorization === `Bearer ${apiKey}` || r.req.headers['api-key'] === apiKey,
    sendError(m, res, status, message, opts) {
      const [fallback, type, code] = statusError(status);
      sendOpenAIError(m, res, status, message ?? fallback, type, opts?.code ?? code, opts?.headers);
    },
    videos,
  };
}
