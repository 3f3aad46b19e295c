// Volcengine's visual API for the mock upstream: `POST /?Action=CVSync2AsyncSubmitTask|
// CVSync2AsyncGetResult&Version=2022-08-31` (Jimeng/Seedance video and image tasks, simulated by
// task-sim.ts), and the result files at `GET /volcengine/results/{task_id}.mp4|.png` (deterministic
// bytes, Range). With `credentials` every API request must carry a valid HMAC-SHA256 signature of
// that key pair (verify.ts), else Volcengine's gateway error; without, signatures are not checked.
// Faults (status, latency, reset, ...) answer in the visual API's error shape.
import type { MockApi, MockHandler } from '../api.ts';
import type { MockHttp } from '../http.ts';
import { resultBytes, sendBytes, type TaskSim } from '../task-sim.ts';
import { businessError, gatewayError, success } from './errors.ts';
import { type VolcengineCredentials, verifySignature } from './verify.ts';

export type { VolcengineCredentials } from './verify.ts';

const VERSION = '2022-08-31';
const RESULT = /^\/volcengine\/results\/([0-9A-Za-z_-]+)\.(mp4|png)$/;

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Image models by req_key (Jimeng's text/image-to-image keys name `t2i`/`i2i`/`seedream`). */
const isImageModel = (reqKey: string): boolean => /t2i|i2i|seedream|high_aes/.test(reqKey);

export function volcengineApi(opts: { credentials?: VolcengineCredentials; tasks: TaskSim }): MockApi {
  const { tasks } = opts;
  const send = (m: MockHttp, res: Parameters<MockHandler>[1], [status, body]: [number, string]) =>
    m.sendJson(res, status, body);

  const submit = (m: MockHttp, res: Parameters<MockHandler>[1], body: Json) => {
    const reqKey = body['req_key'];
    const prompt = body['prompt'];
    if (typeof reqKey !== 'string' || reqKey === '') return send(m, res, businessError(50400, 'req_key'));
    if (typeof prompt !== 'string') return send(m, res, businessError(50400, 'prompt'));
    const task = tasks.submit(reqKey, isImageModel(reqKey) ? 'image' : 'video', prompt);
    if (!task) return send(m, res, businessError(50430));
    m.sendJson(res, 200, success({ task_id: task.id }));
  };

  const result = (m: MockHttp, res: Parameters<MockHandler>[1], body: Json) => {
    const taskId = body['task_id'];
    const reqKey = body['req_key'];
    if (typeof taskId !== 'string' || typeof reqKey !== 'string') {
      return send(m, res, businessError(50400, 'req_key and task_id'));
    }
    const task = tasks.poll(taskId);
    if (!task || task.model !== reqKey) return m.sendJson(res, 200, success({ status: 'not_found' }));
    const { phase } = tasks.phase(task);
    if (phase === 'queued') return m.sendJson(res, 200, success({ status: 'in_queue' }));
    if (phase === 'running') return m.sendJson(res, 200, success({ status: 'generating' }));
    if (phase === 'expired') return m.sendJson(res, 200, success({ status: 'expired' }));
    if (phase === 'failed' || phase === 'filtered') return send(m, res, businessError(50511));
    if (task.kind === 'video') {
      return m.sendJson(
        res,
        200,
        success({
          status: 'done',
          video_url: `${m.baseUrl()}/volcengine/results/${task.id}.mp4`,
          resp_data: '',
        }),
      );
    }
    let reqJson: unknown;
    try {
      reqJson = typeof body['req_json'] === 'string' ? JSON.parse(body['req_json']) : undefined;
    } catch {
      return send(m, res, businessError(50400, 'req_json'));
    }
    const data: Json = {
      status: 'done',
      binary_data_base64: [resultBytes(task.id, tasks.resultBytes).toString('base64')],
    };
    if (isObject(reqJson) && reqJson['return_url'] === true) {
      data['image_urls'] = [`${m.baseUrl()}/volcengine/results/${task.id}.png`];
    }
    m.sendJson(res, 200, success(data));
  };

  const api: MockHandler = (m, res, r) => {
    const action = r.query.get('Action') ?? '';
    if (opts.credentials) {
      const bad = verifySignature(r.req, r.raw, opts.credentials);
      if (bad) return send(m, res, gatewayError(bad.code, action, ...(bad.args ?? [])));
    }
    const version = r.query.get('Version') ?? '';
    if (version !== VERSION || (action !== 'CVSync2AsyncSubmitTask' && action !== 'CVSync2AsyncGetResult')) {
      return send(m, res, gatewayError('InvalidActionOrVersion', action, action, version));
    }
    if (r.badJson || !isObject(r.body)) return send(m, res, businessError(50400, 'JSON body'));
    if (action === 'CVSync2AsyncSubmitTask') submit(m, res, r.body);
    else result(m, res, r.body);
  };

  const file: MockHandler = (m, res, r) => {
    const [, id, ext] = RESULT.exec(r.path)!;
    const task = tasks.get(id!);
    if (!task || tasks.phase(task).phase !== 'done') return send(m, res, [404, '{"message":"NoSuchKey"}']);
    sendBytes(
      r.req,
      res,
      resultBytes(task.id, tasks.resultBytes),
      ext === 'mp4' ? 'video/mp4' : 'image/png',
      m.name,
    );
  };

  return {
    name: 'volcengine',
    owns: (path) => path === '/' || path.startsWith('/volcengine/'),
    match(method, path) {
      if (path === '/' && method === 'POST') return api;
      if (method === 'GET' && RESULT.test(path)) return file;
      return undefined;
    },
    // The signature covers the whole request: checked by the handler itself against `credentials`.
    authorized: () => true,
    sendError(m, res, status, message, o) {
      const code = status === 429 ? 50429 : status >= 500 ? 50500 : 50400;
      const [, body] = businessError(code, message);
      m.sendJson(res, status, body, o?.headers);
    },
  };
}
