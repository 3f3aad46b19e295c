import { randomUUID } from 'node:crypto';
import Fastify, {
  type FastifyBaseLogger,
  type FastifyError,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  type FastifyServerOptions,
  type HookHandlerDoneFunction,
  LogController,
} from 'fastify';
import { fanOut, type RequestRecorder } from '../core/accounting.ts';
import { ConcurrencyGate } from '../core/concurrency.ts';
import { modelAllowed } from '../core/keys/api-key.ts';
import { MemoryPinStore } from '../core/pins/memory.ts';
import type { PinStore } from '../core/pins/store.ts';
import type { Limiter } from '../core/ratelimit/limiter.ts';
import { MemoryLimiter } from '../core/ratelimit/memory-limiter.ts';
import type { StateStore } from '../core/state/store.ts';
import type { JobPlane } from '../jobs/plane.ts';
import { DEFAULT_MAX_BODY_BYTES } from './body-limit.ts';
import type { ChannelStats } from './channel-stats.ts';
import { fromFastifyError, RelayError, sendError } from './errors.ts';
import { DEFAULT_HTTP_TIMEOUTS, type HttpTimeouts, serverOptions } from './http-timeouts.ts';
import { ANONYMOUS, type Authenticator, type ClientIdentity } from './identity.ts';
import { sendAnthropicError, speaksAnthropic } from './ingress/anthropic-errors.ts';
import { countTokens } from './ingress/count-tokens.ts';
import { messagesIngress } from './ingress/messages.ts';
import { RESPONSES_ROUTE, registerResponseObjectRoutes } from './ingress/responses/routes.ts';
import { installJsonParser } from './json-body.ts';
import { cleanUpForm, installMultipartParser, MEDIA_ROUTES, requireForm } from './media-routes.ts';
import { createRelayMetrics, type RelayMetrics } from './metrics.ts';
import { exposition } from './metrics-exposition.ts';
import { registerModelRoutes } from './models.ts';
import { registerObjectRoutes } from './objects/routes.ts';
import { OpenStreams } from './open-streams.ts';
import { type ProxyDeps, type RelayRoute, relay } from './proxy.ts';
import { RelayState } from './relay-state.ts';
import { failedRecord } from './request-log.ts';
import { lazyChildLogger } from './request-logger.ts';
import { lazySchemaCompilers } from './schema-compilers.ts';
import type { RequestTracer } from './tracing.ts';
import { registerVideoRoutes } from './videos.ts';

declare module 'fastify' {
  interface FastifyRequest {
    /** performance.now() when the request arrived: the start of the overhead clock. */
    receivedAt: number;
    /** Set by auth before the handler runs (ANONYMOUS with KUBERELAY_AUTH=none). */
    client: ClientIdentity;
  }
}

export type AuthMode = 'keys' | 'none';

export interface RelayAppOptions {
  store: StateStore;
  logger?: FastifyServerOptions['logger'];
  /** Largest accepted request body in bytes, JSON or multipart (KUBERELAY_MAX_BODY_BYTES, 32 MiB). */
  bodyLimit?: number;
  /**
   * Which proxies' X-Forwarded-For to believe for the client address (`limitBy: clientIP`):
   * Fastify's trustProxy (true, a hop count, or addresses/CIDRs). Off by default: a client could
   * otherwise pick its own bucket.
   */
  trustProxy?: boolean | number | string[];
  /** Channels tried per request at most, failover included (default 3). */
  maxAttempts?: number;
  auth?: AuthMode;
  /** Checks client keys when auth is `keys`. */
  authenticator?: Authenticator;
  metrics?: RelayMetrics;
  /** Gets every finished request (request logs, usage rollups). */
  recorder?: RequestRecorder;
  /** Whether the key/log database answered lately (readiness detail). */
  databaseUp?: () => boolean;
  /** RateLimitPolicy counters; in-process when absent. */
  limiter?: Limiter;
  /** Per-channel figures for pod reports. */
  stats?: ChannelStats;
  /** How long a client may take to send a request, and keep an idle connection (http-timeouts.ts). */
  timeouts?: Partial<HttpTimeouts>;
  /** Serve GET /metrics on this app (false when it is served on the admin port instead). */
  publicMetrics?: boolean;
  /** OpenTelemetry spans per request and attempt (tracing.ts); none when absent. */
  tracer?: RequestTracer | undefined;
  /** Which channel each upstream object (response, file, batch) lives on; in-process when absent. */
  pins?: PinStore;
  /** The async job plane (jobs/), built once the app's state exists; video routes answer 503 without it. */
  jobs?: (ctx: JobPlaneContext) => JobPlane;
}

