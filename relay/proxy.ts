import { once } from 'node:events';
import type { ServerResponse } from 'node:http';
import type { FastifyBaseLogger, FastifyReply, FastifyRequest } from 'fastify';
import type { Dispatcher } from 'undici';
import type { RequestRecord, RequestRecorder } from '../core/accounting.ts';
import type { ConcurrencyGate } from '../core/concurrency.ts';
import type { Limiter } from '../core/ratelimit/limiter.ts';
import { type Candidate, orderCandidates } from '../core/selection.ts';
import type { SpendRecord } from '../core/spend.ts';
import type { StateStore } from '../core/state/store.ts';
import { parseRetryAfter } from '../core/status-match.ts';
import { BodyTail, costOf, estimatedUsage, type Usage, usageFromJsonBody } from '../core/usage.ts';
import type { ChannelStats } from './channel-stats.ts';
import { badRequest, RelayError } from './errors.ts';
import { clientHeaders, upstreamHeaders } from './headers.ts';
import { admitRequest, type RequestLimits } from './limits.ts';
import type { RelayMetrics } from './metrics.ts';
import { channelPermit } from './permits.ts';
import type { RelayState } from './relay-state.ts';
import type { ChannelRuntime, Runtime } from './runtime.ts';
import { SseTap, sseErrorEvent } from './sse.ts';
import { traceIdOf } from './tracing.ts';
import {
  errCode,
  type FailureReason,
  fitsEndpoint,
  isEventStream,
  isJson,
  upstreamFault,
} from './upstream-fault.ts';

/**
 * The request path after auth: select -> forward (with failover) -> respond -> account.
 * Failover happens only before the first byte reaches the client; after that a failure ends the
 * stream with an error event.
 */

export interface RelayRoute {
  /** Public path, also the `route` metric label. */
  path: string;
  /** Path under the channel's baseURL. */
  upstreamPath: string;
  /** Whether `stream: true` is meaningful (and usage can be requested for it). */
  streamable: boolean;
}

export interface ProxyDeps {
  state: RelayState;
  store: StateStore;
  gate: ConcurrencyGate;
  metrics: RelayMetrics;
  log: FastifyBaseLogger;
  maxAttempts: number;
  recorder?: RequestRecorder;
  /** RateLimitPolicy counters: in-process, or fleet-wide in Redis. */
  limiter: Limiter;
  /** Per-channel figures for pod reports. */
  stats?: ChannelStats;
}

interface Failure {
  reason: FailureReason;
  channel: string;
  status?: number;
  retryAfterMs?: number;
  /** What went wrong, for the client's error and the channel's lastError. */
  message?: string;
}

// How the attempt's answer ended, for the channel's health: only a completed answer is a success.
type Outcome = 'completed' | 'failed' | 'client_gone';
// A lease outlives the request's total timeout only by this margin; a crashed holder's permit
// comes back by itself.
const LEASE_MARGIN_MS = 5_000;

export async function relay(deps: ProxyDeps, route: RelayRoute, req: FastifyRequest, reply: FastifyReply) {
  const started = req.receivedAt;
  const body = req.body as Record<string, unknown> | null;
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw badRequest('invalid_body', 'the request body must be a JSON object');
  }
  const model = body.model;
  if (typeof model !== 'string' || model === '') {
    throw badRequest('missing_model', 'model is required and must be a string', 'model');
  }
  if (body.stream !== undefined && body.stream !== null && typeof body.stream !== 'boolean') {
    throw badRequest('invalid_type', 'stream must be a boolean', 'stream');
  }
  const runtime = deps.state.runtime;
  if (!runtime)
    throw new RelayError(503, 'server_error', 'config_not_loaded', 'the relay has no config loaded yet');
  const tiers = runtime.index.get(model);
  if (!tiers) {
    throw new RelayError(
      404,
      'invalid_request_error',
      'model_not_found',
      `The model '${model}' does not exist or is not served by this relay; GET /v1/models lists the models`,
      { param: 'model' },
    );
  }

  // limits: every matching RateLimitPolicy in one limiter call; a rejection is a 429.
  const rl = await admitRequest(deps, runtime.config, route.path, model, body, req, reply);
  try {
    await forward(deps, route, req, reply, { started, body, model, runtime, tiers, rl });
  } finally {
    rl?.finish(); // charge real usage, release permits
  }
}

