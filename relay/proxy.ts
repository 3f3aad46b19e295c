import type { FastifyReply, FastifyRequest } from 'fastify';
import { type Candidate, orderCandidates } from '../core/selection.ts';
import type { StateStore } from '../core/state/store.ts';
import { parseRetryAfter } from '../core/status-match.ts';
import { UntranslatableError } from '../providers/contract.ts';
import { PassThroughStream, TranslatedStream } from './client-stream.ts';
import { badRequest, modelNotFound, RelayError } from './errors.ts';
import { exhausted, type Failure, failed, noChannel } from './failures.ts';
import { bodyText } from './json-body.ts';
import { admitRequest, type RequestLimits } from './limits.ts';
import { channelPermit } from './permits.ts';
import { holdPreamble } from './preamble.ts';
import type { ProxyDeps, RelayRoute } from './proxy-deps.ts';
import { type Outcome, type RespondCtx, respond } from './respond.ts';
import type { ChannelRuntime, Runtime } from './runtime.ts';
import type { AttemptTrace, RequestTrace } from './tracing.ts';
import { callUpstream, type UpstreamAnswer } from './upstream-call.ts';
import { errCode, fitsEndpoint, isEventStream, isMedia, upstreamFault } from './upstream-fault.ts';
import { RequestBuilder, type UpstreamRequest } from './upstream-request.ts';

export type { ProxyDeps, RelayRoute } from './proxy-deps.ts';

/**
 * The request path after auth: select -> forward (with failover) -> respond -> account.
 * Failover happens only before the first byte reaches the client (a stream's role-only preamble
 * is held until its first token, relay/preamble.ts); after that a failure ends the stream with
 * an error event. Which provider a channel speaks is its adapter's business (providers/): this
 * file knows none by name.
 */

// A lease outlives the request's total timeout only by this margin; a crashed holder's permit
// comes back by itself.
const LEASE_MARGIN_MS = 5_000;

/**
 * Not async: the checks throw before anything is awaited (Fastify answers a throwing handler as a
 * rejected one), and forward() is the request's one async frame.
 */
export function relay(deps: ProxyDeps, route: RelayRoute, req: FastifyRequest, reply: FastifyReply) {
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
  if (!tiers) throw modelNotFound(model);
  const ctx: ForwardCtx = { started, body, model, runtime, tiers, rl: undefined };
  if (route.candidates) return forwardPicked(deps, route, req, reply, ctx);
  return forward(deps, route, req, reply, ctx);
}

/** A route that picks among the model's candidates itself (e.g. by a pinned object) first. */
async function forwardPicked(
  deps: ProxyDeps,
  route: RelayRoute,
  req: FastifyRequest,
  reply: FastifyReply,
  ctx: ForwardCtx,
) {
  const { model, body } = ctx;
  const tiers = await route.candidates!(deps, { model, body, keyId: req.client.keyId }, ctx.tiers);
  if (!tiers) throw modelNotFound(model);
  ctx.tiers = tiers;
  await forward(deps, route, req, reply, ctx);
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
  ctx: ForwardCtx,
) {
  // limits: every matching RateLimitPolicy in one limiter call; a rejection is a 429.
  const rl = await admitRequest(deps, ctx.runtime.config, route.path, ctx.model, ctx.body, req, reply);
  ctx.rl = rl;
  try {
    const now = Date.now();
    const available = (c: Candidate) => deps.store.cooldownUntil(c.channel.id) <= now;
    const candidates = orderCandidates(ctx.tiers, available, deps.maxAttempts);
    if (req.trace)
      for (const c of ctx.tiers.flat()) if (!available(c)) req.trace.skippedForCooldown(c.channel.id);
    if (candidates.length === 0) throw noChannel(deps, ctx.model, ctx.tiers.flat(), now);

    const f = new Forwarding(deps, route, req, reply, ctx, available);
    for (let i = 0; i < candidates.length; i++) {
      const slot = await takeSlot(f, candidates, i);
      if (slot === 'client_gone') return;
      if (slot && (await attempt(f, slot, i < candidates.length - 1))) return;
    }
    if (f.clientGone) return;
    throw f.finalError(now);
  } finally {
    rl?.finish(); // charge real usage, release permits
  }
}

