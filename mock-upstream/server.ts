// The mock upstream: a fake AI provider speaking every provider's native API, with fault injection,
// used by demos, tests and benchmarks (it is the benchmarks' baseline, so it is plain node:http with
// no per-request heavy work).
//
// One module per API (api.ts is their contract): openai/ (under /v1: chat/completions, completions,
// embeddings, images/generations, images/edits, images/variations, audio/*, moderations, rerank,
// models; responses.ts: the Responses API, also Azure's), azure-openai/ (/openai/v1/... and
// /openai/deployments/{name}/...?api-version=), and beside them anthropic/, gemini/ (with Veo) and
// volcengine/ (async tasks: task-sim.ts). This file
// reads bodies, applies the shared faults (faults.ts), keeps stats, serves the control API and
// routes each request to the first API that owns its path; that API checks its own auth header and
// answers errors (faults included) in its own shape.
// Faults: per instance (options.faults, setFaults(), PUT /_mock/faults) and per request (x-mock-*
// headers, which override the instance faults field by field). Control API under /_mock/ (never
// counted in stats): GET /_mock/health, GET|PUT|POST|DELETE /_mock/faults, GET /_mock/stats,
// POST /_mock/reset-stats, GET /_mock/image.png (target of image `url` responses).

import type { IncomingMessage, ServerResponse } from 'node:http';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { anthropicApi } from './anthropic/index.ts';
import type { MockApi, MockRequest } from './api.ts';
import { azureOpenAIApi } from './azure-openai/index.ts';
import { DEFAULT_MODELS, PNG_1X1 } from './content.ts';
import { headerFaults, type MockFaults, normalizeFaults } from './faults.ts';
import { geminiApi } from './gemini/index.ts';
import { mockHttp } from './http.ts';
import { openaiApi } from './openai/index.ts';
import { responsesApi } from './openai/responses.ts';
import { type MockVideoOptions, type MockVideos, openaiVideosApi } from './openai/videos.ts';
import { TaskSim, type TaskSimOptions, type TaskSimStats } from './task-sim.ts';
import { type VolcengineCredentials, volcengineApi } from './volcengine/index.ts';

export type { MockFaults } from './faults.ts';

export interface MockUpstreamOptions {
  /** 0 (default) picks a random free port. */
  port?: number;
  /** Default 127.0.0.1. */
  host?: string;
  /** Sent back as `x-mock-name` on every response. Default "mock". */
  name?: string;
  /** Initial instance faults. */
  faults?: MockFaults;
  /** If set, API requests need this key in their provider's auth header (else that provider's 401). */
  apiKey?: string;
  /** Delay between streamed content chunks; default 0 (the whole stream is written at once). */
  chunkDelayMs?: number;
  /** Listed by GET /v1/models. Requests may name any model: it is echoed back, never 404ed. */
  models?: string[];
  /** Largest request body it reads (default 32 MiB; benchmarks upload more). */
  maxBodyBytes?: number;
  /** Volcengine's key pair: visual API requests must be signed with it (else its gateway error). */
  volcengine?: VolcengineCredentials;
  /** Simulated async tasks (Volcengine, Veo): timing, the upstream's own concurrency limit, result size. */
  tasks?: TaskSimOptions;
  /** The async video job simulator (openai/videos.ts): duration, concurrency limit, content size. */
  videos?: MockVideoOptions;
}

export interface MockStats {
  requests: number;
  byPath: Record<string, number>;
  /** TCP connections accepted (the control API's too): a client that reuses them opens few. */
  connections: number;
  last?: {
    method: string;
    path: string;
    headers: Record<string, string | string[] | undefined>;
    body: unknown;
  };
}

