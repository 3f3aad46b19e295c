import { createHash } from 'node:crypto';
import type { z } from 'zod';
import { parseDuration } from './duration.ts';
import { linkLocalProblem } from './link-local.ts';
import type { ChannelConfig, PolicyConfig, RelayConfig } from './relay-config.ts';
import {
  type ChannelObject,
  channelSchema,
  type PolicyObject,
  PROVIDER_SECRET_KEYS,
  policySchema,
  type SecretObject,
  SUPPORTED_PROVIDERS,
  secretSchema,
} from './schema.ts';

/**
 * The one render function: Kubernetes objects -> RelayConfig. `relay --config FILE` and the
 * operator both call it, so a file and a cluster holding the same objects serve the same config.
 * Invalid or unresolvable objects are left out with a reason; the rest still render.
 */

/** An object plus where it came from ("quickstart.yaml, document 3"), for error messages. */
export interface SourcedObject {
  object: unknown;
  source?: string;
}

export type ConditionType = 'Accepted' | 'ResolvedRefs';

export interface ObjectCondition {
  type: ConditionType;
  status: 'True' | 'False';
  reason: string;
  message: string;
}

export interface ObjectResult {
  kind: string;
  namespace: string;
  name: string;
  generation: number;
  source?: string;
  /** Accepted (and ResolvedRefs for kinds with references). */
  conditions: ObjectCondition[];
  /** Human-readable problems, each naming the source, the object and the field path. */
  errors: string[];
}

export interface RenderResult {
  config: RelayConfig;
  results: ObjectResult[];
}

export interface RenderOptions {
  generation: number;
  /** Namespace for objects that name none (a file used outside a cluster). */
  defaultNamespace?: string;
}

const SUPPORTED_KINDS = new Set(['Secret', 'Channel', 'RateLimitPolicy']);

