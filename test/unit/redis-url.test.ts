import { describe, expect, it } from 'vitest';
import { parseRedisUrl, redactUrl } from '../../redis/connection.ts';
import { keyLayout } from '../../redis/keys.ts';
import { ChannelStats } from '../../relay/channel-stats.ts';
import { podName, sharedStateFromEnv } from '../../relay/shared-state.ts';

describe('REDIS_URL forms', () => {
  it('one server, with credentials, database and TLS', () => {
    expect(parseRedisUrl('redis://localhost')).toEqual({
      mode: 'standalone',
      tls: false,
      nodes: [{ host: 'localhost', port: 6379 }],
    });
    expect(parseRedisUrl('rediss://app:s%40cret@redis.example:6380/2')).toEqual({
      mode: 'standalone',
      tls: true,
      nodes: [{ host: 'redis.example', port: 6380 }],
      username: 'app',
      password: 's@cret',
      db: 2,
    });
    expect(parseRedisUrl('redis://:only-password@[::1]:7000').nodes).toEqual([{ host: '::1', port: 7000 }]);
  });

  it('Sentinel: sentinel hosts, master name, sentinel credentials', () => {
    expect(
      parseRedisUrl(
        'redis+sentinel://:pw@s1:26379,s2,s3:26380/mymaster/1?sentinelPassword=sp&sentinelUsername=su',
      ),
    ).toEqual({
      mode: 'sentinel',
      tls: false,
      nodes: [
        { host: 's1', port: 26379 },
        { host: 's2', port: 26379 },
        { host: 's3', port: 26380 },
      ],
      password: 'pw',
      masterName: 'mymaster',
      db: 1,
      sentinelPassword: 'sp',
      sentinelUsername: 'su',
    });
    expect(() => parseRedisUrl('redis+sentinel://s1:26379')).toThrow(/master name/);
  });

  it('Cluster: seed nodes, no database', () => {
    expect(parseRedisUrl('rediss+cluster://n1:7000,n2:7001')).toEqual({
      mode: 'cluster',
      tls: true,
      nodes: [
        { host: 'n1', port: 7000 },
        { host: 'n2', port: 7001 },
      ],
    });
    expect(() => parseRedisUrl('redis+cluster://n1:7000/3')).toThrow(/no databases/);
  });

  it('refuses anything else, without echoing the password', () => {
    expect(() => parseRedisUrl('http://user:hunter2@redis:6379')).toThrow(/not redis:\/\/host/);
    expect(() => parseRedisUrl('http://user:hunter2@redis:6379')).not.toThrow(/hunter2/);
    expect(() => parseRedisUrl('redis://a:1,b:2')).toThrow(/one server/);
    expect(redactUrl('redis://u:hunter2@h:1?sentinelPassword=x')).toBe(
      'redis://u:***@h:1?sentinelPassword=***',
    );
  });
});

describe('Redis key layout', () => {
  it('hash-tags keys so every multi-key script stays on one Cluster slot', () => {
    const k = keyLayout('kr:');
    const tag = (key: string) => key.match(/\{([^}]*)\}/)![1];
    expect(tag(k.health('ns/a'))).toBe(tag(k.leases('ns/a')));
    expect(tag(k.spendDay('key', 'k1', '2026-01-01'))).toBe(tag(k.spendMonth('key', 'k1', '2026-01')));
    expect(tag(k.limit('default/p:0:s:60000:g'))).toBe(tag(k.limit('other/q:1:b:1000:ip:1.2.3.4')));
    expect(tag(k.podReport('relay-0'))).toBe(tag(k.podIndex()));
    expect(k.health('ns/a').startsWith('kr:')).toBe(true);
  });
});

describe('shared state settings', () => {
  it('reads REDIS_URL and friends from the environment', () => {
    const o = sharedStateFromEnv({
      REDIS_URL: 'redis://r:6379',
      KUBERELAY_REDIS_PREFIX: 'fleet1:',
      KUBERELAY_PERMIT_TTL_MS: '5000',
      POD_NAME: 'relay-abc',
    });
    expect(o).toMatchObject({
      redisUrl: 'redis://r:6379',
      prefix: 'fleet1:',
      permitTtlMs: 5000,
      pod: 'relay-abc',
    });
    expect(sharedStateFromEnv({}).redisUrl).toBeUndefined();
    expect(() => sharedStateFromEnv({ KUBERELAY_REDIS_TIMEOUT_MS: 'soon' })).toThrow(
      /KUBERELAY_REDIS_TIMEOUT_MS/,
    );
    expect(podName({ POD_NAME: 'p' })).toBe('p');
    expect(podName({})).toMatch(new RegExp(`-${process.pid}$`));
  });
});

describe('ChannelStats (pod reports)', () => {
  it('counts attempts and errors over five minutes, keeps the last error and the median latency', () => {
    let now = Date.parse('2026-01-01T00:00:00Z');
    const s = new ChannelStats(() => now);
    for (const ms of [10, 30, 20, 1000]) s.success('a', ms);
    s.failure('a', 'status_503', 'the upstream answered 503');
    expect(s.snapshot('a')).toEqual({
      requests5m: 5,
      errors5m: 1,
      requestsTotal: 5,
      errorsTotal: 1,
      lastError: { code: 'status_503', message: 'the upstream answered 503', at: '2026-01-01T00:00:00.000Z' },
      p50LatencyMs: 20,
    });
    now += 4 * 60_000;
    s.success('a', 5);
    expect(s.snapshot('a')).toMatchObject({ requests5m: 6, requestsTotal: 6 });
    now += 2 * 60_000; // the first burst is older than five minutes now
    expect(s.snapshot('a')).toMatchObject({ requests5m: 1, errors5m: 0, requestsTotal: 6, p50LatencyMs: 5 });
    expect(s.snapshot('unknown')).toEqual({ requests5m: 0, errors5m: 0, requestsTotal: 0, errorsTotal: 0 });
  });
});
