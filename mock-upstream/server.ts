// The mock upstream: an OpenAI-compatible fake AI provider with fault injection, used by demos, tests and
// benchmarks (it is the benchmarks' baseline, so it is plain node:http with no per-request heavy work).
//
// Endpoints (only under /v1): POST chat/completions, completions, embeddings, images/generations;
// GET models, models/{id}. Errors use OpenAI's {"error":{"message","type","param","code"}} shape.
// Gemini's API is served under /v1beta (gemini/), with its own auth header and error shape.
// Responses carry the account headers OpenAI sends (openai-organization, set-cookie, x-ratelimit-*),
// which a relay must not pass on to its clients.
// Faults: per instance (options.faults, setFaults(), PUT /_mock/faults) and per request (x-mock-* headers,
// which override the instance faults field by field). Control API under /_mock/ (never counted in stats):
//   GET /_mock/health, GET|PUT|POST|DELETE /_mock/faults, GET /_mock/stats, POST /_mock/reset-stats,
//   GET /_mock/image.png (target of image `url` responses).

import type { IncomingMessage, ServerResponse } from 'node:http';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  chatPromptTokens,
  completionText,
  completionTokens,
  DEFAULT_EMBEDDING_DIMENSIONS,
  DEFAULT_MODELS,
  embeddingInputs,
  embeddingVector,
  inputTokens,
  MAX_EMBEDDING_DIMENSIONS,
  PNG_1X1,
  PNG_1X1_BASE64,
  pieceJson,
  vectorBase64,
} from './content.ts';
import { headerFaults, type MockFaults, normalizeFaults } from './faults.ts';
import { geminiApi, geminiError, isGeminiPath } from './gemini/index.ts';

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
  /** If set, /v1 requests need `Authorization: Bearer <apiKey>` (else 401 invalid_api_key). */
  apiKey?: string;
  /** Delay between streamed content chunks; default 0 (the whole stream is written at once). */
  chunkDelayMs?: number;
  /** Listed by GET /v1/models. Requests may name any model: it is echoed back, never 404ed. */
  models?: string[];
}

export interface MockStats {
  requests: number;
  byPath: Record<string, number>;
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
  resetStats(): void;
  /** Closes the server and destroys open sockets (including stalled streams). Idempotent. */
  close(): Promise<void>;
}

const MAX_BODY_BYTES = 32 * 1024 * 1024;
const MAX_IMAGES = 10;
const MODEL_CREATED = 1_700_000_000;
const noop = () => {};

type Json = Record<string, unknown>;

function errorBody(message: string, type: string, code: string | null): string {
  return JSON.stringify({ error: { message, type, param: null, code } });
}

/** OpenAI-like error type/code/message for an injected status fault. */
function faultError(status: number): [message: string, type: string, code: string] {
  switch (status) {
    case 400:
      return ['Bad request (mock fault).', 'invalid_request_error', 'bad_request'];
    case 401:
      return ['Incorrect API key provided (mock fault).', 'invalid_request_error', 'invalid_api_key'];
    case 403:
      return ['Forbidden (mock fault).', 'invalid_request_error', 'permission_denied'];
    case 404:
      return ['Not found (mock fault).', 'invalid_request_error', 'not_found'];
    case 408:
      return ['Request timed out (mock fault).', 'timeout', 'timeout'];
    case 429:
      return ['Rate limit reached (mock fault).', 'requests', 'rate_limit_exceeded'];
    case 500:
      return [
        'The server had an error while processing your request (mock fault).',
        'server_error',
        'server_error',
      ];
    case 502:
      return ['Bad gateway (mock fault).', 'server_error', 'bad_gateway'];
    case 503:
      return ['The engine is currently overloaded (mock fault).', 'server_error', 'service_unavailable'];
    case 504:
      return ['Gateway timeout (mock fault).', 'server_error', 'timeout'];
    default:
      return [
        `HTTP ${status} (mock fault).`,
        status >= 500 ? 'server_error' : 'invalid_request_error',
        `http_${status}`,
      ];
  }
}

/** What OpenAI adds to its answers about the account behind the key. */
const ACCOUNT_HEADERS: Record<string, string> = {
  'openai-organization': 'org-mock-account',
  'openai-project': 'proj_mock',
  'openai-processing-ms': '1',
  'openai-version': '2020-10-01',
  'x-ratelimit-limit-requests': '10000',
  'x-ratelimit-remaining-requests': '9999',
  'set-cookie': '__cf_bm=mock; path=/; HttpOnly; Secure',
};

