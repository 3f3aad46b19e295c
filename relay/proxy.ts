import type { FastifyBaseLogger, FastifyReply, FastifyRequest } from 'fastify';
import type { Dispatcher } from 'undici';
import type { RequestRecorder } from '../core/accounting.ts';
import type { ConcurrencyGate } from '../core/concurrency.ts';
import type { Limiter } from '../core/ratelimit/limiter.ts';
import { type Candidate, orderCandidates } from '../core/selection.ts';
import type { StateStore } from '../core/state/store.ts';
import { parseRetryAfter } from '../core/status-match.ts';
import { type Operation, UntranslatableError } from '../providers/contract.ts';
import type { ChannelStats } from './channel-stats.ts';
import { PassThroughStream, TranslatedStream } from './client-stream.ts';
import { badRequest, RelayError } from './errors.ts';
import { exhausted, type Failure, failed, noChannel } from './failures.ts';
import { admitRequest, type RequestLimits } from './limits.ts';
import type { RelayMetrics } from './metrics.ts';
import { channelPermit } from './permits.ts';
import { holdPreamble } from './preamble.ts';
import type { RelayState } from './relay-state.ts';
import { type Outcome, type RespondCtx, respond } from './respond.ts';
import type { ChannelRuntime, Runtime } from './runtime.ts';
import { errCode, fitsEndpoint, isEventStream, upstreamFault } from './upstream-fault.ts';
import { RequestBuilder, type UpstreamRequest } from './upstream-request.ts';

/**
 * The request path after auth: select -> forward (with failover) -> respond -> account.
 * Failover happens only before the first byte reaches the client (a stream's role-only preamble
 * is held until its first token, relay/preamble.ts); after that a failure ends the stream with
 * an error event. Which provider a channel speaks is its adapter's business (providers/): this
 * file knows none by name.
 */

export interface RelayRoute {
  /** Public path, also the `route` metric label. */
  path: string;
  /** The operation, which the channel's provider adapter turns into its own URL and body. */
  operation: Operation;
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
  const builder = new RequestBuilder(body, route.operation, stream, req.headers);
  const includeUsage = stream && !builder.injectUsage;

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
  let refusal: RelayError | undefined;
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
    const skip = () => {
      if (lease) void deps.gate.release(lease);
      rl?.endAttempt(false);
    };
    if (clientGone) return skip();
    ch = live(); // again: waiting for a permit may have spanned a config change
    if (!ch) {
      skip();
      continue;
    }
    let up: UpstreamRequest;
    try {
      up = builder.for(ch, cand.model.upstreamName);
    } catch (err) {
      // This provider cannot say what the client asked; another candidate may.
      if (!(err instanceof UntranslatableError)) throw err;
      skip();
      refusal ??= badRequest('unsupported_parameter', `${err.message} (channel ${id})`, err.field);
      continue;
    }

    attempts++;
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
    };
    deps.metrics.inflight.inc({ channel: id });
    const willFailover = i < candidates.length - 1;
    const fail = (f: Failure) => {
      lastFailure = f;
      failed(deps, ch!, f, willFailover);
    };

    const sentAt = Date.now();
    const t1 = performance.now();
    let res: Dispatcher.ResponseData;
    try {
      res = await ch.dispatcher.request({
        origin: ch.origin,
        path: up.path,
        method: 'POST',
        headers: up.headers,
        body: up.body,
        signal: ac.signal,
        headersTimeout: ch.config.timeouts.firstByteMs,
        bodyTimeout: ch.config.timeouts.firstByteMs,
      });
    } catch (err) {
      upstreamMs += performance.now() - t1;
      done();
      if (clientGone) return;
      const reason = timedOut ? 'timeout' : upstreamFault(err);
      if (reason === undefined) {
        // Raised on the relay's side before the upstream saw anything: not the channel's failure.
        relayFault = errCode(err);
        deps.log.error({ err, channel: id }, 'relay could not send the request upstream');
        continue;
      }
      fail({ reason, channel: id });
      continue;
    }
    const dt = performance.now() - t1;
    upstreamMs += dt;
    deps.metrics.upstreamDuration.observe({ channel: id, model }, dt / 1000);

    const refused = await refuseAnswer(ch, res, stream, id);
    if (refused) {
      done();
      if (clientGone) return;
      fail(refused);
      continue;
    }

    // A stream is held until its first token, so a stall before it still fails over.
    let events: RespondCtx['events'];
    if (stream && isEventStream(String(res.headers['content-type'] ?? ''))) {
      const translator = up.translator?.stream?.({ model, includeUsage });
      const cs = translator ? new TranslatedStream(translator) : new PassThroughStream(builder.injectUsage);
      const it = res.body[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
      const held = await holdPreamble(it, cs, ch.firstTokenMs, () => ac.abort());
      if (!held.ok) {
        res.body.on('error', () => {});
        res.body.destroy();
        done();
        if (clientGone) return;
        if (held.reason === 'error') {
          const reason = timedOut ? 'timeout' : (upstreamFault(held.err) ?? 'stream');
          fail({
            reason,
            channel: id,
            message: `the upstream stream failed before its first token: ${errCode(held.err)}`,
          });
        } else fail({ reason: held.reason, channel: id, message: held.message });
        continue;
      }
      events = { stream: cs, body: it, held: held.text, ended: held.ended };
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
        up,
        stream,
        events,
        started,
        upstreamMs,
        attempts,
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
  if (!lastFailure && attempts === 0 && refusal) throw refusal; // no candidate could say it
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

/**
 * An answer that fails over instead of reaching the client: a status counted by cooldown.onStatus,
 * or a 2xx that is not the API's answer (an HTML error page, JSON to a stream request).
 */
async function refuseAnswer(
  ch: ChannelRuntime,
  res: Dispatcher.ResponseData,
  stream: boolean,
  id: string,
): Promise<Failure | undefined> {
  const status = res.statusCode;
  const contentType = String(res.headers['content-type'] ?? '');
  let f: Failure | undefined;
  if (ch.isFailure(status)) {
    const retryAfterMs = parseRetryAfter(res.headers['retry-after']);
    f = { reason: `status_${status}`, channel: id, status, retryAfterMs };
  } else if (status >= 200 && status < 300 && !fitsEndpoint(contentType, stream)) {
    const what = `${contentType || 'no content type'} instead of ${stream ? 'an event stream' : 'JSON'}`;
    f = { reason: 'content_type', channel: id, message: `the upstream answered ${status} with ${what}` };
  }
  if (f) await res.body.dump({ limit: 256 * 1024 }).catch(() => {});
  return f;
}
