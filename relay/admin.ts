import { createHash, timingSafeEqual } from 'node:crypto';
import Fastify, {
  type FastifyBaseLogger,
  type FastifyError,
  type FastifyInstance,
  type RouteHandlerMethod,
} from 'fastify';
import { z } from 'zod';
import { tryParseDuration } from '../core/config/duration.ts';
import { type KeyAdmin, KeyAdminError, newKeySchema } from '../core/keys/api-key.ts';
import { type Period, periodFirstDay } from '../core/period.ts';
import { spentSoFar } from '../core/spend.ts';
import type { StateStore } from '../core/state/store.ts';
import type { PrismaAccounting, UsageDimension } from '../db/accounting.ts';
import { fromFastifyError, RelayError, sendError } from './errors.ts';
import { DEFAULT_HTTP_TIMEOUTS, serverOptions } from './http-timeouts.ts';
import type { RelayState } from './relay-state.ts';
import { lazySchemaCompilers } from './schema-compilers.ts';

/**
 * The admin API: keys, usage and spend, request logs, channel state. It has its own listener
 * (ADMIN_PORT), never the public one, and every route needs `Authorization: Bearer <ADMIN_TOKEN>`.
 * Errors have the same OpenAI shape as the public API.
 */

export interface AdminDeps {
  token: string;
  keys: KeyAdmin;
  accounting: PrismaAccounting;
  store: StateStore;
  state: RelayState;
  /** A key changed through this API: drop it from caches here and tell other processes. */
  onKeyChanged(keyId: string): void;
  /** Admin requests are few and worth an audit trail: each is logged, and each key change. */
  log?: FastifyBaseLogger;
  /**
   * GET /metrics, when it is served here rather than on the public port. Like the operator's
   * metrics port it needs no token: it holds no secrets, and this listener is never public.
   */
  metrics?: RouteHandlerMethod;
}

const DIMENSIONS = ['day', 'key', 'channel', 'model'] as const;
const DAY = /^\d{4}-\d{2}-\d{2}$/;

const usageQuery = z.strictObject({
  keyId: z.string().optional(),
  channel: z.string().optional(),
  model: z.string().optional(),
  from: z.string().regex(DAY, 'a UTC day like 2026-01-31').optional(),
  to: z.string().regex(DAY, 'a UTC day like 2026-01-31').optional(),
  groupBy: z
    .string()
    .default('key')
    .transform((s) => s.split(',').filter(Boolean))
    .pipe(z.array(z.enum(DIMENSIONS)).min(1)),
});

const logsQuery = z.strictObject({
  keyId: z.string().optional(),
  channel: z.string().optional(),
  model: z.string().optional(),
  errors: z.enum(['true', 'false']).optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
});

const rotateBody = z.strictObject({
  gracePeriod: z
    .string()
    .refine((v) => tryParseDuration(v) !== undefined, 'a duration like 0s, 10m, 24h or 7d')
    .default('0s'),
});