/** What the job plane gets from the app. */
export interface JobPlaneContext {
  state: RelayState;
  metrics: RelayMetrics;
  log: FastifyBaseLogger;
  recorder: RequestRecorder | undefined;
  maxAttempts: number;
}

export interface RelayApp {
  app: FastifyInstance;
  state: RelayState;
  metrics: RelayMetrics;
  gate: ConcurrencyGate;
  /** The async job plane, when the relay has a database. */
  jobs: JobPlane | undefined;
  /** The GET /metrics handler, for the admin listener when metrics are served there. */
  serveMetrics: (req: FastifyRequest, reply: FastifyReply) => Promise<string>;
  /** Streams in progress (ended with an error event at the shutdown deadline). */
  streams: OpenStreams;
}

const ROUTES: RelayRoute[] = [
  { path: '/v1/chat/completions', operation: 'chat', streamable: true },
  { path: '/v1/completions', operation: 'completions', streamable: true },
  { path: '/v1/embeddings', operation: 'embeddings', streamable: false },
  { path: '/v1/images/generations', operation: 'images', streamable: false },
  { path: '/v1/messages', operation: 'messages', streamable: true, ingress: messagesIngress },
  {
    path: '/v1/messages/count_tokens',
    operation: 'count_tokens',
    streamable: false,
    ingress: messagesIngress,
  },
  ...MEDIA_ROUTES,
  RESPONSES_ROUTE,
];

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

