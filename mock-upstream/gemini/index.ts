// The Gemini API for the mock upstream: POST /v1beta/models/{model}:{method} for generateContent,
// streamGenerateContent (`?alt=sse`: SSE; otherwise a JSON array, as Gemini), embedContent and
// batchEmbedContents. The key is checked in `x-goog-api-key` or `?key=`; errors are Gemini-shaped.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { MockFaults } from '../faults.ts';
import { batchEmbedContents, embedContent } from './embed.ts';
import { geminiError, INVALID_KEY, NO_KEY } from './errors.ts';
import { ImplicitCache, plan, streamEvents, wholeAnswer } from './generate.ts';

export { geminiError } from './errors.ts';

/** What the mock server lends its API modules: its JSON and SSE writers (with the shared faults). */
export interface MockWriters {
  sendJson(res: ServerResponse, status: number, body: string, extra?: Record<string, string>): void;
  stream(
    res: ServerResponse,
    head: string,
    count: number,
    piece: (i: number) => string,
    tail: string,
    faults: MockFaults | undefined,
  ): void;
}

const PATH = /^\/v1(?:beta|alpha)?\/models\/([^/:]+):([A-Za-z]+)$/;

export const isGeminiPath = (path: string): boolean =>
  path.startsWith('/v1beta/') || path.startsWith('/v1alpha/');

export function geminiApi(w: MockWriters, apiKey: string | undefined) {
  const cache = new ImplicitCache();
  let seq = 0;
  const bad = (res: ServerResponse, message: string) => w.sendJson(res, 400, geminiError(400, message));

  return (
    req: IncomingMessage,
    res: ServerResponse,
    path: string,
    body: unknown,
    badJson: boolean,
    faults: MockFaults | undefined,
  ) => {
    const url = new URL(req.url ?? '/', 'http://mock');
    if (apiKey !== undefined) {
      const header = req.headers['x-goog-api-key'];
      const key = (Array.isArray(header) ? header[0] : header) ?? url.searchParams.get('key') ?? undefined;
      if (key === undefined) return w.sendJson(res, 403, NO_KEY);
      if (key !== apiKey) return w.sendJson(res, 400, INVALID_KEY);
    }
    const m = PATH.exec(path);
    if (!m || req.method !== 'POST') {
      return w.sendJson(res, 404, geminiError(404, `Invalid URL (${req.method} ${path})`));
    }
    if (badJson) return bad(res, `Invalid JSON payload received. Unexpected token.`);
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      return bad(res, 'Invalid JSON payload received. Expected an object.');
    }
    const b = body as Record<string, unknown>;
    const model = decodeURIComponent(m[1]!);
    const method = m[2];
    if (method === 'embedContent' || method === 'batchEmbedContents') {
      const out = method === 'embedContent' ? embedContent(b) : batchEmbedContents(b, model);
      return typeof out === 'string' ? w.sendJson(res, 200, out) : bad(res, out.error);
    }
    if (method !== 'generateContent' && method !== 'streamGenerateContent') {
      return w.sendJson(res, 404, geminiError(404, `Method ${method} is not found for models/${model}.`));
    }
    const p = plan(b, cache);
    if (typeof p === 'string') return bad(res, p);
    const responseId = `mock${++seq}`;
    if (method === 'generateContent') return w.sendJson(res, 200, wholeAnswer(p, model, responseId));
    const { count, piece, tail } = streamEvents(p, model, responseId);
    if (url.searchParams.get('alt') === 'sse') return w.stream(res, '', count, piece, tail, faults);
    // Without alt=sse Gemini streams one JSON array of the same responses.
    const items = [...Array.from({ length: count }, (_, i) => piece(i)), tail].map((e) =>
      e.slice(6).trimEnd(),
    );
    w.sendJson(res, 200, `[${items.join(',\n')}]`);
  };
}
