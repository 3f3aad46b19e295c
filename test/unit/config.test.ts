import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ConfigError, parseObjects, renderFile } from '../../core/config/load.ts';
import { renderRelayConfig } from '../../core/config/render.ts';

const quickstart = readFileSync(new URL('../../examples/quickstart.yaml', import.meta.url), 'utf8');

const secret = `apiVersion: v1
kind: Secret
metadata: { name: creds }
stringData: { apiKey: sk-test-123 }
`;
const channel = (name: string, extra = '') => `apiVersion: kuberelay.io/v1alpha1
kind: Channel
metadata: { name: ${name} }
spec:
  provider: openai
  baseURL: https://api.example.com/v1
  apiKeySecretRef: { name: creds }
  models: [{ name: gpt-4o-mini }]
${extra}`;

function problemsOf(yaml: string): string[] {
  try {
    renderFile(yaml, '/etc/kuberelay/config.yaml', { generation: 1 });
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  throw new Error('expected the config to be refused');
}

describe('config: parse and render', () => {
  it('renders the quickstart with defaults applied and credentials resolved', () => {
    const { config } = renderFile(quickstart, 'quickstart.yaml', { generation: 7 });
    expect(config.generation).toBe(7);
    expect(config.channels.map((c) => c.id)).toEqual([
      'default/fallback',
      'default/primary-a',
      'default/primary-b',
    ]);
    const fallback = config.channels.find((c) => c.name === 'fallback')!;
    expect(fallback.apiKey).toBe('mock-key-fallback');
    expect(fallback.models[0]).toMatchObject({ name: 'gpt-4o-mini', upstreamName: 'gpt-4.1-nano' });
    expect(fallback.cooldown).toEqual({
      failureThreshold: 5,
      durationMs: 60_000,
      maxDurationMs: 600_000,
      onStatus: [401, 403, 408, 429, '5xx'],
    });
    expect(fallback.limits).toEqual({ maxConcurrent: null, maxQueue: 100, queueTimeoutMs: 30_000 });
    const a = config.channels.find((c) => c.name === 'primary-a')!;
    expect(a.models[0]!.pricing).toEqual({
      inputPer1M: 0.15,
      outputPer1M: 0.6,
      cachedInputPer1M: 0.075,
      perRequest: 0,
      perSecond: 0,
    });
    expect(config.policies).toHaveLength(1);
    expect(config.policies[0]).toMatchObject({
      id: 'default/per-client-ip',
      limitBy: 'clientIP',
      limits: [{ kind: 'requests', amount: 180, perMs: 180_000 }],
      algorithm: 'sliding-window',
      onRedisUnavailable: 'allow',
    });
  });

  it('gives the same hash to the same content and a new one when a credential changes', () => {
    const a = renderFile(quickstart, 'q.yaml', { generation: 1 }).config.hash;
    const b = renderFile(quickstart, 'q.yaml', { generation: 2 }).config.hash;
    const c = renderFile(quickstart.replace('mock-key-primary', 'rotated'), 'q.yaml', { generation: 3 })
      .config.hash;
    expect(a).toBe(b);
    expect(c).not.toBe(a);
  });

  it('names the file, the document, the object and the field path of each problem', () => {
    const problems = problemsOf(
      `${secret}---\n${channel('good')}---\n${channel('bad', '  priority: -1\n  weight: 2.5\n')}`,
    );
    expect(problems).toContain(
      'config.yaml, document 3: Channel default/bad: spec.priority: Too small: expected number to be >=0',
    );
    expect(
      problems.some((p) => p.startsWith('config.yaml, document 3: Channel default/bad: spec.weight:')),
    ).toBe(true);
    expect(problems.every((p) => !p.includes('good'))).toBe(true);
  });

  it('refuses unknown fields, bad URLs, durations and duplicate model names', () => {
    const problems = problemsOf(
      `${secret}---\n${channel('x', '  cooldown: { duration: 5 minutes }\n  bogus: 1\n')}`
        .replace('https://api.example.com/v1', 'ftp://example.com')
        .replace('models: [{ name: gpt-4o-mini }]', 'models: [{ name: a }, { name: a }]'),
    );
    const text = problems.join('\n');
    expect(text).toMatch(/spec\.baseURL: must be an http\(s\) URL/);
    expect(text).toMatch(/spec\.cooldown\.duration: must be a duration/);
    expect(text).toMatch(/spec\.models: model names must be unique/);
    expect(text).toMatch(/Unrecognized key: "bogus"/);
  });

  it('refuses weight 0 unless suspended, and maxDuration shorter than duration', () => {
    expect(problemsOf(`${secret}---\n${channel('x', '  weight: 0\n')}`).join()).toMatch(
      /spec\.weight: weight must be greater than 0 unless the channel is suspended/,
    );
    const { config } = renderFile(`${secret}---\n${channel('x', '  weight: 0\n  suspend: true\n')}`, 'f', {
      generation: 1,
    });
    expect(config.channels[0]!.suspend).toBe(true);
    expect(
      problemsOf(`${secret}---\n${channel('x', '  cooldown: { duration: 5m, maxDuration: 1m }\n')}`).join(),
    ).toMatch(/spec\.cooldown\.maxDuration: maxDuration must be at least duration/);
  });

  it('reports YAML syntax errors with their document', () => {
    expect(problemsOf(`${secret}---\nkind: Channel\n  bad: [indent`)[0]).toMatch(
      /^config\.yaml, document 2: /,
    );
  });

  it('reports unknown kinds and objects defined twice', () => {
    const problems = problemsOf(
      `${secret}---\n${channel('a')}---\n${channel('a')}---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n`,
    );
    expect(problems).toContain('config.yaml, document 3: Channel default/a: defined more than once');
    expect(problems).toContain(
      'config.yaml, document 4: ConfigMap default/x: kind must be Secret, Channel or RateLimitPolicy',
    );
  });

  it('leaves out what cannot be resolved and keeps the rest (operator mode)', () => {
    const objects = parseObjects(
      `${secret}---\n${channel('ok')}---\n${channel('orphan').replace('name: creds', 'name: missing')}---
apiVersion: kuberelay.io/v1alpha1
kind: RateLimitPolicy
metadata: { name: p }
spec:
  match: { channels: [ok, nope] }
  limits: [{ requests: 10, per: 1m }]
`,
      'in-cluster',
    );
    const { config, results } = renderRelayConfig(objects, { generation: 1 });
    expect(config.channels.map((c) => c.name)).toEqual(['ok']);
    expect(config.policies).toEqual([]);
    const orphan = results.find((r) => r.name === 'orphan')!;
    expect(orphan.conditions).toContainEqual({
      type: 'ResolvedRefs',
      status: 'False',
      reason: 'SecretNotFound',
      message: 'spec.apiKeySecretRef: Secret default/missing not found',
    });
    expect(orphan.conditions.find((c) => c.type === 'Accepted')?.status).toBe('False');
    const policy = results.find((r) => r.name === 'p')!;
    expect(policy.conditions.find((c) => c.type === 'ResolvedRefs')).toMatchObject({
      status: 'False',
      reason: 'ChannelNotFound',
    });
    expect(results.find((r) => r.name === 'ok')!.conditions).toContainEqual(
      expect.objectContaining({ type: 'Accepted', status: 'True' }),
    );
  });

  it('refuses a key missing from the Secret and a provider it does not know', () => {
    const text = problemsOf(
      `${secret}---\n${channel('a').replace('{ name: creds }', '{ name: creds, key: other }')}---\n${channel('b').replace('provider: openai', 'provider: bedrock')}`,
    ).join('\n');
    expect(text).toMatch(
      /Channel default\/a: spec\.apiKeySecretRef: Secret default\/creds has no key "other"/,
    );
    expect(text).toMatch(/Channel default\/b: spec\.provider: /);
  });

  it('checks rate limit shapes: exactly one kind, per only where it belongs', () => {
    const policy = (limits: string) => `apiVersion: kuberelay.io/v1alpha1
kind: RateLimitPolicy
metadata: { name: p }
spec:
  limitBy: header:x-team
  limits: ${limits}
`;
    expect(problemsOf(policy('[{ requests: 1, tokens: 2, per: 1m }]')).join()).toMatch(
      /spec\.limits\[0\]: set exactly one of requests, tokens, cost or concurrent/,
    );
    expect(problemsOf(policy('[{ tokens: 5 }]')).join()).toMatch(
      /spec\.limits\[0\]\.per: a tokens limit needs per/,
    );
    expect(problemsOf(policy('[{ concurrent: 5, per: 1s }]')).join()).toMatch(
      /a concurrent limit takes no per/,
    );
    expect(problemsOf(policy('[{ requests: 5, per: 31d }]')).join()).toMatch(/must be between 1s and 30d/);
    const ok = renderFile(policy('[{ cost: "12.50", per: 30d }, { concurrent: 3 }]'), 'f', { generation: 1 });
    expect(ok.config.policies[0]!.limits).toEqual([
      { kind: 'cost', amount: 12.5, perMs: 30 * 86_400_000 },
      { kind: 'concurrent', amount: 3 },
    ]);
  });
});
