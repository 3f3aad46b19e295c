import type { ChannelConfig } from '../../core/config/relay-config.ts';

/** A rendered channel with defaults, for unit tests of the core. */
export function channelConfig(name: string, over: Partial<ChannelConfig> = {}): ChannelConfig {
  return {
    id: `default/${name}`,
    namespace: 'default',
    name,
    generation: 1,
    provider: 'openai-compatible',
    baseURL: 'http://127.0.0.1:1/v1',
    apiKey: 'k',
    models: [
      {
        name: 'm',
        upstreamName: 'm',
        pricing: { inputPer1M: 0, outputPer1M: 0, cachedInputPer1M: 0, perRequest: 0, perSecond: 0 },
      },
    ],
    priority: 0,
    weight: 1,
    suspend: false,
    limits: { maxConcurrent: null, maxQueue: 100, queueTimeoutMs: 30_000 },
    cooldown: { failureThreshold: 5, durationMs: 60_000, maxDurationMs: 600_000, onStatus: [429, '5xx'] },
    timeouts: { connectMs: 1000, firstByteMs: 5000, totalMs: 10_000 },
    ...over,
  };
}

/** Deterministic PRNG (mulberry32) so statistical tests are repeatable. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
