import { createHash } from 'node:crypto';
import type { PolicyConfig } from '../config/relay-config.ts';
import type { LabelSelector } from '../config/schema.ts';
import type { CheckOutcome, LimitCheck, LimitKind } from './limiter.ts';

/**
 * RateLimitPolicy semantics, independent of where counters live: which requests a policy matches,
 * which bucket a request falls in (`limitBy`), the checks handed to a Limiter, and the IETF
 * RateLimit header fields (draft-ietf-httpapi-ratelimit-headers). Compiled once per config snapshot.
 *
 * Policies that match `channels` (or are `limitBy: channel`) limit what the fleet sends to those
 * upstreams, so they are checked per attempt once a channel is chosen; the others are checked once
 * per request, before selection.
 */

/** What the relay knows about a request when limits are checked. */
export interface RequestFacts {
  model: string;
  /** Route path, e.g. /v1/chat/completions. */
  path: string;
  keyId?: string;
  labels: Readonly<Record<string, string>>;
  ip: string;
  header(name: string): string | undefined;
}

export interface CompiledLimit {
  kind: LimitKind;
  amount: number;
  perMs: number;
  /** Name in the RateLimit fields: the policy name, suffixed with the index when it has several. */
  name: string;
  /** The `RateLimit-Policy` item, e.g. `"per-client-ip";q=180;w=180`. */
  policyItem: string;
  /** Multiplier into integer quota units for the headers (cost is reported in micro-USD). */
  unit: number;
  /** For messages: `100 requests per 1m`, `$5 per 1d`, `2 concurrent requests`. */
  summary: string;
  /** The bucket key up to the limitBy value: policy, limit index, algorithm, window. */
  keyPrefix: string;
}

export interface CompiledPolicy {
  id: string;
  config: PolicyConfig;
  perAttempt: boolean;
  limits: CompiledLimit[];
  /** Each limit's owner, built once (checksFor hands these out instead of one object per check). */
  owners: CheckOwner[];
  matches(f: RequestFacts, channelId?: string): boolean;
  /** The bucket keys of a request, one per limit (`keyPrefix` + bucketOf), remembered per bucket value. */
  keys(f: RequestFacts, channelId?: string): readonly string[];
}

export interface CompiledPolicies {
  request: CompiledPolicy[];
  attempt: CompiledPolicy[];
}

/** Which limit of which policy a check came from (same order as the checks). */
export interface CheckOwner {
  policy: CompiledPolicy;
  limit: CompiledLimit;
}

export const NO_POLICIES: CompiledPolicies = Object.freeze({ request: [], attempt: [] });

export function compilePolicies(policies: readonly PolicyConfig[]): CompiledPolicies {
  if (policies.length === 0) return NO_POLICIES;
  const out: CompiledPolicies = { request: [], attempt: [] };
  for (const p of policies) {
    const compiled = compilePolicy(p);
    (compiled.perAttempt ? out.attempt : out.request).push(compiled);
  }
  return out;
}

