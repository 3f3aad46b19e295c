import type { FastifyReply, FastifyRequest } from 'fastify';
import type { RequestRecord } from '../../core/accounting.ts';
import { NO_TOKENS } from '../../core/usage.ts';
import { estimateInputTokens } from '../../providers/anthropic/ingress/count.ts';
import { badRequest } from '../errors.ts';
import { relay } from '../proxy.ts';
import type { ProxyDeps, RelayRoute } from '../proxy-deps.ts';
import { traceIdOf } from '../tracing.ts';

/**
 * POST /v1/messages/count_tokens: Anthropic's own count from a channel that speaks Messages
 * (relayed like any request, the other channels skipped); a model that no such channel serves
 * gets the relay's estimate (providers/anthropic/ingress/count.ts), no upstream call.
 */
export async function countTokens(
  deps: ProxyDeps,
  route: RelayRoute,
  req: FastifyRequest,
  reply: FastifyReply,
) {
  const body = req.body as Record<string, unknown> | null;
  const model = body !== null && typeof body === 'object' ? body.model : undefined;
  const tiers = typeof model === 'string' ? deps.state.runtime?.index.get(model) : undefined;
  const counts = tiers?.some((t) =>
    t.some((c) => deps.state.runtime?.channels.get(c.channel.id)?.adapter.natively?.('count_tokens')),
  );
  if (!tiers || counts) return relay(deps, route, req, reply); // its errors (no model, no config)
  if (!Array.isArray(body!.messages))
    throw badRequest('invalid_request', 'messages: Field required', 'messages');
  deps.metrics.requests.inc({ route: route.path, model: model as string, channel: 'none', code: '200' });
  // Logged and traced like any request; no channel, nothing billed.
  const record: RequestRecord = {
    requestId: String(req.id),
    at: Date.now(),
    keyId: req.client.keyId,
    route: route.path,
    model: model as string,
    status: 200,
    durationMs: performance.now() - req.receivedAt,
    attempts: 0,
    stream: false,
    ...NO_TOKENS,
    cost: 0,
    traceId: req.trace?.traceId ?? traceIdOf(req.headers.traceparent),
  };
  req.trace?.finish(record);
  deps.recorder?.record(record);
  reply.header('x-kuberelay-count', 'estimated');
  return estimateInputTokens(body!);
}
