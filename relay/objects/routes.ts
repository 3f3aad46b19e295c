import type { FastifyInstance, FastifyReply, FastifyRequest, onRequestHookHandler } from 'fastify';
import type { RequestFacts } from '../../core/ratelimit/policy.ts';
import { policiesOf, RequestLimits } from '../limits.ts';
import type { ProxyDeps } from '../proxy-deps.ts';
import { cancelBatch, createBatch, listBatches, retrieveBatch } from './batches.ts';
import { runtimeOf } from './channels.ts';
import { deleteFile, fileContent, listFiles, retrieveFile, uploadFile } from './files.ts';
import { type ObjectCall, objectCall } from './upstream.ts';

/**
 * The routes of objects that live upstream: OpenAI's Files and Batch APIs. Same auth as every
 * /v1 route (the key is checked before the body is read), the same RateLimitPolicies (by path,
 * key and the model named; a file's bytes are not tokens, so token limits reserve nothing), and
 * the same metrics and request records. Registered in their own Fastify scope, where a multipart
 * body is left unread for the upload to stream through.
 */

type Handler = (call: ObjectCall, id: string) => Promise<unknown> | unknown;

const MULTIPART = 'multipart/form-data';

export function registerObjectRoutes(
  app: FastifyInstance,
  deps: ProxyDeps,
  requireKey: onRequestHookHandler,
) {
  const bodyLimit = app.initialConfig.bodyLimit ?? 10 * 1024 * 1024;
  const routes: [method: 'GET' | 'POST' | 'DELETE', url: string, handler: Handler][] = [
    ['POST', '/v1/files', (c) => uploadFile(c, bodyLimit)],
    ['GET', '/v1/files', (c) => listFiles(c)],
    ['GET', '/v1/files/:file_id', retrieveFile],
    ['DELETE', '/v1/files/:file_id', deleteFile],
    ['GET', '/v1/files/:file_id/content', fileContent],
    ['POST', '/v1/batches', (c) => createBatch(c)],
    ['GET', '/v1/batches', (c) => listBatches(c)],
    ['GET', '/v1/batches/:batch_id', retrieveBatch],
    ['POST', '/v1/batches/:batch_id/cancel', cancelBatch],
  ];
  app.register(async (scope) => {
    // Left unread here: the upload streams through to the channel (relay/objects/files.ts).
    if (scope.hasContentTypeParser(MULTIPART)) scope.removeContentTypeParser(MULTIPART);
    scope.addContentTypeParser(MULTIPART, (_req, _payload, done) => done(null, undefined));
    for (const [method, url, handler] of routes) {
      scope.route({
        method,
        url,
        onRequest: requireKey,
        handler: (req, reply) => serve(deps, url, req, reply, handler),
      });
    }
  });
}

async function serve(
  deps: ProxyDeps,
  route: string,
  req: FastifyRequest,
  reply: FastifyReply,
  handler: Handler,
) {
  const call = objectCall(deps, req, reply, route);
  const params = req.params as { file_id?: string; batch_id?: string };
  const limits = await admit(deps, req);
  if (limits?.headers.ratelimit) reply.headers(limits.headers);
  try {
    return await handler(call, params.file_id ?? params.batch_id ?? '');
  } finally {
    if (call.usage) limits?.charge({ ...call.usage.tokens, cost: call.usage.cost });
    limits?.finish();
  }
}

/** The request-level RateLimitPolicies (429 when one refuses); none without policies. */
async function admit(deps: ProxyDeps, req: FastifyRequest): Promise<RequestLimits | undefined> {
  const config = runtimeOf(deps).config;
  if (config.policies.length === 0) return undefined;
  const named = req.headers['x-kuberelay-model'];
  const facts: RequestFacts = {
    model: typeof named === 'string' ? named : '',
    path: req.url.split('?')[0]!, // `paths: ['/v1/files*']` matches every file call
    keyId: req.client.keyId,
    labels: req.client.labels,
    ip: req.ip,
    header: (name) => {
      const v = req.headers[name];
      return Array.isArray(v) ? v[0] : v;
    },
  };
  const limits = new RequestLimits(deps, policiesOf(config), facts, 0);
  await limits.admit();
  return limits;
}
