import type { FastifyReply, FastifyRequest } from 'fastify';
import { estimateInputTokens } from '../../providers/anthropic/ingress/count.ts';
import { badRequest } from '../errors.ts';
import { relay } from '../proxy.ts';
import type { ProxyDeps, RelayRoute } from '../proxy-deps.ts';

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
  reply.header('x-kuberelay-count', 'estimated');
  return estimateInputTokens(body!);
}
