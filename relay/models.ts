import type { FastifyInstance, FastifyRequest, onRequestHookHandler } from 'fastify';
import { RelayError } from './errors.ts';
import type { RelayState } from './relay-state.ts';

/**
 * GET /v1/models and /v1/models/{id}: the models this key may use, in OpenAI's shape, or in
 * Anthropic's (https://docs.anthropic.com/en/api/models-list) when the client sends
 * `anthropic-version`, as Anthropic's SDKs do. The relay knows no creation dates: the epoch.
 */

const EPOCH = '1970-01-01T00:00:00Z';

const anthropicModel = (id: string) => ({ type: 'model', id, display_name: id, created_at: EPOCH });
const openaiModel = (id: string) => ({ id, object: 'model', created: 0, owned_by: 'kuberelay' });

export function registerModelRoutes(
  app: FastifyInstance,
  state: RelayState,
  requireKey: onRequestHookHandler,
) {
  const visible = (req: FastifyRequest) => {
    const allowed = req.client.models;
    return (state.runtime?.models ?? []).filter((m) => !allowed || allowed.includes(m));
  };
  const anthropic = (req: FastifyRequest) => req.headers['anthropic-version'] !== undefined;

  app.get('/v1/models', { onRequest: requireKey }, async (req) => {
    const models = visible(req);
    if (!anthropic(req)) return { object: 'list', data: models.map(openaiModel) };
    return anthropicPage(models, req.query as Record<string, string | undefined>);
  });

  // A wildcard: model names may hold slashes (`meta-llama/Llama-3.1-8B`, encoded or not); the
  // router has decoded it once already.
  app.get('/v1/models/*', { onRequest: requireKey }, async (req) => {
    const id = (req.params as { '*': string })['*'];
    if (!visible(req).includes(id)) {
      throw new RelayError(
        404,
        'invalid_request_error',
        'model_not_found',
        `The model '${id}' does not exist`,
        {
          param: 'model',
        },
      );
    }
    return anthropic(req) ? anthropicModel(id) : openaiModel(id);
  });
}

/** One page of Anthropic's list: `limit` (1-1000, default 20), `after_id` or `before_id`. */
function anthropicPage(models: string[], q: Record<string, string | undefined>) {
  const limit = q.limit === undefined ? 20 : Number(q.limit);
  if (!Number.isInteger(limit) || limit < 1 || limit > 1000) {
    throw new RelayError(
      400,
      'invalid_request_error',
      'invalid_limit',
      'limit: must be an integer from 1 to 1000',
    );
  }
  let start = 0;
  let end = models.length;
  if (q.after_id !== undefined) start = models.indexOf(q.after_id) + 1;
  if (q.before_id !== undefined) {
    end = Math.max(0, models.indexOf(q.before_id));
    start = Math.max(0, end - limit);
  }
  const page = models.slice(start, Math.min(end, start + limit));
  return {
    data: page.map(anthropicModel),
    has_more: q.before_id !== undefined ? start > 0 : start + page.length < models.length,
    first_id: page[0] ?? null,
    last_id: page[page.length - 1] ?? null,
  };
}