export function renderRelayConfig(objects: readonly SourcedObject[], opts: RenderOptions): RenderResult {
  const defaultNs = opts.defaultNamespace ?? 'default';
  const results: ObjectResult[] = [];
  const secrets = new Map<string, SecretObject>();
  const channels: { obj: ChannelObject; result: ObjectResult }[] = [];
  const policies: { obj: PolicyObject; result: ObjectResult }[] = [];
  const seen = new Set<string>();

  for (const { object, source } of objects) {
    const head = describe(object, defaultNs);
    const result: ObjectResult = { ...head, source, conditions: [], errors: [] };
    results.push(result);
    const where = `${source ? `${source}: ` : ''}${head.kind} ${head.namespace}/${head.name}`;

    if (!SUPPORTED_KINDS.has(head.kind)) {
      reject(result, where, 'UnsupportedKind', `kind must be Secret, Channel or RateLimitPolicy`);
      continue;
    }
    const key = `${head.kind}/${head.namespace}/${head.name}`;
    if (seen.has(key)) {
      reject(result, where, 'Duplicate', 'defined more than once');
      continue;
    }
    seen.add(key);

    const schema =
      head.kind === 'Secret' ? secretSchema : head.kind === 'Channel' ? channelSchema : policySchema;
    const parsed = schema.safeParse(object);
    if (!parsed.success) {
      reject(result, where, 'Invalid', ...formatIssues(parsed.error));
      continue;
    }
    if (head.kind === 'Secret') {
      secrets.set(`${head.namespace}/${head.name}`, parsed.data as SecretObject);
      result.conditions.push(cond('Accepted', 'True', 'Accepted', 'secret loaded'));
    } else if (head.kind === 'Channel') {
      channels.push({ obj: parsed.data as ChannelObject, result });
    } else {
      policies.push({ obj: parsed.data as PolicyObject, result });
    }
  }

  const channelConfigs: ChannelConfig[] = [];
  const resolved: ResolvedChannel[] = [];
  for (const { obj, result } of channels) {
    const where = `${result.source ? `${result.source}: ` : ''}Channel ${result.namespace}/${result.name}`;
    const spec = obj.spec;
    if (!SUPPORTED_PROVIDERS.has(spec.provider)) {
      reject(result, where, 'UnsupportedProvider', `spec.provider: ${spec.provider} is not supported yet`);
      continue;
    }
    const linkLocal = spec.allowLinkLocal ? undefined : linkLocalProblem(spec.baseURL);
    if (linkLocal) {
      const message = `spec.baseURL: ${linkLocal}; set spec.allowLinkLocal: true if this upstream really is there`;
      reject(result, where, 'LinkLocalAddress', message);
      continue;
    }
    const ref = spec.apiKeySecretRef;
    const secret = secrets.get(`${result.namespace}/${ref.name}`);
    const keys = PROVIDER_SECRET_KEYS[spec.provider] ?? [ref.key];
    const values = keys.map((k) => (secret ? secretValue(secret, k) : undefined));
    const missing = keys.find((_, i) => values[i] === undefined);
    if (!secret || missing !== undefined) {
      const reason = secret ? 'SecretKeyNotFound' : 'SecretNotFound';
      const message = secret
        ? `spec.apiKeySecretRef: Secret ${result.namespace}/${ref.name} has no key "${missing}"`
        : `spec.apiKeySecretRef: Secret ${result.namespace}/${ref.name} not found`;
      result.conditions.push(cond('ResolvedRefs', 'False', reason, message));
      reject(result, where, 'UnresolvedRefs', message);
      continue;
    }
    const empty = keys.find((_, i) => values[i]!.trim() === '');
    if (empty !== undefined) {
      result.conditions.push(
        cond('ResolvedRefs', 'False', 'EmptySecretKey', `Secret key "${empty}" is empty`),
      );
      reject(result, where, 'UnresolvedRefs', `spec.apiKeySecretRef: Secret key "${empty}" is empty`);
      continue;
    }
    result.conditions.push(cond('ResolvedRefs', 'True', 'ResolvedRefs', 'Secret and key found'));
    const credentials = keys.length > 1 ? Object.fromEntries(keys.map((k, i) => [k, values[i]!])) : undefined;
    resolved.push({ obj, result, apiKey: values[0]!, credentials });
  }
  for (const { obj, result, apiKey, credentials } of withoutModelConflicts(resolved)) {
    result.conditions.push(cond('Accepted', 'True', 'Accepted', 'written into the relay config'));
    channelConfigs.push(toChannelConfig(obj, result, apiKey, credentials));
  }

  const channelIds = new Set(channelConfigs.map((c) => c.id));
  const policyConfigs: PolicyConfig[] = [];
  for (const { obj, result } of policies) {
    const where = `${result.source ? `${result.source}: ` : ''}RateLimitPolicy ${result.namespace}/${result.name}`;
    const names = obj.spec.match.channels ?? [];
    const missing = names.filter((n) => !channelIds.has(`${result.namespace}/${n}`));
    if (missing.length > 0) {
      const message = `spec.match.channels: no accepted Channel named ${missing.join(', ')} in namespace ${result.namespace}`;
      result.conditions.push(cond('ResolvedRefs', 'False', 'ChannelNotFound', message));
      reject(result, where, 'UnresolvedRefs', message);
      continue;
    }
    result.conditions.push(cond('ResolvedRefs', 'True', 'ResolvedRefs', 'all referenced channels found'));
    result.conditions.push(cond('Accepted', 'True', 'Accepted', 'written into the relay config'));
    policyConfigs.push(toPolicyConfig(obj, result));
  }

  channelConfigs.sort((a, b) => a.id.localeCompare(b.id));
  policyConfigs.sort((a, b) => a.id.localeCompare(b.id));
  const hash = createHash('sha256')
    .update(JSON.stringify({ channels: channelConfigs, policies: policyConfigs }))
    .digest('hex');
  return {
    config: { generation: opts.generation, hash, channels: channelConfigs, policies: policyConfigs },
    results,
  };
}

interface ResolvedChannel {
  obj: ChannelObject;
  result: ObjectResult;
  apiKey: string;
  credentials: Record<string, string> | undefined;
}

/**
 * A model name belongs to the namespace whose Channel claimed it first (oldest
 * creationTimestamp, then namespace/name): Channels of another namespace offering the same name
 * are refused with ModelConflict, so no namespace captures another's traffic.
 */
