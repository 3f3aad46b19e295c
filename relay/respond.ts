import { once } from 'node:events';
import type { ServerResponse } from 'node:http';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { RequestRecord } from '../core/accounting.ts';
import type { Candidate } from '../core/selection.ts';
import type { SpendRecord } from '../core/spend.ts';
import { BodyTail, costOf, estimatedUsage, type Usage, usageFromJsonBody } from '../core/usage.ts';
import { type CanonicalError, genericError } from '../providers/contract.ts';
import type { ClientStream } from './client-stream.ts';
import { failed } from './failures.ts';
import { clientHeaders } from './headers.ts';
import type { RequestLimits } from './limits.ts';
import { requestUsage } from './media-routes.ts';
import { BodyHead, pinAnswer, pinsAnswer } from './pin-answer.ts';
import type { ProxyDeps, RelayRoute } from './proxy-deps.ts';
import type { ChannelRuntime } from './runtime.ts';
import { sseErrorEvent } from './sse.ts';
import { type RequestTrace, traceIdOf } from './tracing.ts';
import type { UpstreamBody } from './upstream-body.ts';
import type { UpstreamAnswer } from './upstream-call.ts';
import { errCode, isJson } from './upstream-fault.ts';
import type { UpstreamRequest } from './upstream-request.ts';

/**
 * Sends one upstream answer to the client (the attempt is committed: no failover from here) and
 * accounts for it. Pass-through bodies and streams go out as they arrive; translated ones go
 * through the provider's translator.
 */

// How the attempt's answer ended, for the channel's health: only a completed answer is a success.
export type Outcome = 'completed' | 'failed' | 'client_gone';

/**
 * After a stream's last event: how long, and how many more bytes, the relay waits for the body's
 * own end before it closes the connection. The end is normally the next packet.
 */
const AFTER_END_MS = 1_000;
const AFTER_END_BYTES = 64 * 1024;

/** The most of a translated JSON answer the relay reads (it has to parse it whole). */
const MAX_TRANSLATED_BYTES = 32 * 1024 * 1024;

export interface RespondCtx {
  req: FastifyRequest;
  reply: FastifyReply;
  rl: RequestLimits | undefined;
  route: RelayRoute;
  model: string;
  cand: Candidate;
  ch: ChannelRuntime;
  res: UpstreamAnswer;
  up: UpstreamRequest;
  /** The client asked for a stream. */
  stream: boolean;
  /** The answer's event stream, already past its preamble hold (undefined: not an event stream). */
  events?: { stream: ClientStream; body: AsyncIterator<Buffer>; held: string; ended: boolean };
  started: number;
  upstreamMs: number;
  attempts: number;
  ac: AbortController;
  isClientGone: () => boolean;
  isTimedOut: () => boolean;
}

/** What the body writers report back for accounting. */
interface Written {
  usage?: Usage;
  streamError?: string;
  ttftMs?: number;
}

export async function respond(deps: ProxyDeps, c: RespondCtx): Promise<Outcome> {
  const { res, ch } = c;
  const translated = c.up.translator !== undefined;
  const headers = clientHeaders(res.headers, !c.events && !translated);
  headers['x-request-id'] = String(c.req.id);
  headers['x-kuberelay-channel'] = ch.config.id;
  headers['x-kuberelay-attempts'] = String(c.attempts);
  const overheadMs = Math.max(0, performance.now() - c.started - c.upstreamMs);
  headers['x-kuberelay-overhead-ms'] = overheadMs.toFixed(3);
  if (c.rl) Object.assign(headers, c.rl.headers);
  deps.metrics.overhead.labels(c.route.path).observe(overheadMs / 1000);
  c.reply.hijack();

  const w = new ClientWriter(c);
  const written = c.events
    ? await sendEvents(deps, c, w, headers)
    : translated
      ? await sendTranslated(deps, c, w, headers)
      : await sendPassThrough(deps, c, w, headers);
  return account(deps, c, written);
}