interface ForwardCtx {
  started: number;
  body: Record<string, unknown>;
  model: string;
  runtime: Runtime;
  tiers: Candidate[][];
  rl: RequestLimits | undefined;
}

async function forward(
  deps: ProxyDeps,
  route: RelayRoute,
  req: FastifyRequest,
  reply: FastifyReply,
  { started, body, model, runtime, tiers, rl }: ForwardCtx,
) {
  const now = Date.now();
  const available = (c: Candidate) => deps.store.cooldownUntil(c.channel.id) <= now;
  const candidates = orderCandidates(tiers, available, deps.maxAttempts);
  if (candidates.length === 0) throw noChannel(deps, model, tiers.flat(), now);

  const stream = route.streamable && body.stream === true;
  const streamOptions = body.stream_options as { include_usage?: unknown } | undefined;
  // Ask upstream for stream usage when the client did not, and hide that chunk from the client.
  const injectUsage = stream && streamOptions?.include_usage !== true;
  const bodies = new Map<string, string>();
  const bodyFor = (upstreamName: string) => {
    let b = bodies.get(upstreamName);
    if (b === undefined) {
      const out: Record<string, unknown> = { ...body, model: upstreamName };
      if (injectUsage) out.stream_options = { ...(streamOptions ?? {}), include_usage: true };
      b = JSON.stringify(out);
      bodies.set(upstreamName, b);
    }
    return b;
  };

  let clientGone = false;
  const raw = reply.raw;
  const inflightAbort = new Set<AbortController>();
  const gone = new AbortController(); // takes the request out of permit queues
  raw.on('close', () => {
    if (raw.writableFinished) return;
    clientGone = true;
    gone.abort();
    for (const ac of inflightAbort) ac.abort();
  });

  let upstreamMs = 0;
  let attempts = 0;
  let lastFailure: Failure | undefined;
  let relayFault: string | undefined;
  let busy = 0;

  for (let i = 0; i < candidates.length; i++) {
    let cand = candidates[i]!;
    let id = cand.channel.id;
    // The config may have been swapped since the request began: use the channel's live pool
    // (a retired one is closing), and skip a channel the new config removed.
    const live = () => (deps.state.runtime ?? runtime).channels.get(id);
    let ch = live();
    if (!ch) continue;
    if (i > 0 && deps.store.cooldownUntil(id) > Date.now()) continue; // cooled down meanwhile
    // Channel policies limit what the fleet sends to this upstream: a refusal skips it like a busy one.
    if (rl && !(await rl.admitChannel(id))) continue;

    let lease: Awaited<ReturnType<StateStore['tryAcquire']>> = null;
    const limits = ch.config.limits;
    if (limits.maxConcurrent !== null) {
      const r = await channelPermit(deps.gate, candidates, i, {
        signal: gone.signal,
        available,
        leaseMarginMs: LEASE_MARGIN_MS,
      });
      if (!r.ok) {
        rl?.endAttempt(false);
        if (r.reason === 'aborted') return; // the client left the queue
        busy++;
        // busy: not queued, an unlimited peer of the tier comes next.
        if (r.reason !== 'busy') deps.metrics.queueRejections.inc({ channel: id, reason: r.reason });
        continue;
      }
      lease = r.lease;
      if (candidates[i] !== cand) {
        // A peer of this tier had room first: it serves this attempt.
        rl?.endAttempt(false);
        cand = candidates[i]!;
        id = cand.channel.id;
        if (rl && !(await rl.admitChannel(id))) {
          void deps.gate.release(lease);
          continue;
        }
      }
    }
    if (clientGone) {
      if (lease) void deps.gate.release(lease);
      rl?.endAttempt(false);
      return;
    }
    ch = live(); // again: waiting for a permit may have spanned a config change
    if (!ch) {
      if (lease) void deps.gate.release(lease);
      rl?.endAttempt(false);
      continue;
    }

    attempts++;
    // tracing: one span per attempt (undefined when tracing is off)
    const span = req.trace?.attempt({
      channel: id,
      provider: ch.config.provider,
      attempt: attempts,
      upstreamModel: cand.model.upstreamName,
    });
    const ac = new AbortController();
    inflightAbort.add(ac);
    let timedOut = false;
    const totalTimer = setTimeout(() => {
      timedOut = true;
      ac.abort();
    }, ch.config.timeouts.totalMs);
    const done = () => {
      clearTimeout(totalTimer);
      inflightAbort.delete(ac);
      deps.metrics.inflight.dec({ channel: id });
      if (lease) void deps.gate.release(lease).catch(() => {});
      rl?.endAttempt();
      span?.end(res?.statusCode); // tracing
    };
    deps.metrics.inflight.inc({ channel: id });

    const payload = bodyFor(cand.model.upstreamName);
    const sentAt = Date.now();
    const t1 = performance.now();
    let res: Dispatcher.ResponseData | undefined;
    const headers = upstreamHeaders(req.headers, ch.authorization, Buffer.byteLength(payload));
    span?.inject(headers); // tracing: traceparent of this attempt
    try {
      res = await ch.dispatcher.request({
        origin: ch.origin,
        path: ch.basePath + route.upstreamPath,
        method: 'POST',
        headers,
        body: payload,
        signal: ac.signal,
        headersTimeout: ch.config.timeouts.firstByteMs,
        bodyTimeout: ch.config.timeouts.firstByteMs,
      });
    } catch (err) {
      upstreamMs += performance.now() - t1;
      span?.fail({ reason: timedOut ? 'timeout' : (upstreamFault(err) ?? 'relay_error') }); // tracing
      done();
      if (clientGone) return;
      const reason = timedOut ? 'timeout' : upstreamFault(err);
      if (reason === undefined) {
        // Raised on the relay's side before the upstream saw anything: not the channel's failure.
        relayFault = errCode(err);
        deps.log.error({ err, channel: id }, 'relay could not send the request upstream');
        continue;
      }
      lastFailure = { reason, channel: id };
      failed(deps, ch, lastFailure, i < candidates.length - 1);
      continue;
    }
    const dt = performance.now() - t1;
    upstreamMs += dt;
    deps.metrics.upstreamDuration.observe({ channel: id, model }, dt / 1000);

    if (ch.isFailure(res.statusCode)) {
      const retryAfterMs = parseRetryAfter(res.headers['retry-after']);
      await res.body.dump({ limit: 256 * 1024 }).catch(() => {});
      span?.fail({ reason: `status_${res.statusCode}`, status: res.statusCode }); // tracing
      done();
      if (clientGone) return;
      lastFailure = { reason: `status_${res.statusCode}`, channel: id, status: res.statusCode, retryAfterMs };
      failed(deps, ch, lastFailure, i < candidates.length - 1);
      continue;
    }

    const contentType = String(res.headers['content-type'] ?? '');
    if (res.statusCode >= 200 && res.statusCode < 300 && !fitsEndpoint(contentType, stream)) {
      // A 200 that is not the API's answer (an HTML error page, JSON to a stream request).
      await res.body.dump({ limit: 256 * 1024 }).catch(() => {});
      span?.fail({ reason: 'content_type', status: res.statusCode }); // tracing
      done();
      if (clientGone) return;
      lastFailure = {
        reason: 'content_type',
        channel: id,
        message: `the upstream answered ${res.statusCode} with ${contentType || 'no content type'} instead of ${stream ? 'an event stream' : 'JSON'}`,
      };
      failed(deps, ch, lastFailure, i < candidates.length - 1);
      continue;
    }

    let outcome: Outcome;
    try {
      outcome = await respond(deps, {
        req,
        reply,
        rl,
        route,
        model,
        cand,
        ch,
        res,
        stream,
        injectUsage,
        started,
        upstreamMs,
        attempts,
        requestBytes: Buffer.byteLength(payload),
        ac,
        isClientGone: () => clientGone,
        isTimedOut: () => timedOut,
      });
    } finally {
      done();
    }
    // The channel answered in full: a success for its health, even when the answer is a client
    // error. A stream counts only once it completed.
    if (outcome === 'completed') {
      void deps.store
        .recordSuccess(id, sentAt)
        .catch((e) => deps.log.warn({ err: e }, 'state store: recordSuccess failed'));
      deps.stats?.success(id, dt);
    }
    return;
  }

  if (clientGone) return;
  if (!lastFailure && busy === 0 && rl?.rejection) throw rl.rejection; // channel policies refused all
  if (!lastFailure && relayFault !== undefined) {
    throw new RelayError(
      500,
      'server_error',
      'relay_error',
      `the relay could not send the request upstream (${relayFault}); this is not the channel's fault`,
      { headers: { 'x-kuberelay-attempts': String(attempts) } },
    );
  }
  throw exhausted(deps, model, lastFailure, busy, attempts, tiers.flat(), now);
}

