import type { Readable } from 'node:stream';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Dispatcher } from 'undici';
import type { RequestRecord } from '../../core/accounting.ts';
import type { TokenCounts } from '../../core/usage.ts';
import { NO_TOKENS } from '../../core/usage.ts';
import { objectPathFor } from '../../providers/objects.ts';
import { RelayError } from '../errors.ts';
import { clientHeaders, TO_UPSTREAM } from '../headers.ts';
import { paced } from '../memory-pacer.ts';
import type { ProxyDeps } from '../proxy-deps.ts';
import type { ChannelRuntime } from '../runtime.ts';
import { traceIdOf } from '../tracing.ts';
import { errCode, upstreamFault } from '../upstream-fault.ts';

/**
 * One call on an object that lives upstream (files, batches): sent to one channel chosen by the
 * caller (the pinned one, or the upload's), never failed over — the object exists only there.
 * Answers are the upstream's, passed through (errors included, in OpenAI's shape); what the
 * relay adds is its headers, metrics and one request record per client request.
 */

/** One client request on the object routes: what every step needs. */
export interface ObjectCall {
  deps: ProxyDeps;
  req: FastifyRequest;
  reply: FastifyReply;
  /** The route label (`/v1/files/:file_id`): metrics and request logs. */
  route: string;
  /** The configured model name this call is accounted under, when there is one. */
  model?: string | undefined;
  /** Token usage and cost to record with this request (a completed batch's, once). */
  usage?: { tokens: TokenCounts; cost: number } | undefined;
  /** Aborted when the client leaves: its upstream calls stop too. */
  gone: AbortSignal;
}

/** The call of one client request (its upstream calls end when the client leaves). */
export function objectCall(
  deps: ProxyDeps,
  req: FastifyRequest,
  reply: FastifyReply,
  route: string,
): ObjectCall {
  const ac = new AbortController();
  reply.raw.once('close', () => {
    if (!reply.raw.writableFinished) ac.abort();
  });
  return { deps, req, reply, route, gone: ac.signal };
}

const USER_AGENT = 'kuberelay';
/** Largest JSON answer the relay reads to learn ids (a list page of 100 objects is far less). */
const MAX_JSON_BYTES = 8 * 1024 * 1024;

export interface UpstreamBody {
  stream: Readable | string;
  contentType: string;
  /** Bytes, when known (a streamed upload without a Content-Length goes chunked). */
  length?: number | undefined;
}

/** Sends `method path` to the channel; throws the client's 502/504 when it cannot be reached. */
export async function send(
  call: ObjectCall,
  ch: ChannelRuntime,
  method: Dispatcher.HttpMethod,
  path: string,
  body?: UpstreamBody,
): Promise<Dispatcher.ResponseData> {
  const at = objectPathFor(ch.config.provider);
  if (!at)
    throw new RelayError(500, 'server_error', 'relay_error', `channel ${ch.config.id} serves no files`);
  const headers: Record<string, string | string[]> = {};
  for (const name of TO_UPSTREAM) {
    const v = call.req.headers[name];
    if (v !== undefined) headers[name] = v;
  }
  headers['user-agent'] = USER_AGENT;
  Object.assign(headers, ch.headers);
  headers['accept-encoding'] = 'identity';
  if (body) {
    headers['content-type'] = body.contentType;
    const length = typeof body.stream === 'string' ? Buffer.byteLength(body.stream) : body.length;
    if (length !== undefined) headers['content-length'] = String(length);
  }
  const timeout = AbortSignal.timeout(ch.config.timeouts.totalMs);
  try {
    return await ch.dispatcher.request({
      origin: ch.origin,
      path: at(ch.target, path),
      method,
      headers,
      body: body?.stream ?? null,
      signal: AbortSignal.any([call.gone, timeout]),
      headersTimeout: ch.config.timeouts.firstByteMs,
      bodyTimeout: ch.config.timeouts.firstByteMs,
    });
  } catch (err) {
    if ((err as { code?: string }).code === 'request_too_large') throw err;
    const timedOut = timeout.aborted;
    const reason = timedOut ? 'timeout' : (upstreamFault(err) ?? errCode(err));
    throw new RelayError(
      timedOut ? 504 : 502,
      'upstream_error',
      timedOut ? 'upstream_timeout' : 'upstream_unreachable',
      `channel ${ch.config.id} did not answer (${reason}); the object lives there, so no other channel is tried`,
    );
  }
}

/** Reads a JSON answer (bounded); undefined when it is not JSON. */
export async function readJson(res: Dispatcher.ResponseData): Promise<{ text: string; json: unknown }> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of res.body) {
    size += (chunk as Buffer).length;
    if (size > MAX_JSON_BYTES) {
      res.body.destroy();
      throw new RelayError(
        502,
        'upstream_error',
        'upstream_answer_too_large',
        'the upstream answer is too large',
      );
    }
    chunks.push(chunk as Buffer);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  try {
    return { text, json: JSON.parse(text) };
  } catch {
    return { text, json: undefined };
  }
}

/** The relay's own response headers, then records the request when the response ends. */
function start(call: ObjectCall, ch: ChannelRuntime | undefined, status: number, attempts: number) {
  const { reply } = call;
  if (ch) reply.header('x-kuberelay-channel', ch.config.id);
  reply.header('x-kuberelay-attempts', String(attempts));
  const overheadMs = Math.max(0, performance.now() - call.req.receivedAt);
  reply.header('x-kuberelay-overhead-ms', overheadMs.toFixed(3));
  reply.raw.once('close', () => {
    const code = reply.raw.writableFinished ? status : 499;
    record(call, ch?.config.id, code, attempts);
  });
}

/** Sends JSON (an answer the relay read, with the upstream's headers for clients; or built from several). */
export function sendJson(
  call: ObjectCall,
  ch: ChannelRuntime | undefined,
  status: number,
  body: unknown,
  upstream?: Dispatcher.ResponseData['headers'],
) {
  start(call, ch, status, ch ? 1 : 0);
  if (upstream) call.reply.headers(clientHeaders(upstream, false));
  return call.reply
    .code(status)
    .type('application/json')
    .send(typeof body === 'string' ? body : JSON.stringify(body));
}

/** Passes the upstream answer through as it arrives (file content: bytes streamed back). */
export function sendThrough(call: ObjectCall, ch: ChannelRuntime, res: Dispatcher.ResponseData) {
  start(call, ch, res.statusCode, 1);
  call.reply.code(res.statusCode).headers(clientHeaders(res.headers, true));
  return call.reply.send(paced(res.body));
}

function record(call: ObjectCall, channel: string | undefined, status: number, attempts: number) {
  const { deps, req } = call;
  const model = call.model && deps.state.runtime?.index.has(call.model) ? call.model : 'other';
  const durationMs = performance.now() - req.receivedAt;
  deps.metrics.requests.inc({ route: call.route, model, channel: channel ?? 'none', code: String(status) });
  deps.metrics.requestDuration.observe({ route: call.route, model }, durationMs / 1000);
  const tokens = call.usage?.tokens ?? NO_TOKENS;
  const r: RequestRecord = {
    requestId: String(req.id),
    at: Date.now(),
    keyId: req.client.keyId,
    route: call.route,
    model,
    channel,
    status,
    durationMs,
    attempts,
    stream: false,
    ...tokens,
    usageSource: call.usage ? 'reported' : undefined,
    cost: call.usage?.cost ?? 0,
    errorCode: status >= 400 ? `upstream_${status}` : undefined,
    traceId: traceIdOf(req.headers.traceparent),
  };
  deps.recorder?.record(r);
}