/** One client request on its way through the candidates: what the attempts share. */
class Forwarding {
  readonly deps: ProxyDeps;
  readonly route: RelayRoute;
  readonly req: FastifyRequest;
  readonly reply: FastifyReply;
  readonly ctx: ForwardCtx;
  readonly available: (c: Candidate) => boolean;
  readonly stream: boolean;
  readonly builder: RequestBuilder;
  clientGone = false;
  /** The attempt in flight (attempts run one after another), aborted when the client leaves. */
  current: AbortController | undefined;
  /** Takes the request out of permit queues when the client leaves; made only for a queue. */
  #gone: AbortController | undefined;
  upstreamMs = 0;
  attempts = 0;
  busy = 0;
  lastFailure: Failure | undefined;
  relayFault: string | undefined;
  refusal: RelayError | undefined;

  constructor(
    deps: ProxyDeps,
    route: RelayRoute,
    req: FastifyRequest,
    reply: FastifyReply,
    ctx: ForwardCtx,
    available: (c: Candidate) => boolean,
  ) {
    this.deps = deps;
    this.route = route;
    this.req = req;
    this.reply = reply;
    this.ctx = ctx;
    this.available = available;
    this.stream = route.streamable && ctx.body.stream === true;
    this.builder = new RequestBuilder(
      ctx.body,
      route.operation,
      this.stream,
      req.headers,
      route.ingress,
      bodyText(req),
    );
    const raw = reply.raw;
    raw.on('close', () => {
      if (raw.writableFinished) return;
      this.clientGone = true;
      this.#gone?.abort();
      this.current?.abort();
    });
  }

  /**
   * The controller of the next attempt: the permit queue's when one was made (the queue has let
   * go of it once the permit is held), so a request makes one, not two.
   */
  attemptController(): AbortController {
    const ac = this.#gone;
    if (!ac || ac.signal.aborted) return new AbortController();
    this.#gone = undefined;
    return ac;
  }

  /** Aborts when the client leaves (for a permit queue; attempts have their own controller). */
  get gone(): AbortSignal {
    if (!this.#gone) {
      this.#gone = new AbortController();
      if (this.clientGone) this.#gone.abort();
    }
    return this.#gone.signal;
  }

  /** The channel as the live config has it (a retired pool is closing; a removed channel is gone). */
  live(id: string): ChannelRuntime | undefined {
    return (this.deps.state.runtime ?? this.ctx.runtime).channels.get(id);
  }

  /** The client's error when no attempt answered. */
  finalError(now: number): RelayError {
    const { rl } = this.ctx;
    if (!this.lastFailure && this.busy === 0 && rl?.rejection) return rl.rejection; // channel policies refused all
    if (!this.lastFailure && this.attempts === 0 && this.refusal) return this.refusal; // no candidate could say it
    if (!this.lastFailure && this.relayFault !== undefined) {
      return new RelayError(
        500,
        'server_error',
        'relay_error',
        `the relay could not send the request upstream (${this.relayFault}); this is not the channel's fault`,
        { headers: { 'x-kuberelay-attempts': String(this.attempts) } },
      );
    }
    const all = this.ctx.tiers.flat();
    return exhausted(this.deps, this.ctx.model, this.lastFailure, this.busy, this.attempts, all, now);
  }
}

/** A candidate admitted for one attempt: its channel, and the permits it holds. */
interface Slot {
  cand: Candidate;
  ch: ChannelRuntime;
  lease: Awaited<ReturnType<StateStore['tryAcquire']>>;
}

/**
 * Admits candidate i: not cooled down meanwhile, allowed by channel policies, and a concurrency
 * permit (a peer of its tier with room first may take its place). undefined: skip it.
 */
