import { describe, expect, it } from 'vitest';
import type { PolicyConfig } from '../../core/config/relay-config.ts';
import type { LimitCheck } from '../../core/ratelimit/limiter.ts';
import { MemoryLimiter } from '../../core/ratelimit/memory-limiter.ts';
import {
  bucketOf,
  checksFor,
  compilePolicies,
  matchesSelector,
  type RequestFacts,
  rateLimitItem,
  tightest,
} from '../../core/ratelimit/policy.ts';

function policy(name: string, over: Partial<PolicyConfig> = {}): PolicyConfig {
  return {
    id: `default/${name}`,
    namespace: 'default',
    name,
    generation: 1,
    match: {},
    limitBy: 'apiKey',
    limits: [{ kind: 'requests', amount: 10, perMs: 60_000 }],
    algorithm: 'sliding-window',
    onRedisUnavailable: 'allow',
    shadow: false,
    ...over,
  };
}

function facts(over: Partial<RequestFacts> = {}): RequestFacts {
  const headers: Record<string, string> = { 'x-tenant': 'acme' };
  return {
    model: 'gpt-4o-mini',
    path: '/v1/chat/completions',
    keyId: 'key1',
    labels: { team: 'search', tier: 'gold' },
    ip: '10.0.0.7',
    header: (n) => headers[n],
    ...over,
  };
}