export async function buildRelayApp(opts: RelayAppOptions): Promise<RelayApp> {
  const bodyLimit = opts.bodyLimit ?? DEFAULT_MAX_BODY_BYTES;
  const app = Fastify({
    logger: opts.logger ?? false,
    // Per-request log lines cost more than the relay's own work; errors are still logged.
    logController: new LogController({ disableRequestLogging: true }),
    // A request's logger is built only when something logs through it (request-logger.ts).
    ...(opts.logger ? { childLoggerFactory: lazyChildLogger } : {}),
    schemaController: lazySchemaCompilers(),
    bodyLimit,
    // A hop count means "the nearest N proxies" (as in proxy-addr, which Fastify uses).
    trustProxy: typeof opts.trustProxy === 'number' ? hopsOf(opts.trustProxy) : (opts.trustProxy ?? false),
    // Honour a caller's request id (tracing across services); otherwise mint one.
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
    },
    requestIdHeader: false,
    // A request that still arrives on an open connection while the relay drains (a client's
    // pooled connection to a pod being replaced) is served, with `Connection: close` (drain.ts).
    return503OnClosing: false,
    // Slow clients are cut in bounded time; Node's parser errors answer in the OpenAI shape.
    ...serverOptions({ ...DEFAULT_HTTP_TIMEOUTS, ...opts.timeouts }),
  });
  const metrics = opts.metrics ?? createRelayMetrics();
  const state = new RelayState(app.log, metrics);
  // A rotated key or a re-pointed channel starts with a clean record, fleet-wide: otherwise the
  // cooldown the old key earned (401s while it was wrong) would keep the fixed channel out.
  state.onEndpointChange((ids) => {
    app.log.info({ channels: ids }, 'channel key or endpoint changed: its failure record starts afresh');
    for (const id of ids) {
      void opts.store
        .resetChannel(id)
        .catch((err) => app.log.warn({ err, channel: id }, 'state store: reset failed'));
    }
  });
  const gate = new ConcurrencyGate(opts.store);
  const auth = opts.auth ?? 'keys';
  // Every finished request: attempts per request (a failover is a second one), then the recorders.
  const attempts: RequestRecorder = {
    record: (r) => {
      if (r.attempts > 0) metrics.attempts.labels(r.route).observe(r.attempts);
    },
  };
  const recorder = fanOut(attempts, opts.recorder);
  const deps: ProxyDeps = {
    state,
    store: opts.store,
    gate,
    metrics,
    log: app.log,
    maxAttempts: opts.maxAttempts ?? 3,
    recorder,
    limiter: opts.limiter ?? new MemoryLimiter(),
    stats: opts.stats,
    pins: opts.pins ?? new MemoryPinStore(),
  };
  const shared = opts.store.shared;
  if (shared) {
    metrics.registry.registerMetric(metrics.redisUp);
    metrics.registry.registerMetric(metrics.redisErrors);
    shared.onCommandError((op) => metrics.redisErrors.inc({ op }));
  }

  // The API takes JSON only; anything else is a 415 rather than a string body.
  app.removeContentTypeParser('text/plain');
  installJsonParser(app);
  installMultipartParser(app, bodyLimit);
  app.decorateRequest('receivedAt', 0);
  // Fastify refuses shared objects as decorator defaults; onRequest sets the real value.
  app.decorateRequest('client', null as unknown as ClientIdentity);
  app.decorateRequest('trace', undefined);
  app.addHook('onRequest', (req, reply, done) => {
    req.receivedAt = performance.now();
    req.client = ANONYMOUS;
    reply.header('x-request-id', req.id);
    done();
  });

  app.setErrorHandler<FastifyError>((err, req, reply) => {
    const e = fromFastifyError(err);
    if (e.statusCode >= 500) req.log.error({ err }, 'request failed');
    const route = req.routeOptions.url ?? 'other';
    const model =
      typeof (req.body as { model?: unknown } | undefined)?.model === 'string'
        ? modelLabel(deps, req)
        : 'other';
    metrics.requests.inc({ route, model, channel: 'none', code: String(e.statusCode) });
    const record = failedRecord(req, route, model, e);
    req.trace?.finish(record);
    recorder?.record(record);
    return speaksAnthropic(req) ? sendAnthropicError(reply, e) : sendError(reply, e);
  });
  app.setNotFoundHandler((req, reply) => {
    const e = new RelayError(
      404,
      'invalid_request_error',
      'not_found',
      `no route for ${req.method} ${req.url.split('?')[0]}`,
    );
    return speaksAnthropic(req) ? sendAnthropicError(reply, e) : sendError(reply, e);
  });

  // Auth runs on onRequest, before the body is read: a client without a valid key never gets the
  // relay to read or parse a body. What needs the body (the model a key may use) waits for it.
  // The hooks are callback-style and answer at once when they can (auth off, a cached key): an
  // async hook costs a promise and a tick per request even when it has nothing to wait for.
  const requireKey = (req: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction) => {
    if (auth === 'none') return done();
    const refuse = (err: unknown) => {
      // The body is left unread: close the connection after the answer instead of draining it.
      if (hasBody(req)) reply.header('connection', 'close');
      done(err as Error);
    };
    let who: ClientIdentity | Promise<ClientIdentity>;
    try {
      if (!opts.authenticator) {
        throw new RelayError(
          401,
          'authentication_error',
          'invalid_api_key',
          'no API keys exist yet: create one with `kuberelay keys create`, or set KUBERELAY_AUTH=none for local demos',
        );
      }
      who = opts.authenticator.identify(req);
    } catch (err) {
      return refuse(err);
    }
    if (!(who instanceof Promise)) {
      req.client = who;
      return done();
    }
    who.then((client) => {
      req.client = client;
      done();
    }, refuse);
  };
  /** The refusal when the client's key may not use the body's model. */
  const modelRefusal = (req: FastifyRequest): RelayError | undefined => {
    const allowed = req.client.models;
    const model = (req.body as { model?: unknown } | undefined)?.model;
    if (allowed === undefined || typeof model !== 'string' || modelAllowed({ models: allowed }, model))
      return;
    metrics.auth.inc({ result: 'model_not_allowed' });
    return new RelayError(
      403,
      'permission_error',
      'model_not_allowed',
      `API key ${req.client.keyId} may not use model '${model}'; it may use: ${allowed.join(', ')}`,
      { param: 'model' },
    );
  };
  const requireModelAllowed = (req: FastifyRequest, _reply: FastifyReply, done: HookHandlerDoneFunction) =>
    done(modelRefusal(req));

  const tracer = opts.tracer;
  const streams = new OpenStreams();
  for (const route of ROUTES) {
    const onRequest = route.multipart ? [requireKey, cleanUpForm] : requireKey;
    const config = { multipart: route.multipart === true };
    // The model check and the stream tracking run first in the handler rather than as preHandler
    // hooks: a route without any skips Fastify's hook runner (its closures and a step per hook).
    // A refusal thrown here takes the same way as a hook's: reply.send(err), the error handler.
    app.post(route.path, { onRequest, config }, (req, reply) => {
      const refused = modelRefusal(req);
      if (refused) throw refused;
      if ((req.body as { stream?: unknown } | null | undefined)?.stream === true) streams.track(reply.raw);
      requireForm(route, req);
      if (tracer) req.trace = tracer.start(req, route.path);
      if (route.operation === 'count_tokens') return countTokens(deps, route, req, reply);
      return relay(deps, route, req, reply);
    });
  }

  registerResponseObjectRoutes(deps, app, requireKey);
  registerModelRoutes(app, state, requireKey);
  registerObjectRoutes(app, deps, requireKey); // files and batches (relay/objects/)
  const jobs = opts.jobs?.({ state, metrics, log: app.log, recorder, maxAttempts: deps.maxAttempts });
  registerVideoRoutes(app, {
    plane: jobs,
    state,
    limits: deps,
    requireKey,
    requireModelAllowed,
    bodyLimit,
  });

  app.get('/healthz', async () => ({ status: 'ok' }));

  app.get('/readyz', async (_req, reply) => {
    const problems: string[] = [];
    if (state.draining) problems.push('shutting down');
    if (!state.runtime) problems.push(`no config loaded${state.lastError ? `: ${state.lastError}` : ''}`);
    const storeUp = await opts.store.ping().catch(() => false);
    // Redis away is degraded, not unready: the pod still serves (limits per onRedisUnavailable,
    // local cooldowns and permits). Failing readiness would take the whole fleet out at once.
    // The same holds for the key database: cached keys keep serving, request logs buffer.
    const away = [
      !storeUp && shared ? `redis unreachable (${shared.lastError ?? 'unknown'})` : '',
      opts.databaseUp?.() === false ? 'database unreachable' : '',
    ].filter(Boolean);
    const degraded = away.length > 0 ? `degraded: ${away.join('; ')}` : undefined;
    if (!storeUp && !shared) problems.push(`${opts.store.kind} state store unreachable`);
    if (problems.length === 0) return degraded ? { status: 'ok', message: degraded } : { status: 'ok' };
    return reply.code(503).send({ status: 'error', message: problems.join('; ') });
  });

  const serveMetrics = async (req: FastifyRequest, reply: FastifyReply) => {
    refreshGauges(deps);
    const { contentType, body } = await exposition(metrics.registry, req.headers.accept);
    reply.header('content-type', contentType);
    return body;
  };
  if (opts.publicMetrics !== false) app.get('/metrics', serveMetrics);

  app.addHook('onClose', async () => {
    await jobs?.stop();
    gate.close();
    await deps.limiter.close();
    await state.close();
  });

  return { app, state, metrics, gate, jobs, serveMetrics, streams };
}

function hasBody(req: FastifyRequest): boolean {
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

function modelLabel(deps: ProxyDeps, req: { body: unknown }): string {
  const model = (req.body as { model?: string }).model!;
  return deps.state.runtime?.index.has(model) ? model : 'other';
}

/** Gauges derived from state are computed at scrape time rather than kept up to date per request. */
function refreshGauges(deps: ProxyDeps) {
  if (deps.store.shared) deps.metrics.redisUp.set(deps.store.shared.up ? 1 : 0);
  const rt = deps.state.runtime;
  if (!rt) return;
  const now = Date.now();
  deps.metrics.channelState.reset();
  for (const c of rt.config.channels) {
    const state = c.suspend ? 'suspended' : deps.store.cooldownUntil(c.id) > now ? 'cooling_down' : 'healthy';
    for (const s of ['healthy', 'cooling_down', 'suspended']) {
      deps.metrics.channelState.set({ channel: c.id, state: s }, s === state ? 1 : 0);
    }
    deps.metrics.queueDepth.set({ channel: c.id }, deps.gate.depth(c.id));
  }
}

function hopsOf(n: number) {
  return (_address: string, hop: number) => hop < n;
}
