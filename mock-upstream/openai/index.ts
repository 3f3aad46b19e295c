// The OpenAI API under /v1: chat/completions, completions, embeddings, images/generations,
// models, files and batches; `Authorization: Bearer <key>`; OpenAI's error shape and account headers.
import type { MockApi, MockHandler } from '../api.ts';
import type { MockHttp } from '../http.ts';
import { parseForm } from '../multipart.ts';
import { speech, transcriptions, translations } from './audio.ts';
import { batchesApi } from './batches.ts';
import { chatCompletions } from './chat.ts';
import { completions } from './completions.ts';
import { embeddings } from './embeddings.ts';
import { ACCOUNT_HEADERS, checkJsonBody, sendOpenAIError, statusError } from './errors.ts';
import { filesApi, MockFileStore } from './files.ts';
import { imageEdits, imageVariations } from './image-edits.ts';
import { images } from './images.ts';
import { moderations } from './moderations.ts';
import { rerank } from './rerank.ts';

const MODEL_CREATED = 1_700_000_000;

type Post = typeof chatCompletions;

/** Wraps an operation with the JSON and `model` checks OpenAI makes first. */
function post(op: Post, needsModel = true): MockHandler {
  return (m, res, r) => {
    if (!checkJsonBody(m, res, r.body, r.badJson)) return;
    if (needsModel && typeof (r.body as { model?: unknown }).model !== 'string') {
      return sendOpenAIError(
        m,
        res,
        400,
        'You must provide a model parameter.',
        'invalid_request_error',
        'missing_model',
      );
    }
    op(m, res, r);
  };
}

export type FormOp = typeof transcriptions;

/** Wraps an upload operation: a multipart form with a `model` field (OpenAI's checks first). */
export function form(
  op: FormOp,
  needsModel = true,
  deployment?: (r: Parameters<MockHandler>[2]) => string,
): MockHandler {
  return (m, res, r) => {
    parseForm(r).then(
      (f) => {
        const dep = deployment?.(r);
        if (needsModel && dep === undefined && typeof f.fields.model !== 'string') {
          return sendOpenAIError(
            m,
            res,
            400,
            'You must provide a model parameter.',
            'invalid_request_error',
            'missing_model',
          );
        }
        op(m, res, f, dep);
      },
      (err: Error) =>
        sendOpenAIError(
          m,
          res,
          400,
          `Could not parse multipart form: ${err.message}`,
          'invalid_request_error',
          null,
        ),
    );
  };
}

const POSTS: Record<string, MockHandler> = {
  '/v1/chat/completions': post(chatCompletions),
  '/v1/completions': post(completions),
  '/v1/embeddings': post(embeddings),
  '/v1/images/generations': post(images, false),
  '/v1/images/edits': form(imageEdits, false),
  '/v1/images/variations': form(imageVariations, false),
  '/v1/audio/transcriptions': form(transcriptions),
  '/v1/audio/translations': form(translations),
  '/v1/audio/speech': post(speech),
  '/v1/moderations': post(moderations, false),
  '/v1/rerank': post(rerank),
  '/rerank': post(rerank), // vLLM serves both
};

const model = (id: string) => ({ id, object: 'model', created: MODEL_CREATED, owned_by: 'kuberelay-mock' });

export function openaiApi(models: string[]): MockApi {
  const modelsJson = JSON.stringify({ object: 'list', data: models.map(model) });
  const listModels: MockHandler = (m, res) => m.sendJson(res, 200, modelsJson, ACCOUNT_HEADERS);
  const getModel: MockHandler = (m, res, r) => {
    let id = r.path.slice(11);
    try {
      id = decodeURIComponent(id);
    } catch {
      // keep the raw id
    }
    m.sendJson(res, 200, JSON.stringify(model(id)), ACCOUNT_HEADERS);
  };
  // Uploaded files and batches live as long as the instance.
  const store = new MockFileStore();
  const objects = [filesApi(store), batchesApi(store)];
  return {
    name: 'openai',
    owns: () => true, // the fallback: every other path gets OpenAI's 404
    match(method, path) {
      for (const o of objects) {
        const h = o.match(method, path);
        if (h) return h;
      }
      if (method === 'POST') return POSTS[path];
      if (method !== 'GET') return undefined;
      if (path === '/v1/models') return listModels;
      if (path.startsWith('/v1/models/') && path.length > 11) return getModel;
      return undefined;
    },
    authorized: (r, apiKey) => r.req.headers.authorization === `Bearer ${apiKey}`,
    sendError(m: MockHttp, res, status, message, opts) {
      const [fallback, type, code] = statusError(status);
      sendOpenAIError(m, res, status, message ?? fallback, type, opts?.code ?? code, opts?.headers);
    },
  };
}
