import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ConfigError, renderFile } from '../../core/config/load.ts';
import {
  CREDENTIAL_HEADERS,
  channelSchema,
  PROVIDERS,
  SUPPORTED_PROVIDERS,
} from '../../core/config/schema.ts';
import { hasAdapter } from '../../providers/index.ts';

const channel = (spec: Record<string, unknown>) => ({
  apiVersion: 'kuberelay.io/v1alpha1',
  kind: 'Channel',
  metadata: { name: 'c' },
  spec: {
    provider: 'openai',
    baseURL: 'https://api.openai.com/v1',
    apiKeySecretRef: { name: 'creds' },
    models: [{ name: 'gpt-4o-mini' }],
    ...spec,
  },
});

const file = (secretValue: string, spec = '') => `apiVersion: v1
kind: Secret
metadata: { name: creds }
stringData: { apiKey: "${secretValue}" }
---
apiVersion: kuberelay.io/v1alpha1
kind: Channel
metadata: { name: c }
spec:
  provider: openai
  baseURL: https://api.openai.com/v1
  apiKeySecretRef: { name: creds }
  models: [{ name: gpt-4o-mini }]
${spec}`;

/** `${NAME}`, written without a template placeholder. */
const envRef = (name: string) => `\${${name}}`;

const problems = (f: () => unknown): string[] => {
  try {
    f();
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  return [];
};

describe('Channel headers', () => {
  it('refuses every credential header in any letter case', () => {
    const casing = (name: string) =>
      fc
        .array(fc.boolean(), { minLength: name.length, maxLength: name.length })
        .map((up) => [...name].map((ch, i) => (up[i] ? ch.toUpperCase() : ch)).join(''));
    fc.assert(
      fc.property(fc.constantFrom(...CREDENTIAL_HEADERS).chain(casing), (name) => {
        const r = channelSchema.safeParse(channel({ headers: { 'x-ok': '1', [name]: 'secret-value' } }));
        expect(r.success).toBe(false);
        const text = JSON.stringify(r.error!.issues);
        expect(text).toContain(`must not set the credential header ${name}`);
        expect(text).not.toContain('secret-value');
      }),
    );
  });

  it('accepts other headers and renders them (and only when set)', () => {
    const { config } = renderFile(file('k', '  headers: { OpenAI-Organization: org-1 }\n'), 'f', {
      generation: 1,
    });
    expect(config.channels[0]!.headers).toEqual({ 'OpenAI-Organization': 'org-1' });
    const plain = renderFile(file('k'), 'f', { generation: 1 }).config.channels[0]!;
    expect('headers' in plain).toBe(false);
    expect('firstTokenMs' in plain.timeouts).toBe(false);
  });

  it('refuses header values with line breaks', () => {
    expect(channelSchema.safeParse(channel({ headers: { 'x-a': 'a\r\nx-b: c' } })).success).toBe(false);
  });
});

describe('azure and firstToken', () => {
  it('azure is only for azure-openai; apiVersion defaults to v1', () => {
    expect(channelSchema.safeParse(channel({ azure: {} })).success).toBe(false);
    const r = channelSchema.parse(channel({ provider: 'azure-openai', azure: {} }));
    expect(r.spec.azure).toEqual({ apiVersion: 'v1' });
  });

  it('renders azure.apiVersion and timeouts.firstToken in milliseconds', () => {
    const text = file('k', '  timeouts: { firstToken: 1500ms }\n')
      .replace('provider: openai', 'provider: azure-openai\n  azure: { apiVersion: 2024-10-21 }')
      .replace('https://api.openai.com/v1', 'https://res.openai.azure.com');
    const ch = renderFile(text, 'f', { generation: 1 }).config.channels[0]!;
    expect(ch.provider).toBe('azure-openai');
    expect(ch.azure).toEqual({ apiVersion: '2024-10-21' });
    expect(ch.timeouts.firstTokenMs).toBe(1500);
  });
});

describe('ENV_NAME references in standalone Secrets', () => {
  it('reads the value from the environment', () => {
    const { config } = renderFile(
      file(envRef('UPSTREAM_KEY')),
      'f',
      { generation: 1 },
      { UPSTREAM_KEY: 'sk-env' },
    );
    expect(config.channels[0]!.apiKey).toBe('sk-env');
  });

  it('a missing variable is a config error that names it, never a value', () => {
    const p = problems(() =>
      renderFile(file(envRef('MISSING_KEY')), 'cfg.yaml', { generation: 1 }, { OTHER: 'sk-secret' }),
    );
    expect(p).toEqual([
      'cfg.yaml, document 1: Secret creds: stringData.apiKey: environment variable MISSING_KEY is not set',
    ]);
  });

  it('leaves values without a reference alone', () => {
    const { config } = renderFile(file('sk-$plain{x}'), 'f', { generation: 1 }, {});
    expect(config.channels[0]!.apiKey).toBe('sk-$plain{x}');
  });
});

describe('providers', () => {
  it('the render-time supported set is exactly the registry', () => {
    for (const p of PROVIDERS) expect(SUPPORTED_PROVIDERS.has(p), p).toBe(hasAdapter(p));
  });
});