export interface MockUpstream {
  /** e.g. http://127.0.0.1:PORT (no /v1). */
  url: string;
  port: number;
  name: string;
  /** Replace the instance faults; null or {} clears. Throws a TypeError on an invalid description. */
  setFaults(f: MockFaults | null): void;
  stats(): MockStats;
  /** TCP connections open now. */
  openConnections(): number;
  /** The simulated async tasks per API (`volcengine`, `veo`): submits, status calls per task, most running. */
  taskStats(): Record<string, TaskSimStats>;
  resetStats(): void;
  /** The video job simulator's counters and controls (also GET /_mock/videos). */
  videos: MockVideos;
  /** Closes the server and destroys open sockets (including stalled streams). Idempotent. */
  close(): Promise<void>;
}

const MAX_BODY_BYTES = 32 * 1024 * 1024;
const noop = () => {};

function urlHost(host: string): string {
  if (host === '0.0.0.0' || host === '') return '127.0.0.1';
  if (host === '::') return '[::1]';
  return host.includes(':') ? `[${host}]` : host;
}

export function startMockUpstream(opts: MockUpstreamOptions = {}): Promise<MockUpstream> {
  const name = opts.name ?? 'mock';
  const host = opts.host ?? '127.0.0.1';
  const apiKey = opts.apiKey;
  const maxBody = opts.maxBodyBytes ?? MAX_BODY_BYTES;
  // The first API owning a path answers it; OpenAI's owns everything left.
  const tasks = { volcengine: new TaskSim('', opts.tasks), veo: new TaskSim('veo', opts.tasks) };
  const videoApi = openaiVideosApi(opts.videos);
  const apis: MockApi[] = [
    videoApi, // OpenAI's Videos API (openai/videos.ts)
    responsesApi(), // OpenAI's and Azure's Responses API (openai/responses.ts)
    azureOpenAIApi,
    anthropicApi(),
    geminiApi(tasks.veo),
    volcengineApi({ ...(opts.volcengine ? { credentials: opts.volcengine } : {}), tasks: tasks.volcengine }),
    openaiApi(opts.models ?? DEFAULT_MODELS),
  ];
  const fallback = apis.at(-1)!;

  let instanceFaults: MockFaults | null = null;
  let remaining = Number.POSITIVE_INFINITY; // requests left for count-limited instance faults
  const setFaults = (f: MockFaults | null): void => {
    const n = normalizeFaults(f);
    instanceFaults = n;
    remaining = n?.count ?? Number.POSITIVE_INFINITY;
  };
  setFaults(opts.faults ?? null);

  let requests = 0;
  let connections = 0;
  let byPath = new Map<string, number>();
  let last: MockStats['last'];
  const stats = (): MockStats => {
    const s: MockStats = { requests, byPath: Object.fromEntries(byPath), connections };
    if (last) s.last = last;
    return s;
  };
  const resetStats = (): void => {
    requests = 0;
    connections = 0;
    byPath = new Map();
    last = undefined;
  };

  let baseUrl = '';
  const m = mockHttp(name, () => baseUrl, opts.chunkDelayMs ?? 0);

  /** Runs fn after ms unless the response closes first (client gone or server closing). */
  const delay = (res: ServerResponse, ms: number, fn: () => void): void => {
    const timer = setTimeout(fn, ms);
    res.once('close', () => clearTimeout(timer));
  };

  const route = (api: MockApi, res: ServerResponse, r: MockRequest) => {
    if (apiKey !== undefined && !api.authorized(r, apiKey)) {
      return api.sendError(m, res, 401, 'Incorrect API key provided.', { code: 'invalid_api_key' });
    }
    const method = r.req.method ?? 'GET';
    const handler = api.match(method, r.path);
    if (handler) return handler(m, res, r);
    api.sendError(m, res, 404, `Invalid URL (${method} ${r.path})`, { code: 'unknown_url' });
  };

  const afterLatency = (api: MockApi, res: ServerResponse, r: MockRequest, faults: MockFaults) => {
    if (faults.reset) {
      r.req.socket.resetAndDestroy();
      return;
    }
    if (faults.html) {
      const page =
        '<html><head><title>502 Bad Gateway</title></head><body>upstream unavailable</body></html>';
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'x-mock-name': name });
      res.end(page);
      return;
    }
    const status = faults.status;
    if (status !== undefined && status >= 300) {
      const headers =
        faults.retryAfter !== undefined ? { 'retry-after': String(faults.retryAfter) } : undefined;
      return api.sendError(m, res, status, undefined, headers ? { headers } : undefined);
    }
    route(api, res, r);
  };

  const serve = (
    req: IncomingMessage,
    res: ServerResponse,
    path: string,
    query: string,
    raw: string,
    bytes: Buffer,
  ) => {
    let body: unknown;
    let badJson = false;
    if (raw.length > 0) {
      try {
        body = JSON.parse(raw);
      } catch {
        badJson = true;
        body = raw;
      }
    }
    requests++;
    byPath.set(path, (byPath.get(path) ?? 0) + 1);
    last = { method: req.method ?? 'GET', path, headers: req.headers, body };
    const api = apis.find((a) => a.owns(path)) ?? fallback;

    let faults: MockFaults | undefined;
    if (instanceFaults) {
      faults = instanceFaults;
      if (--remaining <= 0) setFaults(null);
    }
    let fromHeaders: MockFaults | undefined;
    try {
      fromHeaders = headerFaults(req.headers);
    } catch (err) {
      return api.sendError(m, res, 400, (err as Error).message, { code: 'invalid_mock_header' });
    }
    if (fromHeaders) faults = faults ? { ...faults, ...fromHeaders } : fromHeaders;
    const r: MockRequest = {
      req,
      path,
      query: new URLSearchParams(query),
      body,
      badJson,
      raw,
      bytes,
      faults,
    };
    if (!faults) return route(api, res, r);
    const f = faults;
    if (f.latencyMs) delay(res, f.latencyMs, () => afterLatency(api, res, r, f));
    else afterLatency(api, res, r, f);
  };

  // ---- control API ------------------------------------------------------------------------------

  const currentFaults = (): MockFaults => {
    if (!instanceFaults) return {};
    return Number.isFinite(remaining) ? { ...instanceFaults, count: remaining } : { ...instanceFaults };
  };

  const controlError = (res: ServerResponse, status: number, message: string, code: string) =>
    fallback.sendError(m, res, status, message, { code });

  const control = (req: IncomingMessage, res: ServerResponse, path: string, raw: string) => {
    const method = req.method;
    if (path === '/_mock/faults') {
      if (method === 'GET') return m.sendJson(res, 200, JSON.stringify(currentFaults()));
      if (method === 'DELETE') {
        setFaults(null);
        return m.sendJson(res, 200, '{}');
      }
      if (method === 'PUT' || method === 'POST') {
        try {
          setFaults(raw.trim() === '' ? null : JSON.parse(raw));
        } catch (err) {
          return controlError(res, 400, `invalid faults: ${(err as Error).message}`, 'invalid_faults');
        }
        return m.sendJson(res, 200, JSON.stringify(currentFaults()));
      }
    } else if (path === '/_mock/stats' && method === 'GET') {
      return m.sendJson(res, 200, JSON.stringify(stats()));
    } else if (path === '/_mock/reset-stats' && method === 'POST') {
      resetStats();
      res.writeHead(204, { 'x-mock-name': name });
      res.end();
      return;
    } else if (path === '/_mock/videos' && method === 'GET') {
      return m.sendJson(res, 200, JSON.stringify(videoApi.videos.stats()));
    } else if (path === '/_mock/health' && method === 'GET') {
      return m.sendJson(res, 200, JSON.stringify({ status: 'ok', name }));
    } else if (path === '/_mock/image.png' && method === 'GET') {
      res.writeHead(200, {
        'content-type': 'image/png',
        'content-length': PNG_1X1.length,
        'x-mock-name': name,
      });
      res.end(PNG_1X1);
      return;
    }
    controlError(res, 404, `Invalid URL (${method} ${path})`, 'unknown_url');
  };

  // ---- server -----------------------------------------------------------------------------------

  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q < 0 ? url : url.slice(0, q);
    const query = q < 0 ? '' : url.slice(q + 1);
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('error', noop);
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size <= maxBody) chunks.push(c);
    });
    req.on('end', () => {
      if (size > maxBody) {
        return controlError(res, 413, 'Request body too large.', 'request_too_large');
      }
      const bytes = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
      // A form is read from its bytes (mock-upstream/multipart.ts), never as text.
      const form = String(req.headers['content-type'] ?? '').startsWith('multipart/');
      const raw = form || bytes.length === 0 ? '' : bytes.toString('utf8');
      if (path.startsWith('/_mock/')) control(req, res, path, raw);
      else serve(req, res, path, query, raw, bytes);
    });
  };

  const server = http.createServer({ noDelay: true }, onRequest);
  let open = 0;
  server.on('connection', (socket) => {
    connections++;
    open++;
    socket.once('close', () => open--);
  });

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
    return closing;
  };

  return new Promise<MockUpstream>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => {
      server.off('error', reject);
      const port = (server.address() as AddressInfo).port;
      baseUrl = `http://${urlHost(host)}:${port}`;
      const taskStats = () => ({ volcengine: tasks.volcengine.stats(), veo: tasks.veo.stats() });
      const videos = videoApi.videos;
      resolve({
        url: baseUrl,
        port,
        name,
        setFaults,
        stats,
        openConnections: () => open,
        taskStats,
        resetStats,
        videos,
        close,
      });
    });
  });
}

