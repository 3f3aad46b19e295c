// The Files API under /v1/files: upload (multipart: file, purpose), list (purpose, limit, order,
// after), retrieve, delete, content (the bytes as uploaded). Ids are random, as OpenAI's are, so
// two mock instances never mint the same one.
import { randomBytes } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import type { MockHandler } from '../api.ts';
import type { Json, MockHttp } from '../http.ts';
import { parseForm } from '../multipart.ts';
import { ACCOUNT_HEADERS, badRequest, sendOpenAIError } from './errors.ts';

const PURPOSES = new Set(['assistants', 'batch', 'fine-tune', 'vision', 'user_data', 'evals']);

export interface MockFile {
  id: string;
  filename: string;
  purpose: string;
  createdAt: number;
  data: Buffer;
}

/** One instance's files (batches write their output files here too). */
export class MockFileStore {
  readonly files = new Map<string, MockFile>();

  add(filename: string, purpose: string, data: Buffer, createdAt: number): MockFile {
    const f = { id: `file-${randomBytes(12).toString('hex')}`, filename, purpose, createdAt, data };
    this.files.set(f.id, f);
    return f;
  }
}

export function fileObject(f: MockFile): Json {
  return {
    id: f.id,
    object: 'file',
    bytes: f.data.length,
    created_at: f.createdAt,
    filename: f.filename,
    purpose: f.purpose,
    status: 'processed',
    expires_at: null,
    status_details: null,
  };
}

export function notFound(m: MockHttp, res: ServerResponse, what: string, id: string) {
  sendOpenAIError(m, res, 404, `No such ${what} object: ${id}`, 'invalid_request_error', null);
}

/** `{object: 'list', data, first_id, last_id, has_more}` of items newest first, paged by `after`. */
export function listPage(all: Json[], query: URLSearchParams): Json {
  let items = all;
  const after = query.get('after');
  if (after) {
    const i = items.findIndex((o) => o['id'] === after);
    items = i < 0 ? [] : items.slice(i + 1);
  }
  const limit = Math.max(1, Math.min(10_000, Number(query.get('limit') ?? 20) || 20));
  const data = items.slice(0, limit);
  return {
    object: 'list',
    data,
    first_id: data[0]?.['id'] ?? null,
    last_id: data.at(-1)?.['id'] ?? null,
    has_more: items.length > limit,
  };
}

export function filesApi(store: MockFileStore): {
  match(method: string, path: string): MockHandler | undefined;
} {
  const idOf = (path: string) => decodeURIComponent(path.split('/')[3] ?? '');

  const create: MockHandler = (m, res, r) => {
    parseForm(r).then(
      (form) => {
        const file = form.files.find((p) => p.name === 'file');
        const purpose = form.fields['purpose'];
        if (!file) return badRequest(m, res, "Missing required parameter: 'file'.");
        if (!purpose) return badRequest(m, res, "Missing required parameter: 'purpose'.");
        if (!PURPOSES.has(purpose)) return badRequest(m, res, `'${purpose}' is not a valid purpose.`);
        const f = store.add(file.filename, purpose, file.data, m.nowSec());
        m.sendJson(res, 200, JSON.stringify(fileObject(f)), ACCOUNT_HEADERS);
      },
      (err: Error) => badRequest(m, res, err.message),
    );
  };

  const list: MockHandler = (m, res, r) => {
    const purpose = r.query.get('purpose');
    const all = [...store.files.values()]
      .filter((f) => !purpose || f.purpose === purpose)
      .map(fileObject)
      .reverse();
    if (r.query.get('order') === 'asc') all.reverse();
    m.sendJson(res, 200, JSON.stringify(listPage(all, r.query)), ACCOUNT_HEADERS);
  };

  const retrieve: MockHandler = (m, res, r) => {
    const f = store.files.get(idOf(r.path));
    if (!f) return notFound(m, res, 'File', idOf(r.path));
    m.sendJson(res, 200, JSON.stringify(fileObject(f)), ACCOUNT_HEADERS);
  };

  const remove: MockHandler = (m, res, r) => {
    const id = idOf(r.path);
    if (!store.files.delete(id)) return notFound(m, res, 'File', id);
    m.sendJson(res, 200, JSON.stringify({ id, object: 'file', deleted: true }), ACCOUNT_HEADERS);
  };

  const content: MockHandler = (m, res, r) => {
    const f = store.files.get(idOf(r.path));
    if (!f) return notFound(m, res, 'File', idOf(r.path));
    res.writeHead(200, {
      'content-type': 'application/octet-stream',
      'content-length': f.data.length,
      'content-disposition': `attachment; filename="${f.filename}"`,
      'x-mock-name': m.name,
      ...ACCOUNT_HEADERS,
    });
    res.end(f.data);
  };

  return {
    match(method, path) {
      if (path === '/v1/files') return method === 'POST' ? create : method === 'GET' ? list : undefined;
      if (/^\/v1\/files\/[^/]+$/.test(path)) {
        return method === 'GET' ? retrieve : method === 'DELETE' ? remove : undefined;
      }
      if (/^\/v1\/files\/[^/]+\/content$/.test(path) && method === 'GET') return content;
      return undefined;
    },
  };
}