export async function buildAdminApp(d: AdminDeps): Promise<FastifyInstance> {
  const app = Fastify({
    ...(d.log ? { loggerInstance: d.log } : { logger: false }),
    ...serverOptions(DEFAULT_HTTP_TIMEOUTS),
    schemaController: lazySchemaCompilers(),
  });
  const want = digest(d.token);

  if (d.metrics) app.get('/metrics', { config: { open: true } }, d.metrics);

  app.addHook('onRequest', async (req) => {
    if ((req.routeOptions.config as { open?: boolean } | undefined)?.open) return;
    const auth = req.headers.authorization;
    const given = typeof auth === 'string' && /^bearer /i.test(auth) ? auth.slice(7).trim() : '';
    if (!given || !timingSafeEqual(digest(given), want)) {
      throw new RelayError(
        401,
        'authentication_error',
        'invalid_admin_token',
        'the admin API needs `Authorization: Bearer <ADMIN_TOKEN>`',
      );
    }
  });

  app.setErrorHandler<FastifyError>((err, req, reply) => {
    if (err instanceof KeyAdminError) {
      const type = err.status === 404 ? 'not_found_error' : 'invalid_request_error';
      return sendError(reply, new RelayError(err.status, type, err.code, err.message));
    }
    if (err instanceof z.ZodError) {
      const i = err.issues[0]!;
      return sendError(
        reply,
        new RelayError(
          400,
          'invalid_request_error',
          'invalid_request',
          `${i.path.join('.') || 'request'}: ${i.message}`,
        ),
      );
    }
    const e = fromFastifyError(err);
    if (e.statusCode >= 500) req.log.error({ err }, 'admin request failed');
    return sendError(reply, e);
  });

  // ---- keys ---------------------------------------------------------------------------------
  app.get('/admin/keys', async (req) => {
    const q = z.object({ includeRevoked: z.enum(['true', 'false']).optional() }).parse(req.query);
    return { data: await d.keys.list({ includeRevoked: q.includeRevoked === 'true' }) };
  });
  app.post('/admin/keys', async (req, reply) => {
    const created = await d.keys.create(newKeySchema.parse(req.body ?? {}));
    req.log.info({ keyId: created.key.id, name: created.key.name }, 'API key created');
    return reply.code(201).send(created);
  });
  app.get<{ Params: { id: string } }>('/admin/keys/:id', async (req) => d.keys.get(req.params.id));
  app.post<{ Params: { id: string } }>('/admin/keys/:id/revoke', async (req) => {
    const key = await d.keys.revoke(req.params.id);
    req.log.info({ keyId: key.id }, 'API key revoked');
    d.onKeyChanged(key.id);
    return key;
  });
  app.post<{ Params: { id: string } }>('/admin/keys/:id/rotate', async (req) => {
    const body = rotateBody.parse(req.body ?? {});
    const created = await d.keys.rotate(req.params.id, tryParseDuration(body.gracePeriod)!);
    req.log.info({ keyId: created.key.id, gracePeriod: body.gracePeriod }, 'API key rotated');
    d.onKeyChanged(created.key.id);
    return created;
  });

  // ---- usage, spend, logs -------------------------------------------------------------------
  app.get('/admin/usage', async (req) => {
    const q = usageQuery.parse(req.query);
    const groupBy = q.groupBy.map((g): UsageDimension => (g === 'key' ? 'keyId' : g));
    return { data: await d.accounting.usage({ ...q, groupBy }) };
  });
  app.get('/admin/spend', async (req) => {
    const q = z
      .strictObject({ keyId: z.string().optional(), channel: z.string().optional() })
      .refine(
        (v) => (v.keyId === undefined) !== (v.channel === undefined),
        'give exactly one of keyId or channel',
      )
      .parse(req.query);
    const now = Date.now();
    const spend = async (period: Period) => {
      const from = periodFirstDay(period, now);
      const live = q.keyId
        ? await d.store.spend('key', q.keyId, period, now)
        : await d.store.spend('channel', q.channel!, period, now);
      const rows = await d.accounting.usage({
        keyId: q.keyId,
        channel: q.channel,
        from,
        groupBy: [q.keyId ? 'keyId' : 'channel'],
      });
      const recorded = rows.reduce((s, r) => s + r.cost, 0);
      // Live counters are current but per process without Redis; rollups are durable but lag.
      return { from, spent: spentSoFar(live, recorded), live, recorded };
    };
    return { ...q, day: await spend('day'), month: await spend('month') };
  });
  app.get('/admin/logs', async (req) => {
    const q = logsQuery.parse(req.query);
    return { data: await d.accounting.recentLogs({ ...q, errors: q.errors === 'true' }) };
  });

  // ---- channels -----------------------------------------------------------------------------
  app.get('/admin/channels', async () => {
    const channels = d.state.runtime?.config.channels ?? [];
    return { data: await Promise.all(channels.map((c) => channelState(d, c.id))) };
  });
  app.post<{ Params: { namespace: string; name: string } }>(
    '/admin/channels/:namespace/:name/reset',
    async (req) => {
      const id = `${req.params.namespace}/${req.params.name}`;
      await d.store.resetChannel(id);
      req.log.info({ channel: id }, 'channel cooldown reset');
      return channelState(d, id);
    },
  );

  return app;
}

async function channelState(d: AdminDeps, id: string) {
  const c = d.state.runtime?.channels.get(id)?.config;
  if (!c)
    throw new RelayError(
      404,
      'not_found_error',
      'channel_not_found',
      `no channel ${id} in the served config`,
    );
  const h = await d.store.channelHealth(id);
  const now = Date.now();
  return {
    id: c.id,
    namespace: c.namespace,
    name: c.name,
    priority: c.priority,
    weight: c.weight,
    models: c.models.map((m) => m.name),
    state: c.suspend ? 'suspended' : h.cooldownUntil > now ? 'cooling_down' : 'healthy',
    consecutiveFailures: h.consecutiveFailures,
    cooldownUntil: h.cooldownUntil > now ? new Date(h.cooldownUntil).toISOString() : null,
  };
}

function digest(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}
