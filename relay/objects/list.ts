import { MAX_LIST_LIMIT, type PinnedKind, type PinnedObject } from '../../core/pins/store.ts';
import { badRequest } from '../errors.ts';
import { runtimeOf, unavailable } from './channels.ts';
import { type ObjectCall, readJson, send, sendJson } from './upstream.ts';

/**
 * `GET /v1/files` and `GET /v1/batches`: the caller key's own objects, newest first, paged with
 * `after` and `limit` (OpenAI's list shape), each as its pinned channel describes it now. An
 * object its channel no longer knows (deleted upstream) is forgotten; one on a channel that is
 * gone, or that does not answer, is left out of the page.
 */
export async function listPinned(
  call: ObjectCall,
  kind: PinnedKind,
  path: (id: string) => string,
  keep: (object: Record<string, unknown>) => boolean = () => true,
) {
  const q = call.req.query as Record<string, string | undefined>;
  const limit = q.limit === undefined ? 20 : Number(q.limit);
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIST_LIMIT) {
    throw badRequest('invalid_limit', `limit must be an integer from 1 to ${MAX_LIST_LIMIT}`, 'limit');
  }
  const query = { keyId: call.req.client.keyId, limit: limit + 1, ...(q.after ? { after: q.after } : {}) };
  let pins: PinnedObject[];
  try {
    pins = await call.deps.pins.list(kind, query);
  } catch (err) {
    call.deps.log.warn({ err, kind }, 'pin store list failed');
    throw unavailable();
  }
  const page = pins.slice(0, limit);
  const rt = runtimeOf(call.deps);
  const details = await Promise.all(
    page.map(async (p) => {
      const ch = rt.channels.get(p.channel);
      if (!ch) return undefined;
      try {
        const res = await send(call, ch, 'GET', path(p.id));
        const { json } = await readJson(res);
        if (res.statusCode === 404) await call.deps.pins.unpin(kind, p.id);
        return res.statusCode === 200 && typeof json === 'object' && json !== null
          ? (json as Record<string, unknown>)
          : undefined;
      } catch {
        return undefined; // the channel did not answer: the object stays pinned, left out here
      }
    }),
  );
  const data = details.filter((d) => d !== undefined && keep(d));
  return sendJson(call, undefined, 200, {
    object: 'list',
    data,
    first_id: data[0]?.id ?? null,
    last_id: data.at(-1)?.id ?? null,
    has_more: pins.length > limit,
  });
}