async function takeSlot(
  f: Forwarding,
  candidates: Candidate[],
  i: number,
): Promise<Slot | 'client_gone' | undefined> {
  const { deps } = f;
  const { rl } = f.ctx;
  let cand = candidates[i]!;
  const first = f.live(cand.channel.id);
  if (!first) return undefined;
  if (i > 0 && deps.store.cooldownUntil(cand.channel.id) > Date.now()) {
    f.req.trace?.skippedForCooldown(cand.channel.id); // tracing
    return undefined; // cooled down meanwhile
  }
  // Channel policies limit what the fleet sends to this upstream: a refusal skips it like a busy one.
  if (rl && !(await rl.admitChannel(cand.channel.id))) return undefined;

  let lease: Slot['lease'] = null;
  if (first.config.limits.maxConcurrent !== null) {
    const r = await channelPermit(deps.gate, candidates, i, {
      signal: f.gone,
      available: f.available,
      leaseMarginMs: LEASE_MARGIN_MS,
    });
    if (!r.ok) {
      rl?.endAttempt(false);
      if (r.reason === 'aborted') return 'client_gone'; // the client left the queue
      f.busy++;
      // busy: not queued, an unlimited peer of the tier comes next.
      if (r.reason !== 'busy')
        deps.metrics.queueRejections.inc({ channel: cand.channel.id, reason: r.reason });
      return undefined;
    }
    lease = r.lease;
    if (candidates[i] !== cand) {
      // A peer of this tier had room first: it serves this attempt.
      rl?.endAttempt(false);
      cand = candidates[i]!;
      if (rl && !(await rl.admitChannel(cand.channel.id))) {
        void deps.gate.release(lease);
        return undefined;
      }
    }
  }
  if (f.clientGone) {
    unadmit(f, lease);
    return 'client_gone';
  }
  const ch = f.live(cand.channel.id); // again: waiting for a permit may have spanned a config change
  if (!ch) {
    unadmit(f, lease);
    return undefined;
  }
  return { cand, ch, lease };
}

/** Gives back what takeSlot took for an attempt that will not be sent. */
function unadmit(f: Forwarding, lease: Slot['lease']) {
  if (lease) void f.deps.gate.release(lease);
  f.ctx.rl?.endAttempt(false);
}

/**
 * One attempt on an admitted channel. Returns true when the request is over (answered, or the
 * client left); false to try the next candidate.
 */
async function attempt(f: Forwarding, slot: Slot, willFailover: boolean): Promise<boolean> {
  const { deps, ctx } = f;
  const { cand, ch, lease } = slot;
  const id = ch.config.id;
  let up: UpstreamRequest;
  try {
    if (!ch.adapter.supports(f.builder.operationFor(ch))) throw unsupported(f.route, ch);
    up = f.builder.for(ch, cand.model.upstreamName);
  } catch (err) {
    // This provider cannot say what the client asked; another candidate may.
    if (!(err instanceof UntranslatableError) && !(err instanceof RelayError)) throw err;
    if (lease) void deps.gate.release(lease);
    ctx.rl?.endAttempt(false);
    f.refusal ??=
      err instanceof RelayError
        ? err
        : badRequest('unsupported_parameter', `${err.message} (channel ${id})`, err.field);
    return false;
  }

  f.attempts++;
  const a = new Attempt(f, slot, up, willFailover);
  const t1 = performance.now();
  a.span?.inject(up.headers); // tracing: traceparent of this attempt
  let res: UpstreamAnswer;
  try {
    res = await callUpstream(
      ch.dispatcher,
      {
        origin: ch.origin,
        path: up.path,
        method: 'POST',
        headers: up.headers,
        body: up.stream?.() ?? up.body,
        headersTimeout: ch.config.timeouts.firstByteMs,
        bodyTimeout: ch.config.timeouts.firstByteMs,
      },
      a.ac.signal,
    );
  } catch (err) {
    f.upstreamMs += performance.now() - t1;
    const reason = a.timedOut ? 'timeout' : upstreamFault(err);
    if (reason !== undefined) return a.fail({ reason, channel: id });
    a.done();
    if (f.clientGone) return true;
    // Raised on the relay's side before the upstream saw anything: not the channel's failure.
    f.relayFault = errCode(err);
    deps.log.error({ err, channel: id }, 'relay could not send the request upstream');
    return false;
  }
  a.res = res;
  const dt = performance.now() - t1;
  f.upstreamMs += dt;
  deps.metrics.upstreamDuration.labels(id, ctx.model).observe(dt / 1000);

  const refused = refusalOf(ch, res, f.stream, id, f.route.answers === 'media');
  if (refused) {
    await res.body.dump({ limit: 256 * 1024 });
    return a.fail(refused);
  }

  // A stream is held until its first token, so a stall before it still fails over.
  if (f.stream && isEventStream(String(res.headers['content-type'] ?? ''))) {
    const held = await holdEvents(f, ch, up, res, a.ac);
    if ('reason' in held) return a.fail({ ...held, reason: a.timedOut ? 'timeout' : held.reason });
    a.events = held;
  }

  let outcome: Outcome;
  try {
    a.upstreamMs = f.upstreamMs;
    outcome = await respond(deps, a);
  } finally {
    a.done();
  }
  // The channel answered in full: a success for its health, even when the answer is a client
  // error. A stream counts only once it completed.
  if (outcome === 'completed') {
    void deps.store
      .recordSuccess(id, a.sentAt)
      .catch((e) => deps.log.warn({ err: e }, 'state store: recordSuccess failed'));
    deps.stats?.success(id, dt);
  }
  return true;
}

