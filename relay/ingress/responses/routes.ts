import type { FastifyInstance, FastifyReply, FastifyRequest, onRequestHookHandler } from 'fastify';
import type { Candidate } from '../../../core/selection.ts';
import { NO_TOKENS } from '../../../core/usage.ts';
import { RelayError } from '../../errors.ts';
import { clientHeaders, upstreamHeaders } from '../../headers.ts';
import type { ProxyDeps, RelayRoute, RouteRequest } from '../../proxy-deps.ts';
import { errCode } from '../../upstream-fault.ts';
import { responsesIngress, speaksResponses } from './ingress.ts';

/**
 * The Responses API's routes. `POST /v1/responses` takes the chat request path (relay/proxy.ts)
 * with its Ingress (ingress.ts): natively to openai/azure-openai channels, whose response ids are
 * pinned to the channel that made them, translated through chat completions for the others. Calls on an id (retrieve,
 * delete, input_items, cancel) go to the pinned channel only, for the key that created it.
 */

export const RESPONSES_ROUTE: RelayRoute = {
  path: '/v1/responses',
  operation: 'responses',
  streamable: true,
  ingress: responsesIngress,
  pins: 'response',
  candidates: toPreviousResponse,
};

const notFound = (id: string) =>
  new RelayError(404, 'invalid_request_error', 'response_not_found', `Response with id '${id}' not found.`);

/**
 * A follow-up (`previous_response_id`) goes to the channel that stored the previous response: no
 * other upstream knows it. Where no candidate speaks the Responses API, the translation refuses it.
 */
async function toPreviousResponse(deps: ProxyDeps, r: RouteRequest, tiers: Candidate[][]) {
  const prev = r.body.previous_response_id;
  if (typeof prev !== 'string') return tiers;
  const channels = deps.state.runtime?.channels;
  const speaks = (c: Candidate) => {
    const ch = channels?.get(c.channel.id);
    return ch !== undefined && speaksResponses(ch.adapter);
  };
  const native = tiers.some((t) => t.some(speaks));
  if (!native) return tiers;
  const pin = await deps.pins.lookup('response', prev);
  if (!pin || pin.keyId !== r.keyId) {
    throw new RelayError(
      404,
      'invalid_request_error',
      'previous_response_not_found',
      `Previous response with id '${prev}' not found.`,
      { param: 'previous_response_id' },
    );
  }
  const narrowed = tiers
    .map((t) => t.filter((c) => c.channel.id === pin.channel))
    .filter((t) => t.length > 0);
  if (narrowed.length === 0) {
    throw new RelayError(
      404,
      'invalid_request_error',
      'previous_response_not_found',
      `Previous response '${prev}' lives on channel ${pin.channel}, which no longer serves model '${r.model}'.`,
      { param: 'previous_response_id' },
    );
  }
  return narrowed;
}

interface ObjectCall {
  method: 'GET' | 'DELETE' | 'POST';
  url: string;
  /** After `/responses/{id}` upstream. */
  suffix: string;
}

const CALLS: ObjectCall[] = [
  { method: 'GET', url: '/v1/responses/:id', suffix: '' },
  { method: 'DELETE', url: '/v1/responses/:id', suffix: '' },
  { method: 'GET', url: '/v1/responses/:id/input_items', suffix: '/input_items' },
  { method: 'POST', url: '/v1/responses/:id/cancel', suffix: '/cancel' },
];

export function registerResponseObjectRoutes(
  deps: ProxyDeps,
  app: FastifyInstance,
  auth: onRequestHookHandler,
) {
  for (const call of CALLS) {
    app.route({
      method: call.method,
      url: call.url,
      onRequest: auth,
      handler: (req, reply) => forwardPinned(deps, call, req, reply),
    });
  }
}

/** One call on a pinned response, passed through to its channel (no failover: no one else has it). */
async function forwardPinned(deps: ProxyDeps, call: ObjectCall, req: FastifyRequest, reply: FastifyReply) {
  const id = (req.params as { id: string }).id;
  const pin = await deps.pins.lookup('response', id);
  if (!pin || pin.keyId !== req.client.keyId) throw notFound(id);
  const runtime = deps.state.runtime;
  if (!runtime)
    throw new RelayError(503, 'server_error', 'config_not_loaded', 'the relay has no config loaded yet');
  const ch = runtime.channels.get(pin.channel);
  // Gone, or re-pointed at a provider without the Responses API: either way the object is out of reach.
  if (!ch || !speaksResponses(ch.adapter)) {
    throw new RelayError(
      404,
      'invalid_request_error',
      'response_channel_gone',
      `Response '${id}' lives on channel ${pin.channel}, which is no longer configured or no longer serves the Responses API; it cannot be reached.`,
    );
  }
  const base = ch.adapter.url(ch.target, {
    operation: 'responses',
    upstreamModel: pin.model ?? '',
    stream: false,
  });
  const [basePath, baseQuery] = base.split('?', 2) as [string, string | undefined];
  const clientQuery = req.url.includes('?') ? req.url.slice(req.url.indexOf('?') + 1) : '';
  const query = [baseQuery, clientQuery].filter(Boolean).join('&');
  const path = `${basePath}/${encodeURIComponent(id)}${call.suffix}${query ? `?${query}` : ''}`;
  const headers = upstreamHeaders(req.headers, ch.headers, 0);
  if (call.method !== 'POST') {
    delete headers['content-type'];
    delete headers['content-length'];
  }

  const model = pin.model !== undefined && runtime.index.has(pin.model) ? pin.model : 'other';
  const route = call.url;
  const channel = ch.config.id;
  const ac = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    ac.abort();
  }, ch.config.timeouts.totalMs);
  let res: Awaited<ReturnType<typeof ch.dispatcher.request>>;
  try {
    res = await ch.dispatcher.request({
      origin: ch.origin,
      path,
      method: call.method,
      headers,
      body: call.method === 'POST' ? '' : null,
      signal: ac.signal,
      headersTimeout: ch.config.timeouts.firstByteMs,
      bodyTimeout: ch.config.timeouts.firstByteMs,
    });
  } catch (err) {
    clearTimeout(timer);
    const why = timedOut ? `no answer within ${ch.config.timeouts.totalMs} ms` : errCode(err);
    const [status, code] = timedOut ? [504, 'upstream_timeout'] : [502, 'upstream_unreachable'];
    throw new RelayError(status, 'upstream_error', code, `channel ${channel} could not be reached (${why})`);
  }
  res.body.once('close', () => clearTimeout(timer));
  const status = res.statusCode;
  if (call.method === 'DELETE' && status >= 200 && status < 300) await deps.pins.unpin('response', id);
  const out = clientHeaders(res.headers, true);
  out['x-request-id'] = String(req.id);
  out['x-kuberelay-channel'] = channel;
  const durationMs = performance.now() - req.receivedAt;
  deps.metrics.requests.inc({ route, model, channel, code: String(status) });
  deps.metrics.requestDuration.observe({ route, model }, durationMs / 1000);
  deps.recorder?.record({
    ...NO_TOKENS,
    requestId: String(req.id),
    at: Date.now(),
    keyId: req.client.keyId,
    route,
    model,
    channel,
    status,
    durationMs,
    attempts: 1,
    stream: false,
    cost: 0,
  });
  return reply.code(status).headers(out).send(res.body);
}
