// Azure OpenAI: OpenAI's bodies and streams behind Azure's URLs and `api-key` header.
// - v1 API: /openai/v1/chat/completions (model = deployment name in the body);
// - dated API: /openai/deployments/{deployment}/chat/completions?api-version=2024-10-21 (the
//   deployment in the path; no api-version -> 404, as Azure answers).
// An unknown key gets Azure's own 401 body; other errors are OpenAI-shaped, as Azure sends them.
import type { ServerResponse } from 'node:http';
import type { MockApi, MockHandler, MockRequest } from '../api.ts';
import type { MockHttp } from '../http.ts';
import { speech, transcriptions, translations } from '../openai/audio.ts';
import { chatCompletions } from '../openai/chat.ts';
import { completions } from '../openai/completions.ts';
import { embeddings } from '../openai/embeddings.ts';
import { checkJsonBody, sendOpenAIError, statusError } from '../openai/errors.ts';
import { imageEdits } from '../openai/image-edits.ts';
import { images } from '../openai/images.ts';
import { type FormOp, form } from '../openai/index.ts';

const OPERATIONS: Record<string, typeof chatCompletions> = {
  'chat/completions': chatCompletions,
  completions,
  embeddings,
  'images/generations': images,
  'audio/speech': speech,
};

/** Uploads (multipart): Azure serves audio and image edits, not variations. */
const FORM_OPERATIONS: Record<string, FormOp> = {
  'audio/transcriptions': transcriptions,
  'audio/translations': translations,
  'images/edits': imageEdits,
};
const deploymentOf = (r: MockRequest) => decodeURIComponent(DEPLOYMENT.exec(r.path)![1]!);
const FORMS_V1 = new Map(Object.entries(FORM_OPERATIONS).map(([k, op]) => [k, form(op)]));
const FORMS_DEPLOYMENT = new Map(
  Object.entries(FORM_OPERATIONS).map(([k, op]): [string, MockHandler] => {
    const h = form(op, false, deploymentOf);
    return [
      k,
      (m, res, r) =>
        r.query.get('api-version') ? h(m, res, r) : azureError(m, res, 404, '404', 'Resource not found'),
    ];
  }),
);

const V1 = /^\/openai\/v1\/(.+)$/;
const DEPLOYMENT = /^\/openai\/deployments\/([^/]+)\/(.+)$/;

function azureError(m: MockHttp, res: ServerResponse, status: number, code: string, message: string) {
  m.sendJson(res, status, JSON.stringify({ error: { code, message } }));
}

const v1: MockHandler = (m, res, r) => {
  const op = OPERATIONS[V1.exec(r.path)![1]!]!;
  if (!checkJsonBody(m, res, r.body, r.badJson)) return;
  if (typeof (r.body as { model?: unknown }).model !== 'string') {
    return sendOpenAIError(m, res, 400, 'model is required.', 'invalid_request_error', 'missing_model');
  }
  op(m, res, r);
};

const deployment: MockHandler = (m, res, r: MockRequest) => {
  const [, name, opPath] = DEPLOYMENT.exec(r.path)!;
  if (!r.query.get('api-version')) return azureError(m, res, 404, '404', 'Resource not found');
  if (!checkJsonBody(m, res, r.body, r.badJson)) return;
  OPERATIONS[opPath!]!(m, res, r, decodeURIComponent(name!));
};

export const azureOpenAIApi: MockApi = {
  name: 'azure-openai',
  owns: (path) => path.startsWith('/openai/'),
  match(method, path) {
    if (method !== 'POST') return undefined;
    const a = V1.exec(path);
    if (a) return OPERATIONS[a[1]!] ? v1 : FORMS_V1.get(a[1]!);
    const d = DEPLOYMENT.exec(path);
    if (!d) return undefined;
    return OPERATIONS[d[2]!] ? deployment : FORMS_DEPLOYMENT.get(d[2]!);
  },
  authorized: (r, apiKey) => r.req.headers['api-key'] === apiKey,
  sendError(m, res, status, message, opts) {
    if (status === 401 && opts?.code === 'invalid_api_key') {
      const text =
        'Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource.';
      return azureError(m, res, 401, '401', text);
    }
    if (status === 404 && opts?.code === 'unknown_url')
      return azureError(m, res, 404, '404', 'Resource not found');
    const [fallback, type, code] = statusError(status);
    sendOpenAIError(m, res, status, message ?? fallback, type, opts?.code ?? code, opts?.headers);
  },
};