function withoutModelConflicts(resolved: ResolvedChannel[]): ResolvedChannel[] {
  const created = (c: ResolvedChannel) => {
    const t = (c.obj as { metadata?: { creationTimestamp?: unknown } }).metadata?.creationTimestamp;
    const ms = typeof t === 'string' ? Date.parse(t) : t instanceof Date ? t.getTime() : Number.NaN;
    return Number.isNaN(ms) ? Number.POSITIVE_INFINITY : ms;
  };
  const ordered = [...resolved].sort(
    (a, b) =>
      created(a) - created(b) ||
      `${a.result.namespace}/${a.result.name}`.localeCompare(`${b.result.namespace}/${b.result.name}`),
  );
  const owner = new Map<string, ObjectResult>();
  const kept: ResolvedChannel[] = [];
  for (const c of ordered) {
    const { result } = c;
    const clash = c.obj.spec.models
      .map((m) => ({ model: m.name, other: owner.get(m.name) }))
      .find(({ other }) => other !== undefined && other.namespace !== result.namespace);
    if (clash) {
      const other = clash.other!;
      const where = `${result.source ? `${result.source}: ` : ''}Channel ${result.namespace}/${result.name}`;
      reject(
        result,
        where,
        'ModelConflict',
        `spec.models: model "${clash.model}" is already served by Channel ${other.namespace}/${other.name} in namespace ${other.namespace}`,
      );
      continue;
    }
    for (const m of c.obj.spec.models) if (!owner.has(m.name)) owner.set(m.name, result);
    kept.push(c);
  }
  return kept;
}

function toChannelConfig(
  obj: ChannelObject,
  result: ObjectResult,
  apiKey: string,
  credentials?: Record<string, string>,
): ChannelConfig {
  const s = obj.spec;
  const num = (v: string | undefined) => (v === undefined ? 0 : Number(v));
  return {
    id: `${result.namespace}/${result.name}`,
    namespace: result.namespace,
    name: result.name,
    generation: result.generation,
    provider: s.provider as ChannelConfig['provider'],
    baseURL: s.baseURL.replace(/\/+$/, ''),
    apiKey,
    ...(credentials ? { credentials } : {}),
    ...(s.headers && Object.keys(s.headers).length > 0 ? { headers: s.headers } : {}),
    ...(s.azure ? { azure: { apiVersion: s.azure.apiVersion } } : {}),
    models: s.models.map((m) => ({
      name: m.name,
      upstreamName: m.upstreamName ?? m.name,
      pricing: {
        inputPer1M: num(m.pricing?.inputPer1M),
        outputPer1M: num(m.pricing?.outputPer1M),
        cachedInputPer1M: num(m.pricing?.cachedInputPer1M ?? m.pricing?.inputPer1M),
        // written only when set (snapshots stay readable by relays that predate it)
        ...(m.pricing?.cacheWritePer1M !== undefined && { cacheWritePer1M: num(m.pricing.cacheWritePer1M) }),
        perRequest: num(m.pricing?.perRequest),
        perSecond: num(m.pricing?.perSecond),
        ...(m.pricing?.perCharacter !== undefined && { perCharacter: num(m.pricing.perCharacter) }),
        ...(m.pricing?.batchInputPer1M !== undefined && { batchInputPer1M: num(m.pricing.batchInputPer1M) }),
        ...(m.pricing?.batchOutputPer1M !== undefined && {
          batchOutputPer1M: num(m.pricing.batchOutputPer1M),
        }),
      },
    })),
    priority: s.priority,
    weight: s.weight,
    suspend: s.suspend,
    // Only when set: relays that predate the field keep accepting snapshots without it.
    ...(s.allowLinkLocal ? { allowLinkLocal: true } : {}),
    limits: {
      maxConcurrent: s.limits.maxConcurrent ?? null,
      maxQueue: s.limits.maxQueue,
      queueTimeoutMs: parseDuration(s.limits.queueTimeout),
    },
    // Only when set: relays that predate the field keep accepting snapshots without it.
    ...(s.limits.jobs || s.jobs
      ? {
          jobs: {
            maxConcurrent: s.limits.jobs?.maxConcurrent ?? null,
            maxQueue: s.limits.jobs?.maxQueue ?? 100,
            pollIntervalMs: parseDuration(s.jobs?.pollInterval ?? '30s'),
            timeoutMs: parseDuration(s.jobs?.timeout ?? '30m'),
          },
        }
      : {}),
    cooldown: {
      failureThreshold: s.cooldown.failureThreshold,
      durationMs: parseDuration(s.cooldown.duration),
      maxDurationMs: parseDuration(s.cooldown.maxDuration),
      onStatus: s.cooldown.onStatus,
    },
    timeouts: {
      connectMs: parseDuration(s.timeouts.connect),
      firstByteMs: parseDuration(s.timeouts.firstByte),
      ...(s.timeouts.firstToken ? { firstTokenMs: parseDuration(s.timeouts.firstToken) } : {}),
      totalMs: parseDuration(s.timeouts.total),
    },
  };
}

