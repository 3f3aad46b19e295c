import type { ChannelConfig } from './config/relay-config.ts';

/** One channel able to serve one model. */
export interface Candidate {
  channel: ChannelConfig;
  model: ChannelConfig['models'][number];
}

/**
 * Model name -> candidates grouped in priority tiers (0 first). Built once per config snapshot so
 * the request path only filters and shuffles small arrays. Suspended and zero-weight channels are
 * left out here: they never get new requests.
 */
export type ModelIndex = Map<string, Candidate[][]>;

export function buildModelIndex(channels: readonly ChannelConfig[]): ModelIndex {
  const byModel = new Map<string, Map<number, Candidate[]>>();
  for (const channel of channels) {
    if (channel.suspend || channel.weight <= 0) continue;
    for (const model of channel.models) {
      let tiers = byModel.get(model.name);
      if (!tiers) {
        tiers = new Map();
        byModel.set(model.name, tiers);
      }
      let tier = tiers.get(channel.priority);
      if (!tier) {
        tier = [];
        tiers.set(channel.priority, tier);
      }
      tier.push({ channel, model });
    }
  }
  const index: ModelIndex = new Map();
  for (const [name, tiers] of byModel) {
    index.set(
      name,
      [...tiers.entries()].sort((a, b) => a[0] - b[0]).map(([, t]) => t),
    );
  }
  return index;
}

/**
 * The order in which to try candidates: tier by tier, and inside a tier a weighted random order
 * without replacement (Efraimidis–Spirakis keys u^(1/w)), so the first pick follows the weights
 * and failover within a tier goes to the other channels of that tier before the next tier.
 * Unavailable (cooling-down) channels are dropped.
 */
export function orderCandidates(
  tiers: readonly Candidate[][],
  available: (c: Candidate) => boolean,
  maxAttempts: number,
  random: () => number = Math.random,
): Candidate[] {
  const out: Candidate[] = [];
  for (const tier of tiers) {
    if (out.length >= maxAttempts) break;
    if (tier.length === 1) {
      if (available(tier[0]!)) out.push(tier[0]!);
      continue;
    }
    const keyed: { c: Candidate; k: number }[] = [];
    for (const c of tier) if (available(c)) keyed.push({ c, k: random() ** (1 / c.channel.weight) });
    keyed.sort((a, b) => b.k - a.k);
    for (const { c } of keyed) out.push(c);
  }
  return out.length > maxAttempts ? out.slice(0, maxAttempts) : out;
}
