import type { FastifyReply, FastifyRequest } from 'fastify';
import { errorBody } from '../../providers/anthropic/ingress/errors.ts';
import type { RelayError } from '../errors.ts';

/**
 * Does this client speak Anthropic's API? The Messages paths always; the models routes when the
 * client sends `anthropic-version` (as Anthropic's SDKs do). Their errors are then in Anthropic's
 * shape, `{"type":"error","error":{"type","message"}}`.
 */
export function speaksAnthropic(req: FastifyRequest): boolean {
  // No route (a 404): the path says it, e.g. Message Batches, which the relay does not serve.
  const route = req.routeOptions.url ?? req.url;
  if (route.startsWith('/v1/messages')) return true;
  return route.startsWith('/v1/models') && req.headers['anthropic-version'] !== undefined;
}

export function sendAnthropicError(reply: FastifyReply, err: RelayError) {
  return reply.code(err.statusCode).headers(err.headers).send(errorBody(err.statusCode, err.message));
}
