import { describe, expect, it } from 'vitest';
import { renderFile } from '../../core/config/load.ts';
import { costOf } from '../../core/usage.ts';

// Anthropic bills prompt tokens written to its cache above the input price (1.25x for the 5-minute
// cache) and reads far below it; `cacheWritePer1M` and `cachedInputPer1M` say so.
describe('cache-write pricing', () => {
  const usage = {
    promptTokens: 1_000_000,
    completionTokens: 100_000,
    cachedTokens: 200_000,
    cacheWriteTokens: 300_000,
    reasoningTokens: 0,
    estimated: false,
  };

  it('prices written, read and plain prompt tokens each at their own rate', () => {
    const p = {
      inputPer1M: 3,
      outputPer1M: 15,
      cachedInputPer1M: 0.3,
      cacheWritePer1M: 3.75,
      perRequest: 0,
      perSecond: 0,
    };
    // 500k plain at $3 + 200k read at $0.30 + 300k written at $3.75 + 100k out at $15
    expect(costOf(usage, p, 0)).toBeCloseTo(1.5 + 0.06 + 1.125 + 1.5, 10);
  });

  it('without cacheWritePer1M (older snapshots) written tokens cost the input price', () => {
    const p = { inputPer1M: 3, outputPer1M: 15, cachedInputPer1M: 0.3, perRequest: 0, perSecond: 0 };
    expect(costOf(usage, p, 0)).toBeCloseTo(2.4 + 0.06 + 1.5, 10);
  });
});

describe('cache-write pricing in the config', () => {
  const yaml = (pricing: string) => `apiVersion: v1
kind: Secret
metadata: { name: creds }
stringData: { apiKey: sk-test-123 }
---
apiVersion: kuberelay.io/v1alpha1
kind: Channel
metadata: { name: claude }
spec:
  provider: openai
  baseURL: https://api.example.com/v1
  apiKeySecretRef: { name: creds }
  models: [{ name: claude-sonnet, pricing: ${pricing} }]
`;
  it('is rendered when set, and left out when not', () => {
    const set = renderFile(yaml('{ inputPer1M: "3", cacheWritePer1M: "3.75" }'), 'c.yaml', { generation: 1 });
    expect(set.config.channels[0]!.models[0]!.pricing.cacheWritePer1M).toBe(3.75);
    const unset = renderFile(yaml('{ inputPer1M: "3" }'), 'c.yaml', { generation: 1 });
    expect('cacheWritePer1M' in unset.config.channels[0]!.models[0]!.pricing).toBe(false);
  });
});
