import { badRequest } from '../errors.ts';
import { batchCharge } from './billing.ts';
import { pinnedChannel, unavailable } from './channels.ts';
import { listPinned } from './list.ts';
import { type ObjectCall, readJson, send, sendJson, sendThrough } from './upstream.ts';

/**
 * OpenAI's Batch API through the relay. A batch is created on the channel its `input_file_id` is
 * pinned to (the file exists nowhere else) and pinned there itself; its output and error files
 * are pinned to the same channel when a retrieve first names them. A completed batch's usage is
 * charged once, fleet-wide, by the first retrieve that sees it (relay/objects/billing.ts).
 */

const enc = encodeURIComponent;

/** POST /v1/batches */
export async function createBatch(call: ObjectCall) {
  const body = call.req.body as Record<string, unknown> | null;
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw badRequest('invalid_body', 'the request body must be a JSON object');
  }
  const input = body.input_file_id;
  if (typeof input !== 'string' || input === '') {
    throw badRequest(
      'missing_input_file_id',
      'input_file_id is required: the id of a file uploaded with purpose batch',
      'input_file_id',
    );
  }
  const { ch, pin } = await pinnedChannel(call.deps, call.req, 'file', input, 'input_file_id');
  call.model = pin.model;
  const res = await send(call, ch, 'POST', '/batches', {
    stream: JSON.stringify(body),
    contentType: 'application/json',
  });
  const { text, json } = await readJson(res);
  const id = (json as { id?: unknown } | undefined)?.id;
  if (res.statusCode === 200 && typeof id === 'string') {
    try {
      await call.deps.pins.pin('batch', id, {
        channel: ch.config.id,
        keyId: call.req.client.keyId,
        model: pin.model,
        createdAt: Date.now(),
      });
    } catch (err) {
      call.deps.log.error({ err, channel: ch.config.id }, 'a created batch could not be pinned');
      throw unavailable();
    }
  }
  return sendJson(call, ch, res.statusCode, text, res.headers);
}

/** GET /v1/batches/{batch_id} */
export async function retrieveBatch(call: ObjectCall, id: string) {
  const { ch, pin } = await pinnedChannel(call.deps, call.req, 'batch', id);
  call.model = pin.model;
  const res = await send(call, ch, 'GET', `/batches/${enc(id)}`);
  const { text, json } = await readJson(res);
  if (res.statusCode === 200 && typeof json === 'object' && json !== null) {
    const batch = json as Record<string, unknown>;
    await pinOutputs(call, ch.config.id, pin.model, batch);
    call.usage = await batchCharge(call, ch, id, pin.model, batch);
  }
  return sendJson(call, ch, res.statusCode, text, res.headers);
}

/** GET /v1/batches */
export function listBatches(call: ObjectCall) {
  return listPinned(call, 'batch', (id) => `/batches/${enc(id)}`);
}

/** POST /v1/batches/{batch_id}/cancel */
export async function cancelBatch(call: ObjectCall, id: string) {
  const { ch, pin } = await pinnedChannel(call.deps, call.req, 'batch', id);
  call.model = pin.model;
  return sendThrough(call, ch, await send(call, ch, 'POST', `/batches/${enc(id)}/cancel`));
}

/** The batch's output and error files live on its channel: pinned there for the batch's key. */
async function pinOutputs(
  call: ObjectCall,
  channel: string,
  model: string | undefined,
  batch: Record<string, unknown>,
) {
  for (const field of ['output_file_id', 'error_file_id']) {
    const file = batch[field];
    if (typeof file !== 'string' || file === '') continue;
    // Polled often: a pin already known (a Redis read) is not written again.
    if (await call.deps.pins.lookup('file', file).catch(() => undefined)) continue;
    await call.deps.pins
      .pin('file', file, { channel, keyId: call.req.client.keyId, model, createdAt: Date.now() })
      .catch((err) => call.deps.log.warn({ err }, 'a batch output file could not be pinned'));
  }
}
