import type { AcquireAnyResult, AcquireResult, ConcurrencyGate, GateOption } from '../core/concurrency.ts';
import type { ChannelConfig } from '../core/config/relay-config.ts';
import type { Candidate } from '../core/selection.ts';

/**
 * The channel permit (`limits.maxConcurrent`) for one attempt. When the chosen channel is full,
 * the later peers of its priority tier are asked too: the request takes whichever has room first,
 * waiting only when none has (in all their queues at once). A peer that serves it is moved to
 * position `i`, so the rest of the failover order is kept. A peer without a concurrency limit
 * always has room: then the request does not wait at all and failover moves on to it.
 */
export function channelPermit(
  gate: ConcurrencyGate,
  candidates: Candidate[],
  i: number,
  opts: { signal: AbortSignal; available: (c: Candidate) => boolean; leaseMarginMs: number },
): AcquireResult | Promise<AcquireResult> {
  const tier = candidates[i]!.channel.priority;
  let indexes: number[] | undefined; // [i, peers with a limit...], only once there is a peer
  let unlimitedPeer = false;
  for (let j = i + 1; j < candidates.length && candidates[j]!.channel.priority === tier; j++) {
    const c = candidates[j]!;
    if (!opts.available(c)) continue;
    if (c.channel.limits.maxConcurrent === null) unlimitedPeer = true;
    else if (indexes === undefined) indexes = [i, j];
    else indexes.push(j);
  }
  const options =
    indexes === undefined
      ? gateOptionOf(candidates[i]!.channel, opts.leaseMarginMs).alone
      : indexes.map((j) => gateOptionOf(candidates[j]!.channel, opts.leaseMarginMs).option);
  const acquire = { signal: opts.signal, wait: !unlimitedPeer };
  const now = gate.tryAnyNow(options, acquire);
  if (now !== undefined) return chosen(candidates, i, indexes, now);
  return gate.acquireAny(options, acquire).then((r) => chosen(candidates, i, indexes, r));
}

/** The permit's channel takes position `i` when it is a peer's. */
function chosen(
  candidates: Candidate[],
  i: number,
  indexes: number[] | undefined,
  r: AcquireAnyResult,
): AcquireResult {
  if (!r.ok) return r;
  const j = indexes === undefined ? i : indexes[r.index]!;
  if (j !== i) [candidates[i], candidates[j]] = [candidates[j]!, candidates[i]!];
  return { ok: true, lease: r.lease };
}

interface CachedOption {
  leaseMarginMs: number;
  option: GateOption;
  /** The option as the only one (a tier without available limited peers: the common case). */
  alone: readonly GateOption[];
}

// A channel's gate option, built once per config snapshot's channel instead of per request.
const cachedOptions = new WeakMap<ChannelConfig, CachedOption>();

function gateOptionOf(ch: ChannelConfig, leaseMarginMs: number): CachedOption {
  let c = cachedOptions.get(ch);
  if (c === undefined || c.leaseMarginMs !== leaseMarginMs) {
    const option: GateOption = { channelId: ch.id, limits: gateLimits(ch, leaseMarginMs) };
    c = { leaseMarginMs, option, alone: [option] };
    cachedOptions.set(ch, c);
  }
  return c;
}

function gateLimits(ch: ChannelConfig, leaseMarginMs: number) {
  return {
    maxConcurrent: ch.limits.maxConcurrent!,
    maxQueue: ch.limits.maxQueue,
    queueTimeoutMs: ch.limits.queueTimeoutMs,
    leaseMs: ch.timeouts.totalMs + leaseMarginMs,
  };
}
