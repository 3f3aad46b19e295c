// The Gemini API for the mock upstream: POST /v1beta/models/{model}:{method} for generateContent,
// streamGenerateContent (`?alt=sse`: SSE; otherwise one JSON array, as Gemini), embedContent and
// batchEmbedContents, and Veo's long-running operations (veo.ts). The key is checked in `x-goog-api-key` (or `?key=`); errors, injected
// status faults included, are Gemini-shaped.
import type { MockApi, MockHandler } from '../api.ts';
import type { MockHttp } from '../http.ts';
import type { TaskSim } from '../task-sim.ts';
import { batchEmbedContents, embedContent } from './embed.ts';
import { geminiError, INVALID_KEY } from './errors.ts';
import { ImplicitCache, plan, streamEvents, wholeAnswer } from './generate.ts';
import { FILE_PATH, MEDIA_PATH, OPERATION_PATH, veoHandlers } from './veo.ts';

const PATH = /^\/v1(?:beta|alpha)?\/models\/([^/:]+):([A-Za-z]+)$/;

type Json = Record<string, unknown>;

/** The model and the body, or undefined after answering a 400. */
function parse(m: MockHttp, res: Parameters<MockHandler>[1], r: Parameters<MockHandler>[2]) {
  if (r.badJson || typeof r.body !== 'object' || r.body === null || Array.isArray(r.body)) {
    m.sendJson(res, 400, geminiError(400, 'Invalid JSON payload received.'));
    return undefined;
  }
  return { model: decodeURIComponent(PATH.exec(r.path)![1]!), body: r.body as Json };
}

const embed =
  (batch: boolean): MockHandler =>
  (m, res, r) => {
    const p = parse(m, res, r);
    if (!p) return;
    const out = batch ? batchEmbedContents(p.body, p.model) : embedContent(p.body);
    if (typeof out === 'string') m.sendJson(res, 200, out);
    else m.sendJson(res, 400, geminiError(400, out.error));
  };

function generate(cache: ImplicitCache, streaming: boolean): MockHandler {
  return (m, res, r) => {
    const p = parse(m, res, r);
    if (!p) return;
    const answer = plan(p.body, cache);
    if (typeof answer === 'string') return m.sendJson(res, 400, geminiError(400, answer));
    const responseId = `mock${m.nextId()}`;
    if (!streaming) return m.sendJson(res, 200, wholeAnswer(answer, p.model, responseId));
    const { count, piece, tail } = streamEvents(answer, p.model, responseId);
    if (r.query.get('alt') === 'sse') return m.stream(res, '', count, piece, tail, r.faults);
    const items = [...Array.from({ length: count }, (_, i) => piece(i)), tail].map((e) =>
      e.slice(6).trimEnd(),
    );
    m.sendJson(res, 200, `[${items.join(',\n')}]`);
  };
}

export function geminiApi(tasks: TaskSim): MockApi {
  const cache = new ImplicitCache(); // per mock instance
  const veo = veoHandlers(tasks);
  const methods: Record<string, MockHandler> = {
    predictLongRunning: veo.predict,
    generateContent: generate(cache, false),
    streamGenerateContent: generate(cache, true),
    embedContent: embed(false),
    batchEmbedContents: embed(true),
  };
  return {
    name: 'gemini',
    owns: (path) => path.startsWith('/v1beta/') || path.startsWith('/v1alpha/') || MEDIA_PATH.test(path),
    match(method, path) {
      if (method === 'GET' && OPERATION_PATH.test(path)) return veo.operation;
      if (method === 'GET' && FILE_PATH.test(path)) return veo.download;
      if (method === 'GET' && MEDIA_PATH.test(path)) return veo.media;
      const p = PATH.exec(path);
      return method === 'POST' && p ? methods[p[2]!] : undefined;
    },
    authorized(r, apiKey) {
      if (veo.signedMedia(r)) return true;
      const header = r.req.headers['x-goog-api-key'];
      return (Array.isArray(header) ? header[0] : (header ?? r.query.get('key'))) === apiKey;
    },
    sendError(m, res, status, message, opts) {
      // A wrong or missing key is a 400 INVALID_ARGUMENT with reason API_KEY_INVALID at Gemini.
      if (opts?.code === 'invalid_api_key') return m.sendJson(res, 400, INVALID_KEY, opts.headers);
      m.sendJson(res, status, geminiError(status, message), opts?.headers);
    },
  };
}
