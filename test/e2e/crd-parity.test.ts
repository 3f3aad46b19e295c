import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { stringify } from 'yaml';
import { parseObjects } from '../../core/config/load.ts';
import { channelSchema, policySchema } from '../../core/config/schema.ts';
import { type ClusterClient, connect } from '../cluster/control-plane.ts';

/**
 * The CRDs (what the API server enforces) and the zod schemas (what the relay and operator
 * enforce) must agree: every fixture is accepted by both or refused by both.
 */

const CRDS = fileURLToPath(new URL('../../crds/', import.meta.url));

const channel = (spec: Record<string, unknown>, name = 'c') => ({
  apiVersion: 'kuberelay.io/v1alpha1',
  kind: 'Channel',
  metadata: { name, namespace: 'default' },
  spec: {
    provider: 'openai',
    baseURL: 'https://api.openai.com/v1',
    apiKeySecretRef: { name: 'creds' },
    models: [{ name: 'gpt-4o-mini' }],
    ...spec,
  },
});
const policy = (spec: Record<string, unknown>, name = 'p') => ({
  apiVersion: 'kuberelay.io/v1alpha1',
  kind: 'RateLimitPolicy',
  metadata: { name, namespace: 'default' },
  spec: { limits: [{ requests: 10, per: '1m' }], ...spec },
});

const accepted: [string, object][] = [
  ['a minimal channel', channel({})],
  [
    'a channel with every field',
    channel({
      provider: 'openai-compatible',
      baseURL: 'http://mock.kuberelay.svc:9100/v1',
      apiKeySecretRef: { name: 'creds', key: 'api.key-2' },
      models: [
        {
          name: 'gpt-4o-mini',
          upstreamName: 'gpt-4.1-nano',
          pricing: { inputPer1M: '0.15', outputPer1M: '0.6' },
        },
        {
          name: 'org/model:v1',
          pricing: { cachedInputPer1M: '0', cacheWritePer1M: '3.75', perRequest: '0.04', perSecond: '0.001' },
        },
        { name: 'tts-1', pricing: { perCharacter: '0.000015' } },
      ],
      priority: 1000,
      weight: 10000,
      limits: { maxConcurrent: 20, maxQueue: 0, queueTimeout: '1h' },
      cooldown: { failureThreshold: 3, duration: '5s', maxDuration: '24h', onStatus: [429, '5xx', 401] },
      timeouts: { connect: '500ms', firstByte: '1m30s', total: '24h' },
      suspend: false,
      allowLinkLocal: false,
    }),
  ],
  [
    'a metadata-address channel that opts in (render decides, not the schema)',
    channel({ baseURL: 'http://169.254.169.254/v1', allowLinkLocal: true }),
  ],
  ['a suspended channel with weight 0', channel({ weight: 0, suspend: true })],
  [
    'an azure-openai channel with a dated API version, static headers and a first-token timeout',
    channel({
      provider: 'azure-openai',
      baseURL: 'https://res.openai.azure.com',
      azure: { apiVersion: '2024-10-21' },
      headers: { 'OpenAI-Organization': 'org-1', 'x-ms-useragent': "kuberelay/1 (team's)" },
      timeouts: { firstToken: '15s' },
    }),
  ],
  [
    'an azure-openai channel with azure: {} (apiVersion v1)',
    channel({ provider: 'azure-openai', azure: {} }),
  ],
  ['a gemini channel', channel({ provider: 'gemini', baseURL: 'https://generativelanguage.googleapis.com' })],
  ['an anthropic channel', channel({ provider: 'anthropic', baseURL: 'https://api.anthropic.com' })],
  ['a volcengine channel', channel({ provider: 'volcengine', baseURL: 'https://visual.volcengineapi.com' })],
  ['a minimal policy', policy({})],
  [
    'a policy with every field',
    policy({
      match: {
        models: ['gpt-4o-mini'],
        apiKeys: {
          matchLabels: { team: 'a' },
          matchExpressions: [{ key: 'tier', operator: 'In', values: ['x'] }],
        },
        channels: ['c'],
        paths: ['/v1/chat/completions'],
      },
      limitBy: 'header:x-team',
      limits: [
        { tokens: 1000, per: '36h' },
        { cost: '12.50', per: '30d' },
        { concurrent: 3 },
        { requests: 1, per: '1s' },
      ],
      algorithm: 'token-bucket',
      onRedisUnavailable: 'deny',
      shadow: true,
    }),
  ],
  ['a policy per 720h', policy({ limits: [{ requests: 5, per: '720h' }] })],
];