/** Writes to the client, waiting for a slow one to read; remembers whether it was waiting. */
class ClientWriter {
  readonly raw: ServerResponse;
  readonly #c: RespondCtx;
  waitingForClient = false;
  constructor(c: RespondCtx) {
    this.raw = c.reply.raw;
    this.#c = c;
  }
  async write(out: string | Buffer) {
    await this.send(out);
  }
  /** write() without a promise unless the client is behind (for a body's push mode). */
  send(out: string | Buffer): Promise<void> | undefined {
    if (out.length === 0 || this.raw.write(out)) return undefined;
    return this.#drained();
  }
  async #drained() {
    this.waitingForClient = true;
    await once(this.raw, 'drain', { signal: this.#c.ac.signal });
    this.waitingForClient = false;
  }
  /** A timeout while the relay waited for a slow client to read is not the upstream's fault. */
  upstreamsFault() {
    return !(this.waitingForClient && this.#c.isTimedOut());
  }
}

async function sendEvents(
  deps: ProxyDeps,
  c: RespondCtx,
  w: ClientWriter,
  headers: Record<string, string | string[]>,
): Promise<Written> {
  const { stream, body, held } = c.events!;
  const id = c.ch.config.id;
  const answered = c.res.statusCode >= 200 && c.res.statusCode < 300;
  w.raw.writeHead(c.res.statusCode, headers);
  let streamError: string | undefined;
  let ttftMs: number | undefined;
  const write = async (out: string) => {
    if (out === '') return;
    if (ttftMs === undefined) {
      ttftMs = performance.now() - c.started;
      deps.metrics.ttft.labels(id, c.model).observe(ttftMs / 1000);
      c.req.trace?.firstToken();
    }
    c.req.trace?.output(out); // tracing: the completion, with the content flag only
    await w.write(out);
  };
  // The created object's id is pinned before the client reads it (it comes with the preamble).
  let pinning = pinsAnswer(c);
  const pin = async () => {
    if (!pinning || stream.objectId === undefined) return;
    pinning = false;
    await pinAnswer(deps, c, stream.objectId);
  };
  try {
    await pin();
    await write(held);
    if (!c.events!.ended && !stream.done) {
      for (;;) {
        const r = await body.next();
        if (r.done) {
          const rest = stream.finish();
          await pin();
          await write(rest);
          break;
        }
        const out = stream.push(r.value);
        await pin();
        await write(out);
        if (stream.done) break;
      }
    }
    // The answer's end ends it for the client, whether or not the upstream has closed its side.
    // What may follow [DONE] (the chunked terminator, normally the next packet) is read in the
    // background so the connection is reused; an upstream that keeps the socket open is let go
    // after a bound, or it would hold the channel's pool, and shutdown, for good.
    if (stream.done) void c.res.body.dump({ limit: AFTER_END_BYTES, timeoutMs: AFTER_END_MS });
    if (!stream.done && answered) {
      streamError = c.up.translator
        ? 'the upstream stream ended before its last event'
        : 'the upstream stream ended without [DONE]';
    }
  } catch (err) {
    if (!c.isClientGone()) {
      streamError = !c.isTimedOut()
        ? `the upstream stream failed: ${errCode(err)}`
        : w.waitingForClient
          ? 'the total timeout passed while the client was reading slowly'
          : 'the upstream timed out mid-stream';
    }
  }
  let usage = stream.usage();
  if (!usage && (answered || c.isClientGone() || streamError)) {
    // Bill what was streamed: the prompt plus the content events the client received.
    usage = estimatedUsage(Buffer.byteLength(c.up.body), stream.contentEvents);
  }
  if (streamError) {
    if (w.upstreamsFault())
      failed(deps, c.ch, { reason: 'stream', channel: id, message: streamError }, false);
    if (!c.isClientGone())
      w.raw.write(
        c.route.ingress?.streamError?.(streamError) ??
          sseErrorEvent(streamError, 'upstream_stream_interrupted'),
      );
  }
  if (!c.isClientGone()) w.raw.end();
  return { usage, streamError, ttftMs };
}

async function sendPassThrough(
  deps: ProxyDeps,
  c: RespondCtx,
  w: ClientWriter,
  headers: Record<string, string | string[]>,
): Promise<Written> {
  w.raw.writeHead(c.res.statusCode, headers);
  // Usage comes last in OpenAI-style bodies: keep only the tail, whatever the body's size.
  const tail = new BodyTail();
  const head = pinsAnswer(c) ? new BodyHead() : undefined;
  let streamError: string | undefined;
  try {
    // Each chunk goes to the client from undici's callback as it arrives (no await per chunk).
    const trace = c.req.trace;
    await c.res.body.consume((chunk) => {
      trace?.peek(chunk); // tracing: gen_ai.response.model
      trace?.output(chunk); // tracing: the completion, with the content flag only
      tail.push(chunk);
      head?.push(chunk);
      return w.send(chunk);
    });
    if (head) await pinAnswer(deps, c, head.id()); // before the client has the whole answer
    w.raw.end();
  } catch (err) {
    // Headers (with a Content-Length) are out: the only honest signal left is a cut connection.
    if (!c.isClientGone()) {
      streamError = errCode(err);
      if (w.upstreamsFault()) failed(deps, c.ch, { reason: 'stream', channel: c.ch.config.id }, false);
      w.raw.destroy();
    }
  }
  let usage: Usage | undefined;
  const contentType = String(c.res.headers['content-type'] ?? '');
  if (!streamError && tail.size > 0 && isJson(contentType)) {
    const { tail: bytes, whole } = tail.bytes();
    usage = usageFromJsonBody(bytes, whole, c.up.native?.usage);
  }
  // A success without reported usage (e.g. images) is still charged: the prompt estimate,
  // perRequest and perSecond.
  const answered = c.res.statusCode >= 200 && c.res.statusCode < 300;
  if (!usage && answered && !streamError && !c.up.native?.unbilled) {
    usage = requestUsage(c.route, c.req.body) ?? estimatedUsage(Buffer.byteLength(c.up.body), 0);
  }
  return { usage, streamError };
}

/** A translated JSON answer (or error) is read whole, translated and sent with its length. */
async function sendTranslated(
  deps: ProxyDeps,
  c: RespondCtx,
  w: ClientWriter,
  headers: Record<string, string | string[]>,
): Promise<Written> {
  const status = c.res.statusCode;
  const answered = status >= 200 && status < 300;
  let native: unknown;
  try {
    const text = await readBounded(c.res.body, MAX_TRANSLATED_BYTES);
    native = text === '' ? undefined : JSON.parse(text);
  } catch (err) {
    if (c.isClientGone()) return {};
    const message = `the upstream answer could not be read: ${err instanceof SyntaxError ? 'invalid JSON' : errCode(err)}`;
    if (answered) failed(deps, c.ch, { reason: 'stream', channel: c.ch.config.id, message }, false);
    const code = answered ? 502 : status;
    const error = genericError(502, message);
    const body = c.route.ingress?.errorBody?.(code, error) ?? { error };
    return sendJson(w, code, headers, body, message);
  }
  const t = c.up.translator!;
  if (!answered) {
    const error =
      c.ch.adapter.errorOf?.(status, native) ??
      openAIError(native) ??
      genericError(status, `the upstream answered ${status}`);
    const body = c.route.ingress?.errorBody?.(status, error, native) ?? { error: { param: null, ...error } };
    return sendJson(w, status, headers, body);
  }
  const request = c.req.body as Readonly<Record<string, unknown>>; // e.g. embeddings' encoding_format
  const body = t.response(native, { model: c.model, includeUsage: false, request });
  const u = t.usage(native);
  const usage = u ? { ...u, estimated: false } : estimatedUsage(Buffer.byteLength(c.up.body), 0);
  return { ...sendJson(w, status, headers, body, undefined, c.req.trace), usage };
}

/** An OpenAI-shaped upstream's own error object (a translated operation on an OpenAI-style upstream). */
function openAIError(native: unknown): CanonicalError | undefined {
  const e = (native as { error?: Partial<CanonicalError> } | null | undefined)?.error;
  if (typeof e?.message !== 'string') return undefined;
  return {
    message: e.message,
    type: String(e.type ?? 'invalid_request_error'),
    code: e.code ?? null,
    param: e.param ?? null,
  };
}

function sendJson(
  w: ClientWriter,
  status: number,
  headers: Record<string, string | string[]>,
  body: unknown,
  streamError?: string,
  trace?: RequestTrace,
): Written {
  const text = JSON.stringify(body);
  trace?.output(text); // tracing: the completion, with the content flag only
  headers['content-type'] = 'application/json';
  headers['content-length'] = String(Buffer.byteLength(text));
  w.raw.writeHead(status, headers);
  w.raw.end(text);
  return { streamError };
}

async function readBounded(body: UpstreamBody, limit: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  await body.consume((chunk) => {
    size += chunk.length;
    if (size > limit) throw Object.assign(new Error('answer too large'), { code: 'answer_too_large' });
    chunks.push(chunk);
  });
  return Buffer.concat(chunks).toString('utf8');
}

/** Metrics, spend counters and the request log for one answered attempt. */
function account(deps: ProxyDeps, c: RespondCtx, { usage, streamError, ttftMs }: Written): Outcome {
  const id = c.ch.config.id;
  const durationMs = performance.now() - c.started;
  const code = c.isClientGone() ? '499' : String(c.res.statusCode);
  deps.metrics.requests.labels(c.route.path, c.model, id, code).inc();
  const traceId = c.req.trace?.traceId;
  deps.metrics.observeRequestDuration({ route: c.route.path, model: c.model }, durationMs / 1000, traceId);
  const cost = usage ? charge(deps, c, usage, durationMs) : 0;
  const record: RequestRecord = {
    requestId: String(c.req.id),
    at: Date.now(),
    keyId: c.req.client.keyId,
    route: c.route.path,
    model: c.model,
    channel: id,
    status: Number(code),
    durationMs,
    attempts: c.attempts,
    stream: c.stream,
    promptTokens: usage?.promptTokens ?? 0,
    completionTokens: usage?.completionTokens ?? 0,
    cachedTokens: usage?.cachedTokens ?? 0,
    cacheWriteTokens: usage?.cacheWriteTokens ?? 0,
    reasoningTokens: usage?.reasoningTokens ?? 0,
    usageSource: usage === undefined ? undefined : usage.estimated ? 'estimated' : 'reported',
    cost,
    errorCode: streamError === undefined ? undefined : 'upstream_stream_interrupted',
    ttftMs,
    traceId: traceId ?? traceIdOf(c.req.headers.traceparent),
  };
  c.req.trace?.finish(record);
  deps.recorder?.record(record);
  if (c.isClientGone()) return 'client_gone';
  return streamError === undefined ? 'completed' : 'failed';
}

/** Token metrics and spend counters; returns the request's cost. */
function charge(deps: ProxyDeps, c: RespondCtx, usage: Usage, durationMs: number): number {
  const id = c.ch.config.id;
  const m = deps.metrics.tokens;
  if (usage.promptTokens > 0) m.labels(id, c.model, 'prompt').inc(usage.promptTokens);
  if (usage.completionTokens > 0) m.labels(id, c.model, 'completion').inc(usage.completionTokens);
  if (usage.cachedTokens > 0) m.labels(id, c.model, 'cached').inc(usage.cachedTokens);
  if (usage.cacheWriteTokens > 0) m.labels(id, c.model, 'cache_write').inc(usage.cacheWriteTokens);
  if (usage.reasoningTokens > 0) m.labels(id, c.model, 'reasoning').inc(usage.reasoningTokens);
  const cost = costOf(usage, c.cand.model.pricing, durationMs);
  if (cost > 0) deps.metrics.cost.labels(id, c.model).inc(cost);
  const spend: SpendRecord = {
    channelId: id,
    keyId: c.req.client.keyId,
    model: c.model,
    cost,
    promptTokens: usage.promptTokens,
    completionTokens: usage.completionTokens,
    at: Date.now(),
  };
  c.rl?.charge(spend);
  void deps.store
    .recordSpend(spend)
    .catch((err) => deps.log.warn({ err }, 'state store: recordSpend failed'));
  return cost;
}
