import type { AcquireResult, ConcurrencyGate, GateOption } from '../core/concurrency.ts';
import type { ChannelConfig } from '../core/config/relay-config.ts';
import type { Candidate } from '../core/selection.ts';

/**
 * The channel permit (`limits.maxConcurrent`) for one attempt. When the chosen channel is full,
 * the later peers of its priority tier are asked too: the request takes whichever has room first,
 * waiting only when none has (in all their queues at once). A peer that serves it is moved to
 * position `i`, so the rest of the failover order is kept. A peer without a concurrency limit
 * always has room: then the request does not wait at all and failover moves on to it.
 */
export async function channelPermit(
  gate: ConcurrencyGate,
  candidates: Candidate[],
  i: number,
  opts: { signal: AbortSignal; available: (c: Candidate) => boolean; leaseMarginMs: number },
): Promise<AcquireResult> {
  const tier = candidates[i]!.channel.priority;
  const indexes = [i];
  let unlimitedPeer = false;
  for (let j = i + 1; j < candidates.length && candidates[j]!.channel.priority === tier; j++) {
    const c = candidates[j]!;
    if (!opts.available(c)) continue;
    if (c.channel.limits.maxConcurrent === null) unlimitedPeer = true;
    else indexes.push(j);
  }
  const options: GateOption[] = indexes.map((j) => ({
    channelId: candidates[j]!.channel.id,
    limits: gateLimits(candidates[j]!.channel, opts.leaseMarginMs),
  }));
  const r = await gate.acquireAny(options, { signal: opts.signal, wait: !unlimitedPeer });
  if (!r.ok) return r;
  const j = indexes[r.index]!;
  if (j !== i) [candidates[i], candidates[j]] = [candidates[j]!, candidates[i]!];
  return { ok: true, lease: r.lease };
}

function gateLimits(ch: ChannelConfig, leaseMarginMs: number) {
  return {
    maxConcurrent: ch.limits.maxConcurrent!,
    maxQueue: ch.limits.maxQueue,
    queueTimeoutMs: ch.limits.queueTimeoutMs,
    leaseMs: ch.timeouts.totalMs + leaseMarginMs,
  };
}