function compilePolicy(p: PolicyConfig): CompiledPolicy {
  const { models, apiKeys, channels, paths } = p.match;
  const modelSet = models && models.length > 0 ? new Set(models) : undefined;
  const channelSet = channels && channels.length > 0 ? new Set(channels) : undefined;
  const pathMatch = paths && paths.length > 0 ? pathMatcher(paths) : undefined;
  const perAttempt = channelSet !== undefined || p.limitBy === 'channel';
  const matches = (f: RequestFacts, channelId?: string) =>
    (!modelSet || modelSet.has(f.model)) &&
    (!pathMatch || pathMatch(f.path)) &&
    (!apiKeys || (f.keyId !== undefined && matchesSelector(apiKeys, f.labels))) &&
    (!channelSet || (channelId !== undefined && channelSet.has(channelId)));
  const limits = p.limits.map((l, i): CompiledLimit => {
    const name = p.limits.length === 1 ? p.name : `${p.name}-${i}`;
    const unit = l.kind === 'cost' ? 1e6 : 1;
    let item = `"${name}";q=${Math.floor(l.amount * unit)}`;
    if (l.perMs !== undefined) item += `;w=${Math.ceil(l.perMs / 1000)}`;
    if (l.kind !== 'requests') item += `;qu="${QUOTA_UNIT[l.kind]}"`;
    const per = l.perMs !== undefined ? ` per ${formatMs(l.perMs)}` : '';
    const summary =
      l.kind === 'cost'
        ? `$${l.amount}${per}`
        : l.kind === 'concurrent'
          ? `${l.amount} concurrent requests`
          : `${l.amount} ${l.kind}${per}`;
    const perMs = l.perMs ?? 0;
    const algo = l.kind === 'concurrent' ? 'c' : ALGO_CODE[p.algorithm];
    const keyPrefix = `${p.id}:${i}:${algo}:${perMs}:`;
    return { kind: l.kind, amount: l.amount, perMs, name, policyItem: item, unit, summary, keyPrefix };
  });
  const policy: CompiledPolicy = {
    id: p.id,
    config: p,
    perAttempt,
    limits,
    owners: [],
    matches,
    keys: bucketKeys(p.limitBy, limits),
  };
  for (const limit of limits) policy.owners.push({ policy, limit });
  return policy;
}

const QUOTA_UNIT: Record<LimitKind, string> = {
  requests: 'requests',
  tokens: 'tokens',
  cost: 'usd-micros',
  concurrent: 'concurrent-requests',
};

const ALGO_CODE = { 'sliding-window': 's', 'fixed-window': 'f', 'token-bucket': 'b' } as const;

/**
 * The checks for the policies that match, with their owners. `reserveTokens` is the request's
 * token estimate (prompt + max_tokens), clamped per limit so a request larger than a whole budget
 * can still pass an empty window.
 */
export function checksFor(
  policies: readonly CompiledPolicy[],
  f: RequestFacts,
  reserveTokens: number,
  channelId?: string,
): { checks: LimitCheck[]; owners: CheckOwner[] } {
  const checks: LimitCheck[] = [];
  const owners: CheckOwner[] = [];
  for (const policy of policies) {
    if (!policy.matches(f, channelId)) continue;
    const p = policy.config;
    const keys = policy.keys(f, channelId);
    for (let i = 0; i < policy.limits.length; i++) {
      const limit = policy.limits[i]!;
      const reserve =
        limit.kind === 'tokens' ? Math.min(reserveTokens, limit.amount) : limit.kind === 'cost' ? 0 : 1;
      checks.push({
        key: keys[i]!,
        kind: limit.kind,
        algorithm: p.algorithm,
        amount: limit.amount,
        perMs: limit.perMs,
        reserve,
        shadow: p.shadow,
      });
      owners.push(policy.owners[i]!);
    }
  }
  return { checks, owners };
}

// Bucket keys remembered per limitBy value, up to this many per policy (then forgotten at once).
const KEY_CACHE_MAX = 4096;

/**
 * A policy's bucket keys for a request, by the one value its limitBy reads (the client's address,
 * key id, model, channel or header): built, and hashed when long, once per value instead of per
 * request; the same strings each time, so the limiter's lookups hash nothing new.
 */
function bucketKeys(
  limitBy: string,
  limits: readonly CompiledLimit[],
): (f: RequestFacts, channelId?: string) => readonly string[] {
  const build = (f: RequestFacts, channelId: string | undefined) => {
    const bucket = bucketOf(limitBy, f, channelId);
    return limits.map((l) => l.keyPrefix + bucket);
  };
  if (limitBy === 'global') {
    const keys = limits.map((l) => `${l.keyPrefix}g`);
    return () => keys;
  }
  const header = limitBy.startsWith('header:') ? limitBy.slice(7).toLowerCase() : undefined;
  // apiKey falls back to the client address without a key: two value spaces, two caches.
  const byValue = new Map<string, readonly string[]>();
  const byIp = new Map<string, readonly string[]>();
  return (f, channelId) => {
    let cache = byValue;
    let value: string;
    if (limitBy === 'apiKey') {
      if (f.keyId !== undefined) value = f.keyId;
      else {
        cache = byIp;
        value = f.ip;
      }
    } else if (limitBy === 'clientIP') value = f.ip;
    else if (limitBy === 'model') value = f.model;
    else if (limitBy === 'channel') value = channelId ?? '';
    else if (header !== undefined) value = f.header(header) ?? '';
    else return build(f, channelId);
    let keys = cache.get(value);
    if (keys === undefined) {
      if (cache.size >= KEY_CACHE_MAX) cache.clear();
      keys = build(f, channelId);
      cache.set(value, keys);
    }
    return keys;
  };
}