/**
 * One attempt's state: its controller and total timeout, what it holds (lease, in-flight gauge,
 * span), and what relay/respond.ts reads (it is the RespondCtx). One object per attempt instead
 * of a closure per callback and a context object for respond().
 */
class Attempt implements RespondCtx {
  readonly req: FastifyRequest;
  readonly reply: FastifyReply;
  readonly rl: RequestLimits | undefined;
  readonly route: RelayRoute;
  readonly model: string;
  readonly cand: Candidate;
  readonly ch: ChannelRuntime;
  readonly up: UpstreamRequest;
  readonly stream: boolean;
  readonly started: number;
  readonly attempts: number;
  readonly ac: AbortController;
  readonly span: AttemptTrace | undefined;
  readonly sentAt = Date.now();
  // Set once the upstream answered (respond() runs only then).
  res!: UpstreamAnswer;
  events: RespondCtx['events'];
  upstreamMs = 0;
  timedOut = false;
  readonly #f: Forwarding;
  readonly #lease: Slot['lease'];
  readonly #willFailover: boolean;
  readonly #inflight: ReturnType<ProxyDeps['metrics']['inflight']['labels']>;
  readonly #timer: NodeJS.Timeout;

  constructor(f: Forwarding, slot: Slot, up: UpstreamRequest, willFailover: boolean) {
    const { ctx } = f;
    const id = slot.ch.config.id;
    this.#f = f;
    this.req = f.req;
    this.reply = f.reply;
    this.rl = ctx.rl;
    this.route = f.route;
    this.model = ctx.model;
    this.cand = slot.cand;
    this.ch = slot.ch;
    this.up = up;
    this.stream = f.stream;
    this.started = ctx.started;
    this.attempts = f.attempts;
    this.#lease = slot.lease;
    this.#willFailover = willFailover;
    // tracing: one span per attempt (undefined when tracing is off)
    this.span = f.req.trace?.attempt({
      channel: id,
      provider: slot.ch.config.provider,
      attempt: f.attempts,
      upstreamModel: slot.cand.model.upstreamName,
    });
    this.ac = f.attemptController();
    f.current = this.ac;
    this.#timer = setTimeout(totalTimeout, slot.ch.config.timeouts.totalMs, this);
    this.#inflight = f.deps.metrics.inflight.labels(id);
    this.#inflight.inc();
  }

  isClientGone(): boolean {
    return this.#f.clientGone;
  }

  isTimedOut(): boolean {
    return this.timedOut;
  }

