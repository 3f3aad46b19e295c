import type { ChannelHealth, CooldownPolicy } from '../cooldown.ts';
import type { Period } from '../period.ts';
import type { SpendRecord, SpendScope, SpendTotals } from '../spend.ts';

/**
 * Every piece of state the relay shares between requests (and, with Redis, between pods) goes
 * through this interface: channel health/cooldowns, concurrency leases and spend counters.
 * `memory-store.ts` is the embedded single-instance implementation; the Redis one fits the same
 * contract. Methods that may touch the network are async; the hot path only reads the
 * synchronous local cooldown view.
 */

export interface Lease {
  readonly channelId: string;
  readonly id: string;
}

/** Health of a shared backend (Redis), for metrics and readiness; absent for in-process stores. */
export interface SharedBackendStatus {
  /** Connected and answering in time. */
  readonly up: boolean;
  /** Why it was last unusable. */
  readonly lastError: string | undefined;
  /** Called for every command that failed or was refused because the backend is away. */
  onCommandError(listener: (op: string) => void): () => void;
}

export type CooldownListener = (channelId: string, cooldownUntil: number) => void;

export interface StateStore {
  readonly kind: 'memory' | 'redis';

  /** Local view for the hot path: epoch ms until which the channel cools down (0 = not). */
  cooldownUntil(channelId: string): number;
  recordFailure(channelId: string, policy: CooldownPolicy, retryAfterMs?: number): Promise<ChannelHealth>;
  /**
   * A request sent at `sentAt` (epoch ms; default now) completed well. It never ends a cooldown
   * that began after it was sent, nor an upstream's Retry-After rest.
   */
  recordSuccess(channelId: string, sentAt?: number): Promise<void>;
  resetChannel(channelId: string): Promise<void>;
  channelHealth(channelId: string): Promise<ChannelHealth>;
  /** Called when a channel enters or leaves cooldown (on every pod, for shared stores). */
  onCooldownChange(listener: CooldownListener): () => void;

  /** Take one of `max` permits for the channel, or null when all are taken. Leases expire. */
  tryAcquire(channelId: string, max: number, leaseMs: number): Promise<Lease | null>;
  /** tryAcquire() answered at once, on a store that never waits (the embedded one). */
  tryAcquireNow?(channelId: string, max: number, leaseMs: number): Lease | null;
  release(lease: Lease): Promise<void>;
  /** Called when a permit for the channel may have become free (wakes queued requests). */
  onRelease(listener: (channelId: string) => void): () => void;

  /** Counts one accounted request (cost and tokens) for its channel and key, per day and month. */
  recordSpend(record: SpendRecord): Promise<void>;
  spend(scope: SpendScope, id: string, period: Period, at?: number): Promise<number>;
  usage(scope: SpendScope, id: string, period: Period, at?: number): Promise<SpendTotals>;

  readonly shared?: SharedBackendStatus;

  /** Whether the store is usable now (readiness detail). */
  ping(): Promise<boolean>;
  close(): Promise<void>;
}