/** The bucket a request falls in. Values are hashed when long, so keys stay short. */
export function bucketOf(limitBy: string, f: RequestFacts, channelId?: string): string {
  let b: string;
  if (limitBy === 'apiKey') b = f.keyId !== undefined ? `k:${f.keyId}` : `ip:${f.ip}`;
  else if (limitBy === 'clientIP') b = `ip:${f.ip}`;
  else if (limitBy === 'model') b = `m:${f.model}`;
  else if (limitBy === 'channel') b = `c:${channelId ?? ''}`;
  else if (limitBy === 'global') b = 'g';
  else if (limitBy.startsWith('header:')) {
    // Requests without the header share one bucket: leaving it out must not escape the limit.
    b = `h:${f.header(limitBy.slice(7).toLowerCase()) ?? ''}`;
  } else b = `?:${limitBy}`;
  return b.length > 96 ? `#${createHash('sha256').update(b).digest('base64url').slice(0, 32)}` : b;
}

/** Kubernetes label-selector semantics (matchLabels AND every matchExpression). */
export function matchesSelector(sel: LabelSelector, labels: Readonly<Record<string, string>>): boolean {
  for (const [k, v] of Object.entries(sel.matchLabels ?? {})) if (labels[k] !== v) return false;
  for (const e of sel.matchExpressions ?? []) {
    const has = Object.hasOwn(labels, e.key);
    const values = e.values ?? [];
    switch (e.operator) {
      case 'In':
        if (!has || !values.includes(labels[e.key]!)) return false;
        break;
      case 'NotIn':
        if (has && values.includes(labels[e.key]!)) return false;
        break;
      case 'Exists':
        if (!has) return false;
        break;
      case 'DoesNotExist':
        if (has) return false;
        break;
    }
  }
  return true;
}

/** Exact paths, or prefixes written with a trailing `*` (`/v1/*`). */
function pathMatcher(paths: readonly string[]): (path: string) => boolean {
  const exact = new Set(paths.filter((p) => !p.endsWith('*')));
  const prefixes = paths.filter((p) => p.endsWith('*')).map((p) => p.slice(0, -1));
  return (path) => exact.has(path) || prefixes.some((p) => path.startsWith(p));
}

function formatMs(ms: number): string {
  for (const [unit, n] of [
    ['d', 86_400_000],
    ['h', 3_600_000],
    ['m', 60_000],
    ['s', 1000],
  ] as const) {
    if (ms % n === 0) return `${ms / n}${unit}`;
  }
  return `${ms}ms`;
}

/** `RateLimit` item for one outcome: remaining quota units and seconds until reset. */
export function rateLimitItem(limit: CompiledLimit, o: CheckOutcome): string {
  const r = Math.max(0, Math.floor(o.remaining * limit.unit));
  return `"${limit.name}";r=${r};t=${Math.max(0, Math.ceil(o.resetMs / 1000))}`;
}

/** Index of the outcome closest to exhaustion among enforcing checks (-1 when there is none). */
export function tightest(checks: readonly LimitCheck[], outcomes: readonly CheckOutcome[]): number {
  let best = -1;
  let bestShare = Infinity;
  for (let i = 0; i < checks.length; i++) {
    const c = checks[i]!;
    if (c.shadow) continue;
    const share = outcomes[i]!.remaining / c.amount;
    if (share < bestShare) {
      best = i;
      bestShare = share;
    }
  }
  return best;
}