interface RespondCtx {
  req: FastifyRequest;
  reply: FastifyReply;
  rl: RequestLimits | undefined;
  route: RelayRoute;
  model: string;
  cand: Candidate;
  ch: ChannelRuntime;
  res: Dispatcher.ResponseData;
  stream: boolean;
  injectUsage: boolean;
  started: number;
  upstreamMs: number;
  attempts: number;
  /** Bytes of the request body sent upstream (the prompt estimate when usage is missing). */
  requestBytes: number;
  ac: AbortController;
  isClientGone: () => boolean;
  isTimedOut: () => boolean;
}

async function respond(deps: ProxyDeps, c: RespondCtx): Promise<Outcome> {
  const { reply, res, ch } = c;
  const id = ch.config.id;
  const contentType = String(res.headers['content-type'] ?? '');
  const sse = c.stream && isEventStream(contentType);
  const headers = clientHeaders(res.headers, !sse);
  headers['x-request-id'] = String(c.req.id);
  headers['x-kuberelay-channel'] = id;
  headers['x-kuberelay-attempts'] = String(c.attempts);
  const overheadMs = Math.max(0, performance.now() - c.started - c.upstreamMs);
  headers['x-kuberelay-overhead-ms'] = overheadMs.toFixed(3);
  if (c.rl) Object.assign(headers, c.rl.headers);
  deps.metrics.overhead.observe({ route: c.route.path }, overheadMs / 1000);

  reply.hijack();
  const raw = reply.raw;
  raw.writeHead(res.statusCode, headers);

  const answered = res.statusCode >= 200 && res.statusCode < 300;
  let usage: Usage | undefined;
  let streamError: string | undefined;
  let ttftMs: number | undefined;
  // Set while the relay waits for a slow client to read: a timeout then is not the upstream's.
  let waitingForClient = false;
  const clientDrained = async () => {
    waitingForClient = true;
    await drained(raw, c.ac.signal);
    waitingForClient = false;
  };
  const upstreamsFault = () => !(waitingForClient && c.isTimedOut());
  if (sse) {
    const tap = new SseTap(c.injectUsage);
    let first = true;
    const write = async (out: string) => {
      if (out === '') return;
      if (first) {
        first = false;
        ttftMs = performance.now() - c.started;
        deps.metrics.ttft.observe({ channel: id, model: c.model }, ttftMs / 1000);
        c.req.trace?.firstToken();
      }
      if (!raw.write(out)) await clientDrained();
    };
    try {
      for await (const chunk of res.body) {
        c.req.trace?.peek(chunk as Buffer); // tracing: gen_ai.response.model
        await write(tap.push(chunk as Buffer));
        // [DONE] ends the answer, whether or not the upstream closes its side (leaving the loop
        // destroys the body, and with it a connection the upstream kept open).
        if (tap.sawDone) {
          res.body.on('error', () => {}); // the abort that leaving causes is expected
          break;
        }
      }
      if (!tap.sawDone) await write(tap.flush());
      if (!tap.sawDone && answered) streamError = 'the upstream stream ended without [DONE]';
    } catch (err) {
      if (!c.isClientGone()) {
        streamError = !c.isTimedOut()
          ? `the upstream stream failed: ${errCode(err)}`
          : waitingForClient
            ? 'the total timeout passed while the client was reading slowly'
            : 'the upstream timed out mid-stream';
      }
    }
    usage = tap.usage;
    if (!usage && (answered || c.isClientGone() || streamError)) {
      // Bill what was streamed: the prompt plus the content events the client received.
      usage = estimatedUsage(c.requestBytes, tap.contentEvents);
    }
    if (streamError) {
      if (upstreamsFault()) failed(deps, ch, { reason: 'stream', channel: id, message: streamError }, false);
      if (!c.isClientGone()) raw.write(sseErrorEvent(streamError, 'upstream_stream_interrupted'));
    }
    if (!c.isClientGone()) raw.end();
  } else {
    // Usage comes last in OpenAI-style bodies: keep only the tail, whatever the body's size.
    const tail = new BodyTail();
    try {
      for await (const chunk of res.body) {
        const b = chunk as Buffer;
        c.req.trace?.peek(b); // tracing: gen_ai.response.model
        tail.push(b);
        if (!raw.write(b)) await clientDrained();
      }
      raw.end();
    } catch (err) {
      // Headers (with a Content-Length) are out: the only honest signal left is a cut connection.
      if (!c.isClientGone()) {
        streamError = errCode(err);
        if (upstreamsFault()) failed(deps, ch, { reason: 'stream', channel: id }, false);
        raw.destroy();
      }
    }
    if (!streamError && tail.size > 0 && isJson(contentType)) {
      const { tail: bytes, whole } = tail.bytes();
      usage = usageFromJsonBody(bytes, whole);
    }
    // A success without reported usage (e.g. images) is still charged: the prompt estimate,
    // perRequest and perSecond.
    if (!usage && answered && !streamError) usage = estimatedUsage(c.requestBytes, 0);
  }

  const durationMs = performance.now() - c.started;
  const code = c.isClientGone() ? '499' : String(res.statusCode);
  deps.metrics.requests.inc({ route: c.route.path, model: c.model, channel: id, code });
  deps.metrics.requestDuration.observe({ route: c.route.path, model: c.model }, durationMs / 1000);
  const cost = usage ? account(deps, c, usage, durationMs) : 0;
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
    traceId: c.req.trace?.traceId ?? traceIdOf(c.req.headers.traceparent),
  };
  c.req.trace?.finish(record);
  deps.recorder?.record(record);
  if (c.isClientGone()) return 'client_gone';
  return streamError === undefined ? 'completed' : 'failed';
}