function toPolicyConfig(obj: PolicyObject, result: ObjectResult): PolicyConfig {
  const s = obj.spec;
  const match: PolicyConfig['match'] = {};
  if (s.match.models) match.models = s.match.models;
  if (s.match.apiKeys) match.apiKeys = s.match.apiKeys;
  if (s.match.channels) match.channels = s.match.channels.map((n) => `${result.namespace}/${n}`);
  if (s.match.paths) match.paths = s.match.paths;
  return {
    id: `${result.namespace}/${result.name}`,
    namespace: result.namespace,
    name: result.name,
    generation: result.generation,
    match,
    limitBy: s.limitBy,
    limits: s.limits.map((l) => {
      if (l.concurrent !== undefined) return { kind: 'concurrent' as const, amount: l.concurrent };
      const perMs = parseDuration(l.per!);
      if (l.requests !== undefined) return { kind: 'requests' as const, amount: l.requests, perMs };
      if (l.tokens !== undefined) return { kind: 'tokens' as const, amount: l.tokens, perMs };
      return { kind: 'cost' as const, amount: Number(l.cost), perMs };
    }),
    algorithm: s.algorithm,
    onRedisUnavailable: s.onRedisUnavailable,
    shadow: s.shadow,
  };
}

function secretValue(secret: SecretObject, key: string): string | undefined {
  const plain = secret.stringData?.[key];
  if (plain !== undefined) return plain;
  const b64 = secret.data?.[key];
  return b64 === undefined ? undefined : Buffer.from(b64, 'base64').toString('utf8');
}

function describe(object: unknown, defaultNs: string) {
  const o = (object ?? {}) as {
    kind?: unknown;
    metadata?: { name?: unknown; namespace?: unknown; generation?: unknown };
  };
  const str = (v: unknown, fallback: string) => (typeof v === 'string' && v !== '' ? v : fallback);
  return {
    kind: str(o.kind, '<no kind>'),
    namespace: str(o.metadata?.namespace, defaultNs),
    name: str(o.metadata?.name, '<no name>'),
    generation: typeof o.metadata?.generation === 'number' ? o.metadata.generation : 1,
  };
}

function cond(
  type: ConditionType,
  status: 'True' | 'False',
  reason: string,
  message: string,
): ObjectCondition {
  return { type, status, reason, message };
}

function reject(result: ObjectResult, where: string, reason: string, ...messages: string[]) {
  result.conditions = result.conditions.filter((c) => c.type !== 'Accepted');
  result.conditions.push(cond('Accepted', 'False', reason, messages.join('; ')));
  for (const m of messages) result.errors.push(`${where}: ${m}`);
}

/** zod issues as `spec.models[0].name: must be ...`. */
export function formatIssues(error: z.ZodError): string[] {
  return error.issues.map((issue) => {
    let path = '';
    for (const seg of issue.path) {
      path += typeof seg === 'number' ? `[${seg}]` : path === '' ? String(seg) : `.${String(seg)}`;
    }
    return path === '' ? issue.message : `${path}: ${issue.message}`;
  });
}
