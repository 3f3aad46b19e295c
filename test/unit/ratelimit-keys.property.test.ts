import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { PolicyConfig } from '../../core/config/relay-config.ts';
import { bucketOf, checksFor, compilePolicies, type RequestFacts } from '../../core/ratelimit/policy.ts';

// checksFor remembers each policy's bucket keys per limitBy value: for any sequence of requests
// (values repeating, missing keys and headers, values long enough to be hashed), every check's key
// is still its limit's prefix plus the request's bucket, as computed afresh.

const LIMIT_BY = ['apiKey', 'clientIP', 'model', 'channel', 'global', 'header:X-Tenant'] as const;

const value = fc.oneof(
  fc.constantFrom('a', 'b', '10.0.0.1', '::1'),
  fc.string({ minLength: 90, maxLength: 120 }),
);
const request = fc.record({
  keyId: fc.option(value, { nil: undefined }),
  ip: value,
  model: value,
  tenant: fc.option(value, { nil: undefined }),
  channel: fc.option(value, { nil: undefined }),
});

describe('RateLimitPolicy bucket keys (property)', () => {
  it('are the limit prefix plus the bucket of each request, however often its values repeat', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...LIMIT_BY),
        fc.array(request, { minLength: 1, maxLength: 40 }),
        (limitBy, reqs) => {
          const config: PolicyConfig = {
            id: 'default/p',
            namespace: 'default',
            name: 'p',
            generation: 1,
            match: {},
            limitBy,
            limits: [
              { kind: 'requests', amount: 10, perMs: 60_000 },
              { kind: 'tokens', amount: 1000, perMs: 60_000 },
            ],
            algorithm: 'sliding-window',
            onRedisUnavailable: 'allow',
            shadow: false,
          };
          const compiled = compilePolicies([config]);
          const policy = [...compiled.request, ...compiled.attempt][0]!;
          for (const r of reqs) {
            const f: RequestFacts = {
              model: r.model,
              path: '/v1/chat/completions',
              keyId: r.keyId,
              labels: {},
              ip: r.ip,
              header: (n) => (n === 'x-tenant' ? r.tenant : undefined),
            };
            const { checks } = checksFor([policy], f, 5, r.channel);
            const bucket = bucketOf(limitBy, f, r.channel);
            expect(checks.map((c) => c.key)).toEqual(policy.limits.map((l) => l.keyPrefix + bucket));
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});
