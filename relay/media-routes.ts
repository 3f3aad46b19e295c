import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { NO_TOKENS, type Usage } from '../core/usage.ts';
import { RelayError } from './errors.ts';
import { formFields, type SpooledForm, spoolForm } from './multipart.ts';
import type { RelayRoute } from './proxy-deps.ts';

/**
 * Audio, image edits, moderations and rerank: OpenAI's media endpoints (and the Cohere/Jina rerank
 * shape vLLM serves). JSON ones go the chat path as they are; multipart ones are read with
 * multipart.ts into their text fields (the body the request path sees: model, limits) and the
 * spooled form, re-encoded per attempt (upstream-request.ts). Answers may be audio bytes or text
 * (`response_format: text|srt|vtt`): they stream back byte for byte with their content type.
 */
export const MEDIA_ROUTES: RelayRoute[] = [
  {
    path: '/v1/audio/transcriptions',
    operation: 'transcriptions',
    streamable: false,
    multipart: true,
    answers: 'media',
  },
  {
    path: '/v1/audio/translations',
    operation: 'translations',
    streamable: false,
    multipart: true,
    answers: 'media',
  },
  { path: '/v1/audio/speech', operation: 'speech', streamable: false, answers: 'media' },
  { path: '/v1/moderations', operation: 'moderations', streamable: false },
  { path: '/v1/images/edits', operation: 'image_edits', streamable: false, multipart: true },
  { path: '/v1/images/variations', operation: 'image_variations', streamable: false, multipart: true },
  { path: '/v1/rerank', operation: 'rerank', streamable: false },
];

const FORM = Symbol('kuberelay.form');
const CLOSED = Symbol('kuberelay.closed');

type WithForm = { [FORM]?: SpooledForm; [CLOSED]?: boolean };

/** The spooled form behind a multipart request's body (undefined for a JSON body). */
export function formOf(body: unknown): SpooledForm | undefined {
  return body !== null && typeof body === 'object' ? (body as WithForm)[FORM] : undefined;
}

/**
 * multipart/form-data, read only on routes that take it (elsewhere a 415, before a byte is read).
 * The body becomes the form's text fields, with `stream` as a boolean when it says true/false.
 */
export function installMultipartParser(app: FastifyInstance, limit: number) {
  app.addContentTypeParser('multipart/form-data', (req, payload, done) => {
    if (!(req.routeOptions.config as { multipart?: boolean } | undefined)?.multipart) {
      done(
        new RelayError(
          415,
          'invalid_request_error',
          'unsupported_media_type',
          'send the body as application/json',
        ),
      );
      return;
    }
    spoolForm(payload, req.headers, limit).then((form) => {
      const fields: Record<string, unknown> & WithForm = formFields(form);
      if (fields.stream === 'true' || fields.stream === 'false') fields.stream = fields.stream === 'true';
      Object.defineProperty(fields, FORM, { value: form, enumerable: false });
      // The client may have left while the form was read: nothing will clean up after it.
      if ((req as unknown as WithForm)[CLOSED]) void form.cleanup();
      done(null, fields);
    }, done);
  });
}

/** onRequest of a multipart route: the spooled files go when the exchange ends, however it ends. */
export async function cleanUpForm(req: FastifyRequest, reply: FastifyReply) {
  reply.raw.once('close', () => {
    (req as unknown as WithForm)[CLOSED] = true;
    const form = formOf(req.body);
    if (form) void form.cleanup();
  });
}

/** A multipart route called with JSON: a clear 415 instead of an upstream's puzzled 400. */
export function requireForm(route: RelayRoute, req: FastifyRequest) {
  if (route.multipart && !formOf(req.body)) {
    throw new RelayError(
      415,
      'invalid_request_error',
      'unsupported_media_type',
      `${route.path} takes multipart/form-data (a file upload), not ${req.headers['content-type'] ?? 'an empty body'}`,
    );
  }
}

/**
 * What a success without reported usage is billed by, when the request itself says: text to
 * speech by the characters of its `input` (OpenAI prices it so). undefined: the prompt estimate.
 */
export function requestUsage(route: RelayRoute, body: unknown): Usage | undefined {
  if (route.operation !== 'speech') return undefined;
  const input = (body as { input?: unknown } | null)?.input;
  const characters = typeof input === 'string' ? [...input].length : 0;
  return { ...NO_TOKENS, characters, estimated: false };
}
