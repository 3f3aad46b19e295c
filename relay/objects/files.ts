import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { badRequest, RelayError } from '../errors.ts';
import { memoryPacer } from '../memory-pacer.ts';
import { pinnedChannel, unavailable, uploadChannel } from './channels.ts';
import { listPinned } from './list.ts';
import { type ObjectCall, readJson, send, sendJson, sendThrough } from './upstream.ts';

/**
 * OpenAI's Files API through the relay. An upload streams through to the channel as the client
 * sends it (the multipart body is never parsed or held: the relay needs nothing from it), and
 * the file id the channel answers is pinned to that channel for the caller's key; every later
 * call on the id goes there, from any pod.
 */

const enc = encodeURIComponent;

/** POST /v1/files */
export async function uploadFile(call: ObjectCall, bodyLimit: number) {
  const { req } = call;
  const contentType = req.headers['content-type'] ?? '';
  if (!/^multipart\/form-data;/i.test(contentType)) {
    throw badRequest(
      'invalid_content_type',
      'upload a file as multipart/form-data with fields file and purpose',
    );
  }
  const declared =
    req.headers['content-length'] === undefined ? undefined : Number(req.headers['content-length']);
  // The rest of the body stays unread: the connection closes after the answer.
  if (declared !== undefined && declared > bodyLimit) throw tooLarge(call, bodyLimit);
  const { ch, model } = uploadChannel(call.deps, req);
  call.model = model;
  const counted = limitBytes(bodyLimit);
  // Errors reach the upstream request. Not awaited: an upstream may answer before it read it all.
  void pipeline(req.raw, counted).catch(() => {});
  const res = await send(call, ch, 'POST', '/files', {
    stream: counted,
    contentType,
    length: declared,
  }).catch((err) => {
    throw counted.exceeded ? tooLarge(call, bodyLimit) : err;
  });
  const { text, json } = await readJson(res);
  const id = (json as { id?: unknown } | undefined)?.id;
  if (res.statusCode === 200 && typeof id === 'string') {
    try {
      await call.deps.pins.pin('file', id, {
        channel: ch.config.id,
        keyId: req.client.keyId,
        model,
        createdAt: Date.now(),
      });
    } catch (err) {
      call.deps.log.error({ err, channel: ch.config.id }, 'an uploaded file could not be pinned');
      throw unavailable();
    }
  }
  return sendJson(call, ch, res.statusCode, text, res.headers);
}

/** GET /v1/files */
export function listFiles(call: ObjectCall) {
  const purpose = (call.req.query as { purpose?: string }).purpose;
  return listPinned(
    call,
    'file',
    (id) => `/files/${enc(id)}`,
    (f) => !purpose || f.purpose === purpose,
  );
}

/** GET /v1/files/{file_id} */
export async function retrieveFile(call: ObjectCall, id: string) {
  const { ch } = await pinnedChannel(call.deps, call.req, 'file', id);
  return sendThrough(call, ch, await send(call, ch, 'GET', `/files/${enc(id)}`));
}

/** DELETE /v1/files/{file_id}: unpinned once the channel deleted it (or no longer has it). */
export async function deleteFile(call: ObjectCall, id: string) {
  const { ch } = await pinnedChannel(call.deps, call.req, 'file', id);
  const res = await send(call, ch, 'DELETE', `/files/${enc(id)}`);
  const { text } = await readJson(res);
  if (res.statusCode === 200 || res.statusCode === 404) {
    await call.deps.pins.unpin('file', id).catch((err) => call.deps.log.warn({ err }, 'unpin failed'));
  }
  return sendJson(call, ch, res.statusCode, text, res.headers);
}

/** GET /v1/files/{file_id}/content: the bytes, streamed back as they arrive. */
export async function fileContent(call: ObjectCall, id: string) {
  const { ch } = await pinnedChannel(call.deps, call.req, 'file', id);
  return sendThrough(call, ch, await send(call, ch, 'GET', `/files/${enc(id)}/content`));
}

function tooLarge(call: ObjectCall, limit: number) {
  call.reply.header('connection', 'close');
  return new RelayError(
    413,
    'invalid_request_error',
    'request_too_large',
    `the upload is larger than ${limit} bytes`,
  );
}

/** Passes bytes on and fails the stream once more than `limit` went through (a chunked upload). */
function limitBytes(limit: number): Transform & { exceeded: boolean } {
  let seen = 0;
  const t = new Transform({
    transform(chunk: Buffer, _enc, done) {
      seen += chunk.length;
      memoryPacer.add(chunk.length);
      if (seen > limit) {
        (t as Transform & { exceeded: boolean }).exceeded = true;
        done(Object.assign(new Error('upload too large'), { code: 'request_too_large' }));
      } else done(null, chunk);
    },
  }) as Transform & { exceeded: boolean };
  t.exceeded = false;
  return t;
}