const refused: [string, object][] = [
  ['weight 0 without suspend', channel({ weight: 0 })],
  ['a negative priority', channel({ priority: -1 })],
  ['a priority too high', channel({ priority: 1001 })],
  ['an ftp URL', channel({ baseURL: 'ftp://example.com/v1' })],
  ['a URL with a query', channel({ baseURL: 'https://example.com/v1?x=1' })],
  ['an unknown provider', channel({ provider: 'bedrock' })],
  ['no models', channel({ models: [] })],
  ['duplicate model names', channel({ models: [{ name: 'a' }, { name: 'a' }] })],
  ['a bad model name', channel({ models: [{ name: ' spaced out' }] })],
  ['a bad price', channel({ models: [{ name: 'a', pricing: { inputPer1M: '-1' } }] })],
  ['a bad cache-write price', channel({ models: [{ name: 'a', pricing: { cacheWritePer1M: '1e3' } }] })],
  ['a bad per-character price', channel({ models: [{ name: 'a', pricing: { perCharacter: '0.1.5' } }] })],
  ['maxDuration below duration', channel({ cooldown: { duration: '5m', maxDuration: '1m' } })],
  ['a prose duration', channel({ cooldown: { duration: '5 minutes' } })],
  ['days where a day is too long', channel({ cooldown: { duration: '2d' } })],
  ['a queue timeout over its bound', channel({ limits: { queueTimeout: '2h' } })],
  ['a zero threshold', channel({ cooldown: { failureThreshold: 0 } })],
  ['an out-of-range status', channel({ cooldown: { onStatus: [600] } })],
  ['a bad status class', channel({ cooldown: { onStatus: ['6xx'] } })],
  ['a zero maxConcurrent', channel({ limits: { maxConcurrent: 0 } })],
  ['a bad secret key', channel({ apiKeySecretRef: { name: 'creds', key: 'a/b' } })],
  ['an uppercase name', channel({}, 'Bad-Name')],
  ['allowLinkLocal as a number', channel({ allowLinkLocal: 1 })],
  ['a static Authorization header', channel({ headers: { Authorization: 'Bearer x' } })],
  ['a static api-key header in any case', channel({ headers: { 'API-Key': 'x' } })],
  ['a static x-goog-api-key header', channel({ headers: { 'X-Goog-Api-Key': 'x' } })],
  ['a static cookie header', channel({ headers: { cookie: 'a=b' } })],
  ['a static proxy-authorization header', channel({ headers: { 'proxy-authorization': 'x' } })],
  ['a static x-api-key header', channel({ headers: { 'x-api-key': 'x' } })],
  ['a header name with a space', channel({ headers: { 'x bad': 'x' } })],
  ['a header value with a line break', channel({ headers: { 'x-a': 'a\r\nx-b: c' } })],
  ['azure on a non-azure channel', channel({ azure: { apiVersion: 'v1' } })],
  ['a bad azure apiVersion', channel({ provider: 'azure-openai', azure: { apiVersion: 'latest' } })],
  ['a firstToken over 1h', channel({ timeouts: { firstToken: '2h' } })],
  ['a policy limit with two kinds', policy({ limits: [{ requests: 1, tokens: 2, per: '1m' }] })],
  ['a policy limit without per', policy({ limits: [{ tokens: 5 }] })],
  ['a concurrent limit with per', policy({ limits: [{ concurrent: 5, per: '1s' }] })],
  ['a window over 30d', policy({ limits: [{ requests: 5, per: '31d' }] })],
  ['days mixed with hours', policy({ limits: [{ requests: 5, per: '1d12h' }] })],
  ['a window under 1s', policy({ limits: [{ requests: 5, per: '500ms' }] })],
  ['a bad limitBy', policy({ limitBy: 'ip' })],
  ['no limits', policy({ limits: [] })],
  ['a bad algorithm', policy({ algorithm: 'leaky-bucket' })],
  ['a relative path', policy({ match: { paths: ['v1/chat'] } })],
];

function zodAccepts(obj: { kind: string }): boolean {
  return (obj.kind === 'Channel' ? channelSchema : policySchema).safeParse(obj).success;
}

describe('CRDs and zod schemas agree', () => {
  let k: ClusterClient;
  beforeAll(async () => {
    k = connect(inject('kubeconfig'));
    const applied = await k.kubectl(['apply', '--server-side', '-f', CRDS]);
    expect(applied.code, applied.stderr).toBe(0);
    const established = await k.kubectl([
      'wait',
      '--for=condition=Established',
      '--timeout=60s',
      'crd/channels.kuberelay.io',
      'crd/ratelimitpolicies.kuberelay.io',
    ]);
    expect(established.code, established.stderr).toBe(0);
  });

  const serverAccepts = async (obj: object) => {
    const r = await k.kubectl(['apply', '--dry-run=server', '-f', '-'], { input: stringify(obj) });
    return { ok: r.code === 0, message: r.stderr };
  };

  for (const [what, obj] of accepted) {
    it(`both accept ${what}`, async () => {
      expect(zodAccepts(obj as { kind: string })).toBe(true);
      const server = await serverAccepts(obj);
      expect(server.ok, server.message).toBe(true);
    });
  }

  for (const [what, obj] of refused) {
    it(`both refuse ${what}`, async () => {
      expect(zodAccepts(obj as { kind: string })).toBe(false);
      const server = await serverAccepts(obj);
      expect(server.ok).toBe(false);
      expect(server.message).toMatch(/invalid|Invalid|Unsupported|Duplicate|must|Required|should/);
    });
  }

  it.each(['quickstart.yaml', 'providers.yaml', 'volcengine.yaml'])(
    'every object of examples/%s is accepted by both',
    async (name) => {
      const file = fileURLToPath(new URL(`../../examples/${name}`, import.meta.url));
      for (const { object } of parseObjects(readFileSync(file, 'utf8'), file)) {
        const obj = object as { kind: string };
        if (obj.kind !== 'Secret') expect(zodAccepts(obj), JSON.stringify(obj)).toBe(true);
        const server = await serverAccepts(obj);
        expect(server.ok, server.message).toBe(true);
      }
    },
  );

  it('the API server fills in the same defaults as zod', async () => {
    const obj = channel({}, 'defaults');
    const r = await k.kubectl(['apply', '--dry-run=server', '-o', 'json', '-f', '-'], {
      input: stringify(obj),
    });
    expect(r.code, r.stderr).toBe(0);
    const fromServer = JSON.parse(r.stdout).spec;
    const fromZod = channelSchema.parse(obj).spec;
    expect(fromServer).toEqual(fromZod);
  });
});
