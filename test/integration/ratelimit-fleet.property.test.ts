import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Algorithm } from '../../core/ratelimit/limiter.ts';
import type { MockUpstream } from '../../mock-upstream/server.ts';
import { type Admission, overAdmission } from '../helpers/admissions.ts';
import { type Fleet, startFleet } from '../helpers/fleet.ts';
import { chat, configYaml, post, startMocks } from '../helpers/harness.ts';
import { startRedis, type TestRedis } from '../helpers/redis.ts';

// Three relay processes on one redis-server, one of them on a node whose clock is 40 s ahead:
// random arrival patterns, spread over the pods and sent in concurrent bursts, never get more
// admitted than a policy allows in any window (test/helpers/admissions.ts), for every algorithm.
// Real time with periods of 1-2 s; each admission is known to have been decided between the
// request's send and its answer, and only certain violations count. The policies deny while
// Redis cannot answer, so a slow machine cannot turn into admissions nobody counted.

const SKEWED_CLOCK = fileURLToPath(new URL('../helpers/skewed-clock.ts', import.meta.url));

interface Limit {
  model: string;
  algorithm: Algorithm;
  requests: number;
  perMs: number;
}

const LIMITS: Limit[] = [
  { model: 'sliding-5-1s', algorithm: 'sliding-window', requests: 5, perMs: 1000 },
  { model: 'sliding-3-2s', algorithm: 'sliding-window', requests: 3, perMs: 2000 },
  { model: 'fixed-4-1s', algorithm: 'fixed-window', requests: 4, perMs: 1000 },
  { model: 'bucket-4-1s', algorithm: 'token-bucket', requests: 4, perMs: 1000 },
];

let redis: TestRedis;
let mocks: MockUpstream[];
let fleet: Fleet;

beforeAll(async () => {
  redis = await startRedis();
  mocks = await startMocks(['main']);
  const policies = LIMITS.map(
    (l) => `apiVersion: kuberelay.io/v1alpha1
kind: RateLimitPolicy
metadata: { name: ${l.model} }
spec:
  match: { models: [${l.model}] }
  limitBy: header:x-bucket
  algorithm: ${l.algorithm}
  limits: [{ requests: ${l.requests}, per: ${l.perMs / 1000}s }]
  onRedisUnavailable: deny
`,
  ).join('---\n');
  const models = `[${LIMITS.map((l) => `{ name: ${l.model} }`).join(', ')}]`;
  fleet = await startFleet(
    3,
    configYaml([{ name: 'main', mock: mocks[0], models }], policies),
    { REDIS_URL: redis.url },
    'relay',
    (i): Record<string, string> =>
      i === 2 ? { NODE_OPTIONS: `--import ${SKEWED_CLOCK}`, KUBERELAY_TEST_CLOCK_SKEW_MS: '40000' } : {},
  );
});
afterAll(async () => {
  await fleet?.close();
  await Promise.all((mocks ?? []).map((m) => m.close()));
  await redis?.close();
});

const scenario = fc.record({
  limit: fc.constantFrom(...LIMITS),
  arrivals: fc.array(
    fc.record({
      gapMs: fc.integer({ min: 0, max: 400 }),
      burst: fc.integer({ min: 1, max: 6 }),
      pod: fc.integer({ min: 0, max: 2 }),
    }),
    { minLength: 3, maxLength: 10 },
  ),
});

describe('three relays on one Redis never over-admit (property)', () => {
  it('in no window are more than the limit admitted, whatever the arrivals and the pods’ clocks', async () => {
    let admittedTotal = 0;
    let rejectedTotal = 0;
    await fc.assert(
      fc.asyncProperty(scenario, async ({ limit, arrivals }) => {
        const bucket = randomUUID();
        const admitted: Admission[] = [];
        const pending: Promise<void>[] = [];
        for (const a of arrivals) {
          await new Promise((r) => setTimeout(r, a.gapMs));
          for (let i = 0; i < a.burst; i++) {
            const pod = fleet.pods[(a.pod + i) % 3]!;
            const from = Date.now();
            pending.push(
              post(pod.url, '/v1/chat/completions', chat({ model: limit.model }), {
                'x-bucket': bucket,
              }).then((r) => {
                const to = Date.now();
                // 503: Redis did not answer in time (a loaded machine) and the policy denies then.
                expect([200, 429, 503]).toContain(r.status);
                if (r.status === 200) admitted.push({ from, to, amount: 1 });
                else if (r.status === 429) rejectedTotal++;
                else expect(r.json.error.code).toBe('rate_limit_unavailable');
              }),
            );
          }
        }
        await Promise.all(pending);
        admittedTotal += admitted.length;
        expect(overAdmission(limit.algorithm, limit.requests, limit.perMs, admitted)).toBeUndefined();
      }),
      { numRuns: 8, endOnFailure: true },
    );
    // Not vacuous: the runs both admitted and refused.
    expect(admittedTotal).toBeGreaterThan(0);
    expect(rejectedTotal).toBeGreaterThan(0);
  }, 120_000);
});