describe('RateLimitPolicy matching', () => {
  it('an empty match applies to every request; each criterion narrows it', () => {
    const [all, byModel, byPath, prefix] = compilePolicies([
      policy('all'),
      policy('model', { match: { models: ['gpt-4o'] } }),
      policy('path', { match: { paths: ['/v1/embeddings'] } }),
      policy('prefix', { match: { paths: ['/v1/*'] } }),
    ]).request;
    expect(all!.matches(facts())).toBe(true);
    expect(byModel!.matches(facts())).toBe(false);
    expect(byModel!.matches(facts({ model: 'gpt-4o' }))).toBe(true);
    expect(byPath!.matches(facts())).toBe(false);
    expect(byPath!.matches(facts({ path: '/v1/embeddings' }))).toBe(true);
    expect(prefix!.matches(facts())).toBe(true);
  });

  it('apiKeys selects keys by label, and never matches requests without a key', () => {
    const [p] = compilePolicies([
      policy('gold', { match: { apiKeys: { matchLabels: { tier: 'gold' } } } }),
    ]).request;
    expect(p!.matches(facts())).toBe(true);
    expect(p!.matches(facts({ labels: { tier: 'free' } }))).toBe(false);
    expect(p!.matches(facts({ keyId: undefined, labels: {} }))).toBe(false);
  });

  it('label selectors follow Kubernetes semantics', () => {
    const labels = { team: 'search', tier: 'gold' };
    expect(matchesSelector({}, labels)).toBe(true);
    expect(matchesSelector({ matchLabels: { team: 'search' } }, labels)).toBe(true);
    expect(matchesSelector({ matchLabels: { team: 'ads' } }, labels)).toBe(false);
    const expr = (operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist', key: string, values?: string[]) =>
      matchesSelector({ matchExpressions: [{ key, operator, values }] }, labels);
    expect(expr('In', 'tier', ['gold', 'silver'])).toBe(true);
    expect(expr('In', 'tier', ['free'])).toBe(false);
    expect(expr('In', 'missing', ['x'])).toBe(false);
    expect(expr('NotIn', 'tier', ['free'])).toBe(true);
    expect(expr('NotIn', 'tier', ['gold'])).toBe(false);
    expect(expr('NotIn', 'missing', ['x'])).toBe(true);
    expect(expr('Exists', 'team')).toBe(true);
    expect(expr('Exists', 'missing')).toBe(false);
    expect(expr('DoesNotExist', 'missing')).toBe(true);
    expect(expr('DoesNotExist', 'team')).toBe(false);
  });

  it('channel policies (match.channels or limitBy channel) are checked per attempt', () => {
    const compiled = compilePolicies([
      policy('req'),
      policy('upstream', { match: { channels: ['default/video'] } }),
      policy('per-channel', { limitBy: 'channel' }),
    ]);
    expect(compiled.request.map((p) => p.config.name)).toEqual(['req']);
    expect(compiled.attempt.map((p) => p.config.name)).toEqual(['upstream', 'per-channel']);
    const [upstream, perChannel] = compiled.attempt;
    expect(upstream!.matches(facts(), 'default/video')).toBe(true);
    expect(upstream!.matches(facts(), 'default/text')).toBe(false);
    expect(upstream!.matches(facts())).toBe(false);
    expect(perChannel!.matches(facts(), 'default/text')).toBe(true);
  });
});

describe('buckets (limitBy)', () => {
  it('puts requests in the bucket the policy names', () => {
    const f = facts();
    expect(bucketOf('apiKey', f)).toBe('k:key1');
    expect(bucketOf('apiKey', facts({ keyId: undefined }))).toBe('ip:10.0.0.7'); // no auth: per client
    expect(bucketOf('clientIP', f)).toBe('ip:10.0.0.7');
    expect(bucketOf('model', f)).toBe('m:gpt-4o-mini');
    expect(bucketOf('channel', f, 'default/a')).toBe('c:default/a');
    expect(bucketOf('global', f)).toBe('g');
    expect(bucketOf('header:X-Tenant', f)).toBe('h:acme');
    // Leaving the header out must not escape the limit: those requests share one bucket.
    expect(bucketOf('header:x-missing', f)).toBe('h:');
  });

  it('hashes long values so keys stay short', () => {
    const long = 'x'.repeat(500);
    const b = bucketOf('header:x-tenant', facts({ header: () => long }));
    expect(b).toMatch(/^#[A-Za-z0-9_-]{32}$/);
    expect(bucketOf('header:x-tenant', facts({ header: () => long }))).toBe(b);
  });

  it('builds one check per limit, with reservations per kind', () => {
    const p = policy('mixed', {
      limitBy: 'global',
      algorithm: 'fixed-window',
      limits: [
        { kind: 'requests', amount: 100, perMs: 60_000 },
        { kind: 'tokens', amount: 1000, perMs: 3_600_000 },
        { kind: 'tokens', amount: 50, perMs: 1000 },
        { kind: 'cost', amount: 5, perMs: 86_400_000 },
        { kind: 'concurrent', amount: 2 },
      ],
    });
    const { checks, owners } = checksFor(compilePolicies([p]).request, facts(), 120);
    expect(checks.map((c) => [c.kind, c.reserve, c.algorithm, c.key])).toEqual([
      ['requests', 1, 'fixed-window', 'default/mixed:0:f:60000:g'],
      ['tokens', 120, 'fixed-window', 'default/mixed:1:f:3600000:g'],
      ['tokens', 50, 'fixed-window', 'default/mixed:2:f:1000:g'], // clamped to the budget
      ['cost', 0, 'fixed-window', 'default/mixed:3:f:86400000:g'],
      ['concurrent', 1, 'fixed-window', 'default/mixed:4:c:0:g'],
    ]);
    expect(owners.map((o) => o.limit.name)).toEqual(['mixed-0', 'mixed-1', 'mixed-2', 'mixed-3', 'mixed-4']);
    expect(owners.map((o) => o.limit.summary)).toEqual([
      '100 requests per 1m',
      '1000 tokens per 1h',
      '50 tokens per 1s',
      '$5 per 1d',
      '2 concurrent requests',
    ]);
  });
});

describe('RateLimit header fields', () => {
  it('formats RateLimit-Policy and RateLimit items (draft-ietf-httpapi-ratelimit-headers)', () => {
    const [ip] = compilePolicies([
      policy('per-client-ip', {
        limitBy: 'clientIP',
        limits: [{ kind: 'requests', amount: 180, perMs: 180_000 }],
      }),
    ]).request;
    const limit = ip!.limits[0]!;
    expect(limit.policyItem).toBe('"per-client-ip";q=180;w=180');
    expect(rateLimitItem(limit, { allowed: false, remaining: 0, resetMs: 41_200 })).toBe(
      '"per-client-ip";r=0;t=42',
    );
    const [budget] = compilePolicies([
      policy('budget', { limits: [{ kind: 'cost', amount: 2.5, perMs: 86_400_000 }] }),
    ]).request;
    expect(budget!.limits[0]!.policyItem).toBe('"budget";q=2500000;w=86400;qu="usd-micros"');
    expect(rateLimitItem(budget!.limits[0]!, { allowed: true, remaining: 1.2345678, resetMs: 0 })).toBe(
      '"budget";r=1234567;t=0',
    );
  });

  it('reports the enforcing limit closest to exhaustion', () => {
    const mk = (amount: number, shadow = false) =>
      ({
        amount,
        shadow,
        kind: 'requests',
        algorithm: 'fixed-window',
        key: 'k',
        perMs: 1,
        reserve: 1,
      }) as LimitCheck;
    const outcomes = [
      { allowed: true, remaining: 50, resetMs: 0 },
      { allowed: true, remaining: 2, resetMs: 0 },
      { allowed: false, remaining: 0, resetMs: 0 },
    ];
    expect(tightest([mk(100), mk(10), mk(1, true)], outcomes)).toBe(1);
    expect(tightest([mk(1, true)], [outcomes[2]!])).toBe(-1);
  });
});

describe('MemoryLimiter algorithms', () => {
  const check = (algorithm: LimitCheck['algorithm'], amount: number, perMs: number): LimitCheck => ({
    key: `k:${algorithm}`,
    kind: 'requests',
    algorithm,
    amount,
    perMs,
    reserve: 1,
    shadow: false,
  });
  const run = async (limiter: MemoryLimiter, c: LimitCheck, n: number) => {
    let ok = 0;
    for (let i = 0; i < n; i++) if ((await limiter.check([c])).allowed) ok++;
    return ok;
  };

  it('sliding window: the window slides with the clock, counted in twentieths', async () => {
    let now = 0;
    const limiter = new MemoryLimiter({ now: () => now });
    const c = check('sliding-window', 10, 1000);
    expect(await run(limiter, c, 15)).toBe(10);
    now = 999;
    expect(await run(limiter, c, 1)).toBe(0);
    // Taken in the slot [0, 50 ms): counted until a whole window after that slot ends.
    now = 1049;
    expect(await run(limiter, c, 1)).toBe(0);
    now = 1050;
    expect(await run(limiter, c, 15)).toBe(10);
    await limiter.close();
  });

  it('fixed window: resets at each multiple of the window', async () => {
    let now = 999;
    const limiter = new MemoryLimiter({ now: () => now });
    const c = check('fixed-window', 10, 1000);
    expect(await run(limiter, c, 15)).toBe(10);
    now = 1000;
    expect(await run(limiter, c, 15)).toBe(10);
    await limiter.close();
  });

  it('token bucket: bursts to the capacity and refills at amount per window', async () => {
    let now = 0;
    const limiter = new MemoryLimiter({ now: () => now });
    const c = check('token-bucket', 10, 1000);
    expect(await run(limiter, c, 15)).toBe(10);
    now = 500;
    expect(await run(limiter, c, 15)).toBe(5);
    await limiter.close();
  });

  it('sweeps idle buckets', async () => {
    let now = 0;
    const limiter = new MemoryLimiter({ now: () => now });
    const sliding = check('sliding-window', 10, 1000);
    const bucket = check('token-bucket', 10, 1000);
    await limiter.check([sliding, bucket]);
    now = 50;
    limiter.sweep();
    expect(limiter.size).toBe(2); // still in use
    now = 500;
    limiter.sweep();
    expect(limiter.size).toBe(1); // the bucket refilled: nothing to remember
    now = 5000;
    limiter.sweep();
    expect(limiter.size).toBe(0);
    await limiter.close();
  });
});
