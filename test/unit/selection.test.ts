import { describe, expect, it } from 'vitest';
import { buildModelIndex, orderCandidates } from '../../core/selection.ts';
import { channelConfig, seededRandom } from '../helpers/channels.ts';

/** Pearson's chi-square statistic of observed counts against expected proportions. */
function chiSquare(observed: number[], proportions: number[]): number {
  const n = observed.reduce((a, b) => a + b, 0);
  return observed.reduce((sum, o, i) => {
    const e = n * proportions[i]!;
    return sum + (o - e) ** 2 / e;
  }, 0);
}
// Critical values at p = 0.001.
const CHI2_CRIT = { 2: 13.82, 3: 16.27 } as const;

describe('channel selection', () => {
  const channels = [
    channelConfig('a', { weight: 5 }),
    channelConfig('b', { weight: 3 }),
    channelConfig('c', { weight: 1 }),
    channelConfig('d', { weight: 1 }),
    channelConfig('backup', { priority: 1 }),
  ];
  const tiers = buildModelIndex(channels).get('m')!;

  it('groups candidates in priority tiers, 0 first, leaving out suspended and zero-weight channels', () => {
    const index = buildModelIndex([
      ...channels,
      channelConfig('off', { suspend: true }),
      channelConfig('zero', { weight: 0, suspend: true }),
    ]);
    const t = index.get('m')!;
    expect(t.map((tier) => tier.map((c) => c.channel.name).sort())).toEqual([
      ['a', 'b', 'c', 'd'],
      ['backup'],
    ]);
  });

  it('picks the first channel in proportion to the weights (chi-square, p=0.001)', () => {
    const random = seededRandom(42);
    const n = 20_000;
    const counts = new Map<string, number>();
    for (let i = 0; i < n; i++) {
      const first = orderCandidates(tiers, () => true, 3, random)[0]!.channel.name;
      counts.set(first, (counts.get(first) ?? 0) + 1);
    }
    const observed = ['a', 'b', 'c', 'd'].map((k) => counts.get(k) ?? 0);
    expect(counts.get('backup')).toBeUndefined();
    expect(chiSquare(observed, [0.5, 0.3, 0.1, 0.1])).toBeLessThan(CHI2_CRIT[3]);
    // The same test rejects a plausible wrong implementation (uniform choice) by a wide margin.
    expect(chiSquare(observed, [0.25, 0.25, 0.25, 0.25])).toBeGreaterThan(100 * CHI2_CRIT[3]);
  });

  it('fails over inside the tier before the next tier, and caps the attempts', () => {
    const order = orderCandidates(tiers, () => true, 10, seededRandom(1)).map((c) => c.channel.name);
    expect(order.slice(0, 4).sort()).toEqual(['a', 'b', 'c', 'd']);
    expect(order[4]).toBe('backup');
    expect(orderCandidates(tiers, () => true, 2, seededRandom(1))).toHaveLength(2);
  });

  it('uses the fallback tier only when no channel of the first tier is available', () => {
    const random = seededRandom(7);
    for (let i = 0; i < 200; i++) {
      const some = orderCandidates(tiers, (c) => c.channel.name === 'c', 1, random);
      expect(some.map((c) => c.channel.name)).toEqual(['c']);
    }
    const none = orderCandidates(tiers, (c) => c.channel.priority > 0, 3, random);
    expect(none.map((c) => c.channel.name)).toEqual(['backup']);
    expect(orderCandidates(tiers, () => false, 3, random)).toEqual([]);
  });

  it('keeps weights among the remaining channels when one is unavailable', () => {
    const random = seededRandom(99);
    const counts = { a: 0, b: 0, c: 0, d: 0 } as Record<string, number>;
    for (let i = 0; i < 10_000; i++) {
      counts[orderCandidates(tiers, (c) => c.channel.name !== 'a', 1, random)[0]!.channel.name]!++;
    }
    expect(counts.a).toBe(0);
    expect(chiSquare([counts.b!, counts.c!, counts.d!], [0.6, 0.2, 0.2])).toBeLessThan(CHI2_CRIT[2]);
  });
});
