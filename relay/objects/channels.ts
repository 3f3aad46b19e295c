import type { FastifyRequest } from 'fastify';
import { modelAllowed } from '../../core/keys/api-key.ts';
import type { Pin, PinnedKind } from '../../core/pins/store.ts';
import { type Candidate, orderCandidates } from '../../core/selection.ts';
import { objectPathFor } from '../../providers/objects.ts';
import { RelayError } from '../errors.ts';
import type { ProxyDeps } from '../proxy-deps.ts';
import type { ChannelRuntime, Runtime } from '../runtime.ts';

/**
 * Which channel an object call goes to. An existing object: the channel it is pinned to, for the
 * key that created it only (another key's id is unknown to it); a pinned channel that is no longer
 * configured is a 410, never another upstream's answer. A new upload: the model the client names
 * (`x-kuberelay-model` header or `?model=`), else the highest-priority channel the key may use
 * whose provider has a Files API (weighted within its tier, cooling-down channels last).
 */

const WHAT: Record<PinnedKind, string> = { file: 'File', batch: 'Batch', response: 'Response' };

export const FILE_PROVIDERS = 'openai, openai-compatible, azure-openai';

export function runtimeOf(deps: ProxyDeps): Runtime {
  const rt = deps.state.runtime;
  if (!rt)
    throw new RelayError(503, 'server_error', 'config_not_loaded', 'the relay has no config loaded yet');
  return rt;
}

/** A pin store that does not answer is the relay's 503, not a 404. */
export async function pinOf(deps: ProxyDeps, kind: PinnedKind, id: string): Promise<Pin | undefined> {
  try {
    return await deps.pins.lookup(kind, id);
  } catch (err) {
    deps.log.warn({ err, kind }, 'pin store lookup failed');
    throw unavailable();
  }
}

export function unavailable(): RelayError {
  return new RelayError(
    503,
    'server_error',
    'pin_store_unavailable',
    'the relay cannot read which channel holds this object right now; retry shortly',
    { headers: { 'retry-after': '1' } },
  );
}

/** The pinned channel of a caller's object; throws the 404 or 410. */
export async function pinnedChannel(
  deps: ProxyDeps,
  req: FastifyRequest,
  kind: PinnedKind,
  id: string,
  param = `${kind}_id`,
): Promise<{ ch: ChannelRuntime; pin: Pin }> {
  const pin = await pinOf(deps, kind, id);
  if (!pin || pin.keyId !== req.client.keyId) {
    throw new RelayError(
      404,
      'invalid_request_error',
      `${kind}_not_found`,
      `No such ${WHAT[kind]} object: ${id} (not created through this relay with this API key)`,
      { param },
    );
  }
  const ch = runtimeOf(deps).channels.get(pin.channel);
  if (!ch || !objectPathFor(ch.config.provider)) {
    throw new RelayError(
      410,
      'invalid_request_error',
      'channel_gone',
      `${WHAT[kind]} ${id} lives on channel ${pin.channel}, which this relay no longer serves: it cannot be reached`,
      { param },
    );
  }
  return { ch, pin };
}

/** The channel a new upload goes to, and the model named for it (if any). */
export function uploadChannel(deps: ProxyDeps, req: FastifyRequest): { ch: ChannelRuntime; model?: string } {
  const rt = runtimeOf(deps);
  const model = namedModel(req);
  const allowed = req.client.models;
  let tiers: Candidate[][];
  if (model !== undefined) {
    if (!modelAllowed({ models: allowed ?? [] }, model)) {
      throw new RelayError(
        403,
        'permission_error',
        'model_not_allowed',
        `API key ${req.client.keyId} may not use model '${model}'`,
        {
          param: 'model',
        },
      );
    }
    const t = rt.index.get(model);
    if (!t) {
      throw new RelayError(
        404,
        'invalid_request_error',
        'model_not_found',
        `The model '${model}' is not served by this relay`,
        {
          param: 'model',
        },
      );
    }
    tiers = t;
  } else {
    tiers = tiersOfAll(rt, (m) => modelAllowed({ models: allowed ?? [] }, m));
  }
  const withFiles = tiers
    .map((t) => t.filter((c) => objectPathFor(c.channel.provider)))
    .filter((t) => t.length > 0);
  const now = Date.now();
  const cool = (c: Candidate) => deps.store.cooldownUntil(c.channel.id) <= now;
  // A channel cooling down still beats none: the upload has nowhere else to go.
  const pick = orderCandidates(withFiles, cool, 1)[0] ?? orderCandidates(withFiles, () => true, 1)[0];
  const ch = pick && rt.channels.get(pick.channel.id);
  if (!ch) {
    const what = model === undefined ? 'this API key may use' : `serving model '${model}'`;
    throw new RelayError(
      400,
      'invalid_request_error',
      'files_not_supported',
      `no channel ${what} has a Files API (providers: ${FILE_PROVIDERS})`,
      model === undefined ? {} : { param: 'model' },
    );
  }
  return model === undefined ? { ch } : { ch, model };
}

function namedModel(req: FastifyRequest): string | undefined {
  const h = req.headers['x-kuberelay-model'];
  const q = (req.query as Record<string, unknown> | undefined)?.model;
  const m = typeof h === 'string' && h !== '' ? h : typeof q === 'string' && q !== '' ? q : undefined;
  return m;
}

/** Every channel serving a model the key may use, once each, in priority tiers. */
function tiersOfAll(rt: Runtime, allowed: (model: string) => boolean): Candidate[][] {
  const seen = new Set<string>();
  const byPriority = new Map<number, Candidate[]>();
  for (const [name, tiers] of rt.index) {
    if (!allowed(name)) continue;
    for (const c of tiers.flat()) {
      if (seen.has(c.channel.id)) continue;
      seen.add(c.channel.id);
      const t = byPriority.get(c.channel.priority) ?? [];
      t.push(c);
      byPriority.set(c.channel.priority, t);
    }
  }
  return [...byPriority.entries()].sort((a, b) => a[0] - b[0]).map(([, t]) => t);
}
