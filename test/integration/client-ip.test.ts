import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { trustProxyFromEnv } from '../../cli/relay.ts';
import type { MockUpstream } from '../../mock-upstream/server.ts';
import { chat, configYaml, type Harness, post, startHarness, startMocks } from '../helpers/harness.ts';

const policy = `apiVersion: kuberelay.io/v1alpha1
kind: RateLimitPolicy
metadata: { name: per-ip }
spec:
  limitBy: clientIP
  limits: [{ requests: 2, per: 1m }]
`;

describe('clientIP limits behind a proxy', () => {
  let mocks: MockUpstream[];
  let h: Harness | undefined;
  beforeAll(async () => {
    mocks = await startMocks(['ip']);
  });
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });
  afterAll(async () => {
    await Promise.all(mocks.map((m) => m.close()));
  });

  const burst = async (ips: string[]) => {
    const statuses: number[] = [];
    for (const ip of ips)
      statuses.push((await post(h!.url, '/v1/chat/completions', chat(), { 'x-forwarded-for': ip })).status);
    return statuses;
  };

  it('ignores X-Forwarded-For by default: a client cannot pick its own bucket', async () => {
    h = await startHarness(configYaml([{ name: 'ip', mock: mocks[0] }], policy));
    expect(await burst(['10.0.0.1', '10.0.0.2', '10.0.0.3'])).toEqual([200, 200, 429]);
  });

  it('with KUBERELAY_TRUST_PROXY the forwarded address is the bucket', async () => {
    h = await startHarness(configYaml([{ name: 'ip', mock: mocks[0] }], policy), {
      trustProxy: trustProxyFromEnv('127.0.0.1'),
    });
    expect(await burst(['10.0.0.1', '10.0.0.1', '10.0.0.2', '10.0.0.1'])).toEqual([200, 200, 200, 429]);
  });

  it('parses the setting', () => {
    expect(trustProxyFromEnv(undefined)).toBe(false);
    expect(trustProxyFromEnv('true')).toBe(true);
    expect(trustProxyFromEnv('2')).toBe(2);
    expect(trustProxyFromEnv('10.0.0.0/8, 127.0.0.1')).toEqual(['10.0.0.0/8', '127.0.0.1']);
  });
});