/** Metrics and spend counters for one answered request; returns its cost. */
function account(deps: ProxyDeps, c: RespondCtx, usage: Usage, durationMs: number): number {
  const id = c.ch.config.id;
  const labels = { channel: id, model: c.model };
  const m = deps.metrics.tokens;
  if (usage.promptTokens > 0) m.inc({ ...labels, type: 'prompt' }, usage.promptTokens);
  if (usage.completionTokens > 0) m.inc({ ...labels, type: 'completion' }, usage.completionTokens);
  if (usage.cachedTokens > 0) m.inc({ ...labels, type: 'cached' }, usage.cachedTokens);
  if (usage.cacheWriteTokens > 0) m.inc({ ...labels, type: 'cache_write' }, usage.cacheWriteTokens);
  if (usage.reasoningTokens > 0) m.inc({ ...labels, type: 'reasoning' }, usage.reasoningTokens);
  const cost = costOf(usage, c.cand.model.pricing, durationMs);
  if (cost > 0) deps.metrics.cost.inc(labels, cost);
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

function failed(deps: ProxyDeps, ch: ChannelRuntime, f: Failure, willFailover: boolean) {
  const id = ch.config.id;
  deps.metrics.upstreamErrors.inc({ channel: id, reason: f.reason });
  if (willFailover) deps.metrics.failovers.inc({ channel: id, reason: f.reason });
  deps.stats?.failure(id, f.reason, failureMessage(f));
  const wasCooling = deps.store.cooldownUntil(id) > Date.now();
  deps.store
    .recordFailure(id, ch.config.cooldown, f.retryAfterMs)
    .then((h) => {
      if (!wasCooling && h.cooldownUntil > Date.now()) {
        deps.metrics.cooldowns.inc({ channel: id });
        deps.log.warn(
          { channel: id, until: new Date(h.cooldownUntil).toISOString(), reason: f.reason },
          'channel cooling down',
        );
      }
    })
    .catch((err) => deps.log.warn({ err }, 'state store: recordFailure failed'));
}

function failureMessage(f: Failure): string {
  if (f.message !== undefined) return f.message;
  if (f.status !== undefined) return `the upstream answered ${f.status}`;
  if (f.reason === 'stream') return 'the response stream broke off';
  return `the upstream could not be reached (${f.reason})`;
}

function noChannel(deps: ProxyDeps, model: string, all: Candidate[], now: number): RelayError {
  const until = Math.min(...all.map((c) => deps.store.cooldownUntil(c.channel.id)).filter((u) => u > now));
  const headers: Record<string, string> = {};
  if (Number.isFinite(until)) headers['retry-after'] = String(Math.max(1, Math.ceil((until - now) / 1000)));
  return new RelayError(
    503,
    'server_error',
    'no_channel_available',
    `no channel is available for model '${model}': every channel serving it is cooling down`,
    { headers },
  );
}

function exhausted(
  deps: ProxyDeps,
  model: string,
  last: Failure | undefined,
  busy: number,
  attempts: number,
  all: Candidate[],
  now: number,
): RelayError {
  const headers: Record<string, string> = { 'x-kuberelay-attempts': String(attempts) };
  if (!last) {
    if (busy > 0) {
      return new RelayError(
        503,
        'server_error',
        'channel_busy',
        `every channel for model '${model}' is at its concurrency limit and its queue is full or timed out`,
        { headers: { ...headers, 'retry-after': '1' } },
      );
    }
    return noChannel(deps, model, all, now);
  }
  const tried = `${attempts} attempt${attempts === 1 ? '' : 's'}`;
  if (last.status === 429) {
    const retry = last.retryAfterMs !== undefined ? Math.max(1, Math.ceil(last.retryAfterMs / 1000)) : 1;
    return new RelayError(
      429,
      'rate_limit_error',
      'upstream_rate_limited',
      `upstream rate limit reached for model '${model}' (${tried}, last channel ${last.channel})`,
      { headers: { ...headers, 'retry-after': String(retry) } },
    );
  }
  if (last.reason === 'timeout' || last.status === 408) {
    return new RelayError(
      504,
      'upstream_error',
      'upstream_timeout',
      `the upstream timed out for model '${model}' (${tried}, last channel ${last.channel})`,
      { headers },
    );
  }
  const what =
    last.status === 401 || last.status === 403
      ? 'the upstream refused the channel credential'
      : failureMessage(last);
  return new RelayError(
    502,
    'upstream_error',
    'upstream_error',
    `${what} for model '${model}' (${tried}, last channel ${last.channel})`,
    { headers },
  );
}

function drained(raw: ServerResponse, signal: AbortSignal): Promise<unknown> {
  return once(raw, 'drain', { signal });
}