  /** The attempt is over: its timer, gauge, lease and span. */
  done() {
    clearTimeout(this.#timer);
    if (this.#f.current === this.ac) this.#f.current = undefined;
    this.#inflight.dec();
    if (this.#lease) void this.#f.deps.gate.release(this.#lease).catch(() => {});
    this.rl?.endAttempt();
    this.span?.end(this.res?.statusCode); // tracing
  }

  /** A failed attempt; returns true when the client is gone (nothing more to try). */
  fail(failure: Failure): boolean {
    const f = this.#f;
    this.span?.fail({ reason: failure.reason, status: failure.status, message: failure.message }); // tracing
    const gone = f.clientGone;
    if (!gone) {
      f.lastFailure = failure;
      const cooling = failed(f.deps, this.ch, failure, this.#willFailover);
      this.span?.cooldown(cooling); // tracing: kuberelay.channel.cooldown
    }
    this.done();
    return gone;
  }
}

function totalTimeout(a: Attempt) {
  a.timedOut = true;
  a.ac.abort();
}

/** The channel's provider does not serve this endpoint: a 400 unless another candidate does. */
function unsupported(route: RelayRoute, ch: ChannelRuntime): RelayError {
  return badRequest(
    'unsupported_operation',
    `${route.path} is not served by provider ${ch.adapter.name} (channel ${ch.config.id}); route the model to a channel whose provider serves it`,
    'model',
  );
}

/** Reads a stream's preamble (relay/preamble.ts): the events to respond with, or why it failed. */
async function holdEvents(
  f: Forwarding,
  ch: ChannelRuntime,
  up: UpstreamRequest,
  res: UpstreamAnswer,
  ac: AbortController,
): Promise<NonNullable<RespondCtx['events']> | Failure> {
  const includeUsage = !f.builder.injectUsage;
  const translator = up.translator?.stream?.({ model: f.ctx.model, includeUsage, request: f.ctx.body });
  const stream = translator
    ? new TranslatedStream(translator)
    : (up.native?.stream() ?? new PassThroughStream(f.builder.injectUsage));
  const body = peeked(res.body, f.req.trace);
  const held = await holdPreamble(body, stream, ch.firstTokenMs, () => ac.abort());
  if (held.ok) return { stream, body, held: held.text, ended: held.ended };
  res.body.destroy();
  const channel = ch.config.id;
  if (held.reason !== 'error') return { reason: held.reason, channel, message: held.message };
  const message = `the upstream stream failed before its first token: ${errCode(held.err)}`;
  return { reason: upstreamFault(held.err) ?? 'stream', channel, message };
}

/** tracing: the span sees the stream's chunks (for gen_ai.response.model), the held ones too. */
function peeked(body: AsyncIterator<Buffer>, trace: RequestTrace | undefined): AsyncIterator<Buffer> {
  if (!trace) return body;
  return {
    next: async () => {
      const r = await body.next();
      if (!r.done) trace.peek(r.value);
      return r;
    },
  };
}

/**
 * An answer that fails over instead of reaching the client: a status counted by cooldown.onStatus,
 * or a 2xx that is not the API's answer (an HTML error page, JSON to a stream request). Not
 * async: the common answer is none, and an async function costs a promise and a frame per call.
 */
function refusalOf(
  ch: ChannelRuntime,
  res: UpstreamAnswer,
  stream: boolean,
  id: string,
  media: boolean,
): Failure | undefined {
  const status = res.statusCode;
  const contentType = String(res.headers['content-type'] ?? '');
  let f: Failure | undefined;
  if (ch.isFailure(status)) {
    const retryAfterMs = parseRetryAfter(res.headers['retry-after']);
    f = { reason: `status_${status}`, channel: id, status, retryAfterMs };
  } else if (
    status >= 200 &&
    status < 300 &&
    !(media ? isMedia(contentType) : fitsEndpoint(contentType, stream))
  ) {
    const wanted = media ? 'audio or text' : stream ? 'an event stream' : 'JSON';
    const what = `${contentType || 'no content type'} instead of ${wanted}`;
    f = { reason: 'content_type', channel: id, message: `the upstream answered ${status} with ${what}` };
  }
  return f;
}
