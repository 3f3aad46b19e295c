// Veo on the mock's Gemini API: `POST /v1beta/models/{model}:predictLongRunning` starts an
// operation (task-sim.ts), `GET /v1beta/models/{model}/operations/{id}` reports it (`done`, then
// `response.generateVideoResponse.generatedSamples[0].video.uri` or `error`; a filtered prompt
// gets `raiMediaFilteredCount`/`raiMediaFilteredReasons`), and `GET /v1beta/files/{id}:download`
// (the key is required, as at Google) redirects (302; Google's docs download with `curl -L`) to a
// signed media URL, `/veo-media/{id}?sig=`, that serves the bytes (Range supported). Past the
// upstream's own concurrency limit a submit gets 429 RESOURCE_EXHAUSTED; an expired or unknown
// operation 404.
import { createHash, randomBytes } from 'node:crypto';
import type { MockHandler, MockRequest } from '../api.ts';
import { isObject } from '../http.ts';
import { resultBytes, sendBytes, type TaskSim } from '../task-sim.ts';
import { geminiError } from './errors.ts';

export const OPERATION_PATH = /^\/v1(?:beta|alpha)?\/(models\/[^/:]+\/operations\/[A-Za-z0-9_-]+)$/;
export const FILE_PATH = /^\/v1(?:beta|alpha)?\/files\/([A-Za-z0-9_-]+):download$/;
export const MEDIA_PATH = /^\/veo-media\/([A-Za-z0-9_-]+)$/;

export function veoHandlers(tasks: TaskSim) {
  const secret = randomBytes(16).toString('hex'); // per mock instance: its media URLs' signatures
  const sig = (id: string) => createHash('sha256').update(`${secret}:${id}`).digest('hex').slice(0, 32);
  /** A media URL carries its own credential, like a signed storage URL: no key needed. */
  const signedMedia = (r: MockRequest): boolean => {
    const m = MEDIA_PATH.exec(r.path);
    return m !== null && r.query.get('sig') === sig(m[1]!);
  };

  const predict: MockHandler = (m, res, r) => {
    const model = decodeURIComponent(/\/models\/([^/:]+):/.exec(r.path)![1]!);
    const body = isObject(r.body) ? r.body : undefined;
    const instance = Array.isArray(body?.['instances']) ? body['instances'][0] : undefined;
    const prompt = isObject(instance) ? instance['prompt'] : undefined;
    if (r.badJson || typeof prompt !== 'string' || prompt === '') {
      return m.sendJson(res, 400, geminiError(400, 'instances[0].prompt is required.'));
    }
    const task = tasks.submit(model, 'video', prompt);
    if (!task) return m.sendJson(res, 429, geminiError(429));
    m.sendJson(res, 200, JSON.stringify({ name: `models/${model}/operations/${task.id}` }));
  };

  const operation: MockHandler = (m, res, r) => {
    const name = OPERATION_PATH.exec(r.path)![1]!;
    const id = name.slice(name.lastIndexOf('/') + 1);
    const task = tasks.poll(id);
    const state =
      task && `models/${task.model}/operations/${task.id}` === name ? tasks.phase(task) : undefined;
    if (!task || !state || state.phase === 'expired') return m.sendJson(res, 404, geminiError(404));
    if (state.phase === 'queued' || state.phase === 'running')
      return m.sendJson(res, 200, JSON.stringify({ name }));
    if (state.phase === 'failed') {
      const error = { code: 13, message: 'Video generation failed due to an internal error. (mock)' };
      return m.sendJson(res, 200, JSON.stringify({ name, done: true, error }));
    }
    const video =
      state.phase === 'filtered'
        ? {
            raiMediaFilteredCount: 1,
            raiMediaFilteredReasons: [
              'The prompt could not be submitted: it may violate our policies. (mock)',
            ],
          }
        : {
            generatedSamples: [
              { video: { uri: `${m.baseUrl()}/v1beta/files/${task.id}:download?alt=media` } },
            ],
          };
    const response = {
      '@type': 'type.googleapis.com/google.ai.generativelanguage.v1beta.PredictLongRunningResponse',
      generateVideoResponse: video,
    };
    m.sendJson(res, 200, JSON.stringify({ name, done: true, response }));
  };

  const download: MockHandler = (m, res, r) => {
    const task = tasks.get(FILE_PATH.exec(r.path)![1]!);
    if (!task || tasks.phase(task).phase !== 'done') return m.sendJson(res, 404, geminiError(404));
    res.writeHead(302, {
      location: `${m.baseUrl()}/veo-media/${task.id}?sig=${sig(task.id)}`,
      'x-mock-name': m.name,
    });
    res.end();
  };

  const media: MockHandler = (m, res, r) => {
    const task = tasks.get(MEDIA_PATH.exec(r.path)![1]!);
    if (!signedMedia(r) || !task) return m.sendJson(res, 403, geminiError(403));
    sendBytes(r.req, res, resultBytes(task.id, tasks.resultBytes), 'video/mp4', m.name);
  };

  return { predict, operation, download, media, signedMedia };
}
