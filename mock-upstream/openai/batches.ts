// The Batch API under /v1/batches: create (from an uploaded `batch` file), retrieve, list, cancel.
// A batch moves validating -> in_progress -> completed on the clock (STEP_MS each), and its
// output file (one chat completion per input line, with usage) appears when it completes;
// lines for another endpoint go to an error file. Cancel: cancelling, then cancelled a step
// later. Fault: metadata {"mock_fail": "true"} makes the batch fail validation.
import { randomBytes } from 'node:crypto';
import type { MockHandler } from '../api.ts';
import { chatPromptTokens, completionText, completionTokens } from '../content.ts';
import { isObject, type Json } from '../http.ts';
import { ACCOUNT_HEADERS, badRequest, checkJsonBody } from './errors.ts';
import { listPage, type MockFileStore, notFound } from './files.ts';

export const BATCH_STEP_MS = 200;
const ENDPOINTS = new Set(['/v1/chat/completions', '/v1/embeddings', '/v1/completions', '/v1/responses']);

interface MockBatch {
  id: string;
  createdMs: number;
  endpoint: string;
  inputFileId: string;
  metadata: Json | null;
  cancelledMs?: number;
  /** Set when it completed: the outcome, computed once. */
  done?: Json;
}

export function batchesApi(files: MockFileStore): {
  match(method: string, path: string): MockHandler | undefined;
} {
  const batches = new Map<string, MockBatch>();
  const sec = (ms: number) => Math.floor(ms / 1000);

  /** Runs the batch's lines once: output and error files, counts and usage. */
  const complete = (b: MockBatch): Json => {
    const input = files.files.get(b.inputFileId)?.data.toString('utf8') ?? '';
    const out: string[] = [];
    const errors: string[] = [];
    const usage = { input_tokens: 0, output_tokens: 0 };
    let model: string | undefined;
    for (const line of input.split(/\r?\n/)) {
      if (line.trim() === '') continue;
      const req = JSON.parse(line) as { custom_id: string; url: string; body: Json };
      const id = `batch_req_${randomBytes(8).toString('hex')}`;
      if (req.url !== b.endpoint || !isObject(req.body)) {
        const error = { code: 'invalid_url', message: `url ${req.url} is not the batch's endpoint` };
        errors.push(JSON.stringify({ id, custom_id: req.custom_id, response: null, error }));
        continue;
      }
      model ??= String(req.body['model']);
      const p = chatPromptTokens(req.body['messages']);
      const n = completionTokens(req.body);
      usage.input_tokens += p;
      usage.output_tokens += n;
      const body = {
        id: `chatcmpl-${id}`,
        object: 'chat.completion',
        created: sec(Date.now()),
        model: req.body['model'],
        choices: [
          { index: 0, message: { role: 'assistant', content: completionText(n) }, finish_reason: 'stop' },
        ],
        usage: { prompt_tokens: p, completion_tokens: n, total_tokens: p + n },
      };
      out.push(
        JSON.stringify({
          id,
          custom_id: req.custom_id,
          response: { status_code: 200, request_id: id, body },
          error: null,
        }),
      );
    }
    const now = sec(Date.now());
    const jsonl = (lines: string[]) => Buffer.from(lines.map((l) => `${l}\n`).join(''));
    return {
      output_file_id:
        out.length > 0 ? files.add(`${b.id}_output.jsonl`, 'batch_output', jsonl(out), now).id : null,
      error_file_id:
        errors.length > 0 ? files.add(`${b.id}_error.jsonl`, 'batch_output', jsonl(errors), now).id : null,
      request_counts: { total: out.length + errors.length, completed: out.length, failed: errors.length },
      model: model ?? null,
      usage: {
        ...usage,
        total_tokens: usage.input_tokens + usage.output_tokens,
        input_tokens_details: { cached_tokens: 0 },
        output_tokens_details: { reasoning_tokens: 0 },
      },
    };
  };

  const objectOf = (b: MockBatch): Json => {
    const age = Date.now() - b.createdMs;
    const o: Json = {
      id: b.id,
      object: 'batch',
      endpoint: b.endpoint,
      errors: null,
      input_file_id: b.inputFileId,
      completion_window: '24h',
      status: 'validating',
      output_file_id: null,
      error_file_id: null,
      created_at: sec(b.createdMs),
      in_progress_at: null,
      expires_at: sec(b.createdMs) + 86_400,
      finalizing_at: null,
      completed_at: null,
      failed_at: null,
      expired_at: null,
      cancelling_at: null,
      cancelled_at: null,
      request_counts: { total: 0, completed: 0, failed: 0 },
      metadata: b.metadata,
    };
    if (b.metadata?.['mock_fail'] === 'true' && age >= BATCH_STEP_MS) {
      const data = [
        { code: 'invalid_json_line', message: 'mock fault: the input file is invalid', line: 1, param: null },
      ];
      return {
        ...o,
        status: 'failed',
        failed_at: sec(b.createdMs + BATCH_STEP_MS),
        errors: { object: 'list', data },
      };
    }
    if (b.cancelledMs !== undefined && !b.done) {
      const cancelled = Date.now() - b.cancelledMs >= BATCH_STEP_MS;
      return {
        ...o,
        status: cancelled ? 'cancelled' : 'cancelling',
        cancelling_at: sec(b.cancelledMs),
        cancelled_at: cancelled ? sec(b.cancelledMs + BATCH_STEP_MS) : null,
      };
    }
    if (age < BATCH_STEP_MS) return o;
    const inProgress = { ...o, status: 'in_progress', in_progress_at: sec(b.createdMs + BATCH_STEP_MS) };
    if (age < 2 * BATCH_STEP_MS) return inProgress;
    b.done ??= complete(b);
    const at = sec(b.createdMs + 2 * BATCH_STEP_MS);
    return { ...inProgress, ...b.done, status: 'completed', finalizing_at: at, completed_at: at };
  };

  const create: MockHandler = (m, res, r) => {
    if (!checkJsonBody(m, res, r.body, r.badJson)) return;
    const body = r.body as Json;
    const inputFileId = body['input_file_id'];
    const endpoint = body['endpoint'];
    if (typeof inputFileId !== 'string')
      return badRequest(m, res, "Missing required parameter: 'input_file_id'.");
    if (typeof endpoint !== 'string' || !ENDPOINTS.has(endpoint)) {
      return badRequest(m, res, `Invalid 'endpoint': expected one of ${[...ENDPOINTS].join(', ')}.`);
    }
    if (body['completion_window'] !== '24h')
      return badRequest(m, res, "Invalid 'completion_window': expected '24h'.");
    const file = files.files.get(inputFileId);
    if (!file) return notFound(m, res, 'File', inputFileId);
    if (file.purpose !== 'batch')
      return badRequest(m, res, `File ${inputFileId} has purpose '${file.purpose}', not 'batch'.`);
    const b: MockBatch = {
      id: `batch_${randomBytes(12).toString('hex')}`,
      createdMs: Date.now(),
      endpoint,
      inputFileId,
      metadata: isObject(body['metadata']) ? body['metadata'] : null,
    };
    batches.set(b.id, b);
    m.sendJson(res, 200, JSON.stringify(objectOf(b)), ACCOUNT_HEADERS);
  };

  const idOf = (path: string) => decodeURIComponent(path.split('/')[3] ?? '');
  const retrieve: MockHandler = (m, res, r) => {
    const b = batches.get(idOf(r.path));
    if (!b) return notFound(m, res, 'Batch', idOf(r.path));
    m.sendJson(res, 200, JSON.stringify(objectOf(b)), ACCOUNT_HEADERS);
  };
  const cancel: MockHandler = (m, res, r) => {
    const b = batches.get(idOf(r.path));
    if (!b) return notFound(m, res, 'Batch', idOf(r.path));
    const status = objectOf(b)['status'];
    if (status === 'completed' || status === 'failed') {
      return badRequest(m, res, `Cannot cancel a batch with status '${String(status)}'.`);
    }
    b.cancelledMs ??= Date.now();
    m.sendJson(res, 200, JSON.stringify(objectOf(b)), ACCOUNT_HEADERS);
  };
  const list: MockHandler = (m, res, r) => {
    const all = [...batches.values()].map(objectOf).reverse();
    m.sendJson(res, 200, JSON.stringify(listPage(all, r.query)), ACCOUNT_HEADERS);
  };

  return {
    match(method, path) {
      if (path === '/v1/batches') return method === 'POST' ? create : method === 'GET' ? list : undefined;
      if (/^\/v1\/batches\/[^/]+$/.test(path) && method === 'GET') return retrieve;
      if (/^\/v1\/batches\/[^/]+\/cancel$/.test(path) && method === 'POST') return cancel;
      return undefined;
    },
  };
}