/** SSE text as another server frames it: its line ending, its JSON spacing. */
function reframe(text: string, faults: MockFaults | undefined): string {
  let t = text;
  if (faults?.spacedJson) t = t.replace(/":/g, '": ').replace(/,"/g, ', "');
  const nl = faults?.sseLineEnding === 'crlf' ? '\r\n' : faults?.sseLineEnding === 'cr' ? '\r' : undefined;
  return nl ? t.replace(/\n/g, nl) : t;
}

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function includeUsage(b: Json): boolean {
  const so = b['stream_options'];
  return isObject(so) && so['include_usage'] === true;
}

function urlHost(host: string): string {
  if (host === '0.0.0.0' || host === '') return '127.0.0.1';
  if (host === '::') return '[::1]';
  return host.includes(':') ? `[${host}]` : host;
}

export function startMockUpstream(opts: MockUpstreamOptions = {}): Promise<MockUpstream> {
  const name = opts.name ?? 'mock';
  const host = opts.host ?? '127.0.0.1';
  const bearer = opts.apiKey !== undefined ? `Bearer ${opts.apiKey}` : undefined;
  const defaultChunkDelayMs = opts.chunkDelayMs ?? 0;
  const models = opts.models ?? DEFAULT_MODELS;
  const modelsJson = JSON.stringify({
    object: 'list',
    data: models.map((id) => ({ id, object: 'model', created: MODEL_CREATED, owned_by: 'kuberelay-mock' })),
  });

  let instanceFaults: MockFaults | null = null;
  let remaining = Number.POSITIVE_INFINITY; // requests left for count-limited instance faults
  const setFaults = (f: MockFaults | null): void => {
    const n = normalizeFaults(f);
    instanceFaults = n;
    remaining = n?.count ?? Number.POSITIVE_INFINITY;
  };
  setFaults(opts.faults ?? null);

  let requests = 0;
  let byPath = new Map<string, number>();
  let last: MockStats['last'];
  const stats = (): MockStats => {
    const s: MockStats = { requests, byPath: Object.fromEntries(byPath) };
    if (last) s.last = last;
    return s;
  };
  const resetStats = (): void => {
    requests = 0;
    byPath = new Map();
    last = undefined;
  };

  let baseUrl = '';
  let seq = 0;
  const nowSec = () => Math.floor(Date.now() / 1000);

  // ---- response helpers -------------------------------------------------------------------------

  const sendJson = (
    res: ServerResponse,
    status: number,
    body: string,
    extra?: Record<string, string>,
  ): void => {
    const headers: Record<string, string | number> = {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(body),
      'x-mock-name': name,
      ...ACCOUNT_HEADERS,
    };
    if (extra) Object.assign(headers, extra);
    res.writeHead(status, headers);
    res.end(body);
  };

  const sendError = (
    res: ServerResponse,
    status: number,
    message: string,
    type: string,
    code: string | null,
    extra?: Record<string, string>,
  ): void => sendJson(res, status, errorBody(message, type, code), extra);

  const badRequest = (res: ServerResponse, message: string, code: string | null = null): void =>
    sendError(res, 400, message, 'invalid_request_error', code);

  /** Runs fn after ms unless the response closes first (client gone or server closing). */
  const delay = (res: ServerResponse, ms: number, fn: () => void): void => {
    const timer = setTimeout(fn, ms);
    res.once('close', () => clearTimeout(timer));
  };

  /**
   * Writes an SSE stream: `head` at once, then `count` content pieces (paced by the chunk delay), then
   * `tail` together with the last piece. streamStallAfter / streamDieAfter cut it after N pieces.
   */
  const stream = (
    res: ServerResponse,
    head: string,
    count: number,
    piece: (i: number) => string,
    tail: string,
    faults: MockFaults | undefined,
  ): void => {
    const delayMs = faults?.chunkDelayMs ?? defaultChunkDelayMs;
    let cut = count;
    let mode: 'end' | 'stall' | 'die' = 'end';
    const die = faults?.streamDieAfter;
    const stall = faults?.streamStallAfter;
    if (die !== undefined && (stall === undefined || die <= stall)) {
      mode = 'die';
      cut = Math.min(die, count);
    } else if (stall !== undefined) {
      mode = 'stall';
      cut = Math.min(stall, count);
    }
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      'x-mock-name': name,
      ...ACCOUNT_HEADERS,
    });
    const out = (t: string) => reframe(t, faults);
    const finish = (data: string): void => {
      // holdAfterDone: the whole answer, [DONE] included, on a socket that never ends
      if (mode === 'end' && faults?.holdAfterDone) res.write(out(data + tail));
      else if (mode === 'end') res.end(out(data + tail));
      // stall: never end, the socket stays open (until the client leaves or close() destroys it)
      else if (mode === 'stall') res.write(out(data));
      // die: flush what was promised, then drop the connection without the chunked terminator
      else res.write(out(data), () => res.destroy());
    };
    if (delayMs <= 0 || cut === 0) {
      let data = head;
      for (let i = 0; i < cut; i++) data += piece(i);
      finish(data);
      return;
    }
    let i = 0;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const next = (): void => {
      const p = piece(i++);
      if (i < cut) {
        res.write(out(p));
        timer = setTimeout(next, delayMs);
      } else finish(p);
    };
    res.once('close', () => clearTimeout(timer));
    res.write(out(head));
    timer = setTimeout(next, delayMs);
  };

  /** streamEventBytes: one content event of `bytes` in 1 MiB writes, never finished. */
  const bigEvent = (res: ServerResponse, head: string, start: string, bytes: number): void => {
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'x-mock-name': name });
    res.write(head + start);
    const slice = 'x'.repeat(1024 * 1024);
    let left = bytes;
    const more = (): void => {
      while (left > 0) {
        const n = Math.min(left, slice.length);
        left -= n;
        if (!res.write(n === slice.length ? slice : slice.slice(0, n))) {
          res.once('drain', more);
          return;
        }
      }
      res.write('"}}]}'); // the event's JSON ends; its blank line never comes
    };
    more();
  };

  const gemini = geminiApi({ sendJson, stream }, opts.apiKey);

  // ---- /v1 handlers -----------------------------------------------------------------------------

  const chatCompletions = (res: ServerResponse, b: Json, faults: MockFaults | undefined) => {
    if (!Array.isArray(b['messages'])) return badRequest(res, "Missing required parameter: 'messages'.");
    const model = b['model'] as string;
    const promptTokens = chatPromptTokens(b['messages']);
    const n = completionTokens(b);
    const usage = { prompt_tokens: promptTokens, completion_tokens: n, total_tokens: promptTokens + n };
    const id = `chatcmpl-mock${++seq}`;
    const created = nowSec();
    if (b['stream'] !== true) {
      return sendJson(
        res,
        200,
        JSON.stringify({
          id,
          object: 'chat.completion',
          created,
          model,
          choices: [
            {
              index: 0,
              message: { role: 'assistant', content: completionText(n), refusal: null },
              logprobs: null,
              finish_reason: 'stop',
            },
          ],
          usage,
          system_fingerprint: null,
        }),
      );
    }
    const withUsage = includeUsage(b);
    const u = withUsage ? ',"usage":null' : ''; // as OpenAI: every chunk carries usage:null then
    const pre = `data: {"id":"${id}","object":"chat.completion.chunk","created":${created},"model":${JSON.stringify(model)},"system_fingerprint":null,"choices":`;
    const post = `,"logprobs":null,"finish_reason":null}]${u}}\n\n`;
    const head = `${pre}[{"index":0,"delta":{"role":"assistant","content":"","refusal":null}${post}`;
    let tail = `${pre}[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}]${u}}\n\n`;
    if (withUsage) tail += `${pre}[],"usage":${JSON.stringify(usage)}}\n\n`;
    tail += 'data: [DONE]\n\n';
    if (faults?.streamEventBytes !== undefined) {
      return bigEvent(res, head, `${pre}[{"index":0,"delta":{"content":"`, faults.streamEventBytes);
    }
    stream(res, head, n, (i) => `${pre}[{"index":0,"delta":{"content":${pieceJson(i)}}${post}`, tail, faults);
  };

  const completions = (res: ServerResponse, b: Json, faults: MockFaults | undefined) => {
    if (b['prompt'] === undefined) return badRequest(res, "Missing required parameter: 'prompt'.");
    const model = b['model'] as string;
    const promptTokens = inputTokens(b['prompt']);
    const n = completionTokens(b);
    const usage = { prompt_tokens: promptTokens, completion_tokens: n, total_tokens: promptTokens + n };
    const id = `cmpl-mock${++seq}`;
    const created = nowSec();
    if (b['stream'] !== true) {
      return sendJson(
        res,
        200,
        JSON.stringify({
          id,
          object: 'text_completion',
          created,
          model,
          choices: [{ text: completionText(n), index: 0, logprobs: null, finish_reason: 'stop' }],
          usage,
        }),
      );
    }
    const withUsage = includeUsage(b);
    const u = withUsage ? ',"usage":null' : '';
    const pre = `data: {"id":"${id}","object":"text_completion","created":${created},"model":${JSON.stringify(model)},"choices":`;
    let tail = `${pre}[{"text":"","index":0,"logprobs":null,"finish_reason":"stop"}]${u}}\n\n`;
    if (withUsage) tail += `${pre}[],"usage":${JSON.stringify(usage)}}\n\n`;
    tail += 'data: [DONE]\n\n';
    const piece = (i: number) =>
      `${pre}[{"text":${pieceJson(i)},"index":0,"logprobs":null,"finish_reason":null}]${u}}\n\n`;
    stream(res, '', n, piece, tail, faults);
  };

  const embeddings = (res: ServerResponse, b: Json) => {
    const input = b['input'];
    if (input === undefined || input === null) return badRequest(res, "Missing required parameter: 'input'.");
    const dimsParam = b['dimensions'];
    let dims = DEFAULT_EMBEDDING_DIMENSIONS;
    if (dimsParam !== undefined) {
      if (
        typeof dimsParam !== 'number' ||
        !Number.isInteger(dimsParam) ||
        dimsParam < 1 ||
        dimsParam > MAX_EMBEDDING_DIMENSIONS
      ) {
        return badRequest(res, `'dimensions' must be an integer between 1 and ${MAX_EMBEDDING_DIMENSIONS}.`);
      }
      dims = dimsParam;
    }
    const base64 = b['encoding_format'] === 'base64';
    const data = embeddingInputs(input).map((item, index) => {
      const v = embeddingVector(item, dims);
      return { object: 'embedding', index, embedding: base64 ? vectorBase64(v) : Array.from(v) };
    });
    const tokens = inputTokens(input);
    sendJson(
      res,
      200,
      JSON.stringify({
        object: 'list',
        data,
        model: b['model'],
        usage: { prompt_tokens: tokens, total_tokens: tokens },
      }),
    );
  };

  const images = (res: ServerResponse, b: Json) => {
    const prompt = b['prompt'];
    if (typeof prompt !== 'string') return badRequest(res, "Missing required parameter: 'prompt'.");
    const model = typeof b['model'] === 'string' ? b['model'] : 'dall-e-2';
    const nParam = b['n'];
    let n = 1;
    if (nParam !== undefined && nParam !== null) {
      if (typeof nParam !== 'number' || !Number.isInteger(nParam) || nParam < 1 || nParam > MAX_IMAGES) {
        return badRequest(res, `'n' must be an integer between 1 and ${MAX_IMAGES}.`);
      }
      n = nParam;
    }
    // As OpenAI: dall-e-* default to `url`, gpt-image-* always return b64_json.
    const format = b['response_format'] ?? (model.startsWith('dall-e') ? 'url' : 'b64_json');
    const item = format === 'url' ? { url: `${baseUrl}/_mock/image.png` } : { b64_json: PNG_1X1_BASE64 };
    const out: Json = { created: nowSec(), data: Array.from({ length: n }, () => item) };
    if (model.startsWith('gpt-image')) {
      const input = inputTokens(prompt);
      const output = 272 * n;
      out['usage'] = {
        input_tokens: input,
        output_tokens: output,
        total_tokens: input + output,
        input_tokens_details: { text_tokens: input, image_tokens: 0 },
      };
    }
    sendJson(res, 200, JSON.stringify(out));
  };

  const route = (
    req: IncomingMessage,
    res: ServerResponse,
    path: string,
    body: unknown,
    badJson: boolean,
    faults: MockFaults | undefined,
  ) => {
    if (isGeminiPath(path)) return gemini(req, res, path, body, badJson, faults);
    if (bearer !== undefined && req.headers.authorization !== bearer) {
      return sendError(res, 401, 'Incorrect API key provided.', 'invalid_request_error', 'invalid_api_key');
    }
    const method = req.method;
    if (method === 'POST') {
      let handler: ((res: ServerResponse, b: Json, f: MockFaults | undefined) => void) | undefined;
      if (path === '/v1/chat/completions') handler = chatCompletions;
      else if (path === '/v1/completions') handler = completions;
      else if (path === '/v1/embeddings') handler = embeddings;
      else if (path === '/v1/images/generations') handler = images;
      if (handler) {
        if (badJson) {
          return badRequest(
            res,
            'We could not parse the JSON body of your request. The OpenAI API expects a JSON payload.',
            'invalid_json',
          );
        }
        if (!isObject(body)) {
          return badRequest(res, 'The request body must be a JSON object.', 'invalid_json');
        }
        if (typeof body['model'] !== 'string' && handler !== images) {
          return badRequest(res, 'You must provide a model parameter.', 'missing_model');
        }
        return handler(res, body, faults);
      }
    } else if (method === 'GET') {
      if (path === '/v1/models') return sendJson(res, 200, modelsJson);
      if (path.startsWith('/v1/models/') && path.length > 11) {
        let id = path.slice(11);
        try {
          id = decodeURIComponent(id);
        } catch {
          // keep the raw id
        }
        const model = { id, object: 'model', created: MODEL_CREATED, owned_by: 'kuberelay-mock' };
        return sendJson(res, 200, JSON.stringify(model));
      }
    }
    sendError(res, 404, `Invalid URL (${method} ${path})`, 'invalid_request_error', 'unknown_url');
  };

  const afterLatency = (
    req: IncomingMessage,
    res: ServerResponse,
    path: string,
    body: unknown,
    badJson: boolean,
    faults: MockFaults,
  ) => {
    if (faults.reset) {
      req.socket.resetAndDestroy();
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
      const [message, type, code] = faultError(status);
      const extra =
        faults.retryAfter !== undefined ? { 'retry-after': String(faults.retryAfter) } : undefined;
      if (isGeminiPath(path)) return sendJson(res, status, geminiError(status), extra);
      return sendError(res, status, message, type, code, extra);
    }
    route(req, res, path, body, badJson, faults);
  };

  const serve = (req: IncomingMessage, res: ServerResponse, path: string, raw: string) => {
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

    let faults: MockFaults | undefined;
    if (instanceFaults) {
      faults = instanceFaults;
      if (--remaining <= 0) setFaults(null);
    }
    let fromHeaders: MockFaults | undefined;
    try {
      fromHeaders = headerFaults(req.headers);
    } catch (err) {
      return badRequest(res, (err as Error).message, 'invalid_mock_header');
    }
    if (fromHeaders) faults = faults ? { ...faults, ...fromHeaders } : fromHeaders;
    if (!faults) return route(req, res, path, body, badJson, undefined);
    const f = faults;
    if (f.latencyMs) delay(res, f.latencyMs, () => afterLatency(req, res, path, body, badJson, f));
    else afterLatency(req, res, path, body, badJson, f);
  };

  // ---- control API ------------------------------------------------------------------------------

  const currentFaults = (): MockFaults => {
    if (!instanceFaults) return {};
    return Number.isFinite(remaining) ? { ...instanceFaults, count: remaining } : { ...instanceFaults };
  };

  const control = (req: IncomingMessage, res: ServerResponse, path: string, raw: string) => {
    const method = req.method;
    if (path === '/_mock/faults') {
      if (method === 'GET') return sendJson(res, 200, JSON.stringify(currentFaults()));
      if (method === 'DELETE') {
        setFaults(null);
        return sendJson(res, 200, '{}');
      }
      if (method === 'PUT' || method === 'POST') {
        try {
          setFaults(raw.trim() === '' ? null : JSON.parse(raw));
        } catch (err) {
          return badRequest(res, `invalid faults: ${(err as Error).message}`, 'invalid_faults');
        }
        return sendJson(res, 200, JSON.stringify(currentFaults()));
      }
    } else if (path === '/_mock/stats' && method === 'GET') {
      return sendJson(res, 200, JSON.stringify(stats()));
    } else if (path === '/_mock/reset-stats' && method === 'POST') {
      resetStats();
      res.writeHead(204, { 'x-mock-name': name });
      res.end();
      return;
    } else if (path === '/_mock/health' && method === 'GET') {
      return sendJson(res, 200, JSON.stringify({ status: 'ok', name }));
    } else if (path === '/_mock/image.png' && method === 'GET') {
      res.writeHead(200, {
        'content-type': 'image/png',
        'content-length': PNG_1X1.length,
        'x-mock-name': name,
      });
      res.end(PNG_1X1);
      return;
    }
    sendError(res, 404, `Invalid URL (${method} ${path})`, 'invalid_request_error', 'unknown_url');
  };

  // ---- server -----------------------------------------------------------------------------------

  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q < 0 ? url : url.slice(0, q);
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('error', noop);
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size <= MAX_BODY_BYTES) chunks.push(c);
    });
    req.on('end', () => {
      if (size > MAX_BODY_BYTES) {
        return sendError(res, 413, 'Request body too large.', 'invalid_request_error', 'request_too_large');
      }
      const raw =
        chunks.length === 0
          ? ''
          : chunks.length === 1
            ? chunks[0]!.toString('utf8')
            : Buffer.concat(chunks).toString('utf8');
      if (path.startsWith('/_mock/')) control(req, res, path, raw);
      else serve(req, res, path, raw);
    });
  };

  const server = http.createServer({ noDelay: true }, onRequest);

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
      resolve({ url: baseUrl, port, name, setFaults, stats, resetStats, close });
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
