// A volcengine Channel's credential is two Secret keys (accessKeyId, secretAccessKey): both are
// rendered into the channel (and reach the adapter); a missing or empty one is named; other
// providers keep their one apiKeySecretRef key.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ConfigError, renderFile } from '../../core/config/load.ts';
import { compileRuntime } from '../../relay/runtime.ts';

const example = readFileSync(new URL('../../examples/volcengine.yaml', import.meta.url), 'utf8');
const env = { VOLC_ACCESS_KEY_ID: 'AKLT-example-id', VOLC_SECRET_ACCESS_KEY: 'c2VjcmV0LWV4YW1wbGU=' };

const file = (stringData: string) => `apiVersion: v1
kind: Secret
metadata: { name: volc }
stringData: ${stringData}
---
apiVersion: kuberelay.io/v1alpha1
kind: Channel
metadata: { name: v }
spec:
  provider: volcengine
  baseURL: https://visual.volcengineapi.com
  apiKeySecretRef: { name: volc }
  models: [{ name: jimeng-video, upstreamName: jimeng_vgfm_t2v_l20 }]
`;

const problems = (text: string): string[] => {
  try {
    renderFile(text, 'f.yaml', { generation: 1 }, {});
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  return [];
};

describe('volcengine channel credentials', () => {
  it('examples/volcengine.yaml renders both keys into the channel, and the adapter target gets them', () => {
    const { config } = renderFile(example, 'examples/volcengine.yaml', { generation: 1 }, env);
    const ch = config.channels[0]!;
    expect(ch.provider).toBe('volcengine');
    expect(ch.credentials).toEqual({
      accessKeyId: 'AKLT-example-id',
      secretAccessKey: 'c2VjcmV0LWV4YW1wbGU=',
    });
    expect(ch.apiKey).toBe('AKLT-example-id');
    // the production relay's figures: one upstream job at a time, 100 waiting
    expect(ch.jobs).toMatchObject({ maxConcurrent: 1, maxQueue: 100, pollIntervalMs: 30_000 });
    const { runtime } = compileRuntime(config);
    const rt = runtime.channels.get(ch.id)!;
    expect(rt.target.credentials).toEqual(ch.credentials);
    // signing, not a header: no credential among the static headers
    expect(JSON.stringify(rt.headers)).not.toContain('c2VjcmV0');
  });

  it('a missing key is named (and the config refused); a missing variable names the variable', () => {
    const out = problems(file('{ accessKeyId: AKLT-id }'));
    expect(out.join('\n')).toContain('Secret default/volc has no key "secretAccessKey"');
    expect(out.join('\n')).not.toContain('AKLT-id');
    expect(() => renderFile(example, 'examples/volcengine.yaml', { generation: 1 }, {})).toThrow(
      /VOLC_ACCESS_KEY_ID is not set/,
    );
  });

  it('an empty key is named, its value never', () => {
    const out = problems(file('{ accessKeyId: AKLT-id, secretAccessKey: "  " }'));
    expect(out.join('\n')).toContain('Secret key "secretAccessKey" is empty');
  });

  it('other providers read the one key apiKeySecretRef.key, and render no credentials', () => {
    const text = `apiVersion: v1
kind: Secret
metadata: { name: k }
stringData: { apiKey: sk-1, accessKeyId: a, secretAccessKey: b }
---
apiVersion: kuberelay.io/v1alpha1
kind: Channel
metadata: { name: o }
spec:
  provider: openai
  baseURL: https://api.openai.com/v1
  apiKeySecretRef: { name: k }
  models: [{ name: gpt-4o-mini }]
`;
    const ch = renderFile(text, 'f', { generation: 1 }, {}).config.channels[0]!;
    expect(ch.apiKey).toBe('sk-1');
    expect('credentials' in ch).toBe(false);
  });
});