export interface MockUpstreamCliOptions {
  port: number;
  /** Default 0.0.0.0 (reachable from other containers / pods). */
  host?: string;
  name?: string;
  latencyMs?: number;
  status?: number;
  apiKey?: string;
  chunkDelayMs?: number;
  volcengineAccessKeyId?: string;
  volcengineSecretAccessKey?: string;
  taskDurationMs?: number;
  taskMaxConcurrent?: number;
}

/**
 * `kuberelay mock-upstream`: starts the mock, logs `mock-upstream <name> listening on <url>` and closes
 * it on SIGINT/SIGTERM (after which the process exits by itself).
 */
export async function runMockUpstreamCli(opts: MockUpstreamCliOptions): Promise<MockUpstream> {
  const faults: MockFaults = {};
  if (opts.latencyMs !== undefined) faults.latencyMs = opts.latencyMs;
  if (opts.status !== undefined) faults.status = opts.status;
  const options: MockUpstreamOptions = { port: opts.port, host: opts.host ?? '0.0.0.0', faults };
  if (opts.name !== undefined) options.name = opts.name;
  if (opts.apiKey !== undefined) options.apiKey = opts.apiKey;
  if (opts.chunkDelayMs !== undefined) options.chunkDelayMs = opts.chunkDelayMs;
  const ak = opts.volcengineAccessKeyId;
  const sk = opts.volcengineSecretAccessKey;
  if ((ak === undefined) !== (sk === undefined)) {
    throw new Error('--volcengine-access-key-id and --volcengine-secret-access-key go together');
  }
  if (ak !== undefined && sk !== undefined) options.volcengine = { accessKeyId: ak, secretAccessKey: sk };
  if (opts.taskDurationMs !== undefined || opts.taskMaxConcurrent !== undefined) {
    options.tasks = {
      ...(opts.taskDurationMs !== undefined && { durationMs: opts.taskDurationMs }),
      ...(opts.taskMaxConcurrent !== undefined && { maxConcurrent: opts.taskMaxConcurrent }),
    };
  }
  const mock = await startMockUpstream(options);
  process.stdout.write(`mock-upstream ${mock.name} listening on ${mock.url}\n`);
  const stop = (): void => {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
    void mock.close();
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  return mock;
}
