import { describe, expect, it } from 'vitest';
import { afterFailure, afterSuccess, HEALTHY } from '../../core/cooldown.ts';
import { MemoryStore } from '../../core/state/memory-store.ts';

const policy = { failureThreshold: 3, durationMs: 10_000, maxDurationMs: 35_000 };

describe('cooldown rules', () => {
  it('cools down at the threshold of consecutive failures, not before', () => {
    let h = HEALTHY;
    h = afterFailure(h, policy, 1000);
    h = afterFailure(h, policy, 1001);
    expect(h).toEqual({
      consecutiveFailures: 2,
      cooldownUntil: 0,
      streak: 0,
      cooldownSince: 0,
      restUntil: 0,
    });
    h = afterFailure(h, policy, 1002);
    expect(h.cooldownUntil).toBe(11_002);
    expect(h.streak).toBe(1);
  });

  it('a success resets the count', () => {
    let h = afterFailure(afterFailure(HEALTHY, policy, 0), policy, 0);
    h = afterSuccess(h, 0, 1);
    h = afterFailure(afterFailure(h, policy, 0), policy, 0);
    expect(h.cooldownUntil).toBe(0);
  });

  it('ignores failures while cooling down (requests started before it)', () => {
    const cooling = {
      consecutiveFailures: 3,
      cooldownUntil: 5000,
      streak: 1,
      cooldownSince: 0,
      restUntil: 0,
    };
    expect(afterFailure(cooling, policy, 4000)).toBe(cooling);
  });

  it('re-opens at once after a cooldown and backs off up to maxDuration', () => {
    let h = HEALTHY;
    for (let i = 0; i < 3; i++) h = afterFailure(h, policy, 0);
    expect(h.cooldownUntil).toBe(10_000);
    h = afterFailure(h, policy, 10_000); // probation: one failure is enough
    expect(h.cooldownUntil).toBe(30_000);
    h = afterFailure(h, policy, 30_000);
    expect(h.cooldownUntil).toBe(30_000 + 35_000); // 40 s capped at 35 s
    h = afterSuccess(h, 65_000, 66_000);
    expect(h).toEqual(HEALTHY);
  });

  it('honours Retry-After below the threshold, capped at maxDuration', () => {
    expect(afterFailure(HEALTHY, policy, 0, 2000).cooldownUntil).toBe(2000);
    expect(afterFailure(HEALTHY, policy, 0, 3_600_000).cooldownUntil).toBe(35_000);
  });

  it('a success of a request sent before the cooldown began does not end it', () => {
    let h = HEALTHY;
    for (let i = 0; i < 3; i++) h = afterFailure(h, policy, 1000);
    // Sent at 500 (a long stream), answered at 2000: it says nothing about what came at 1000.
    expect(afterSuccess(h, 500, 2000)).toBe(h);
    // A probe sent during the cooldown (another pod did not know yet) that succeeds ends it.
    expect(afterSuccess(h, 1500, 2000)).toEqual(HEALTHY);
  });

  it('a success never shortens a Retry-After rest, but forgets the failures', () => {
    const h = afterFailure(HEALTHY, policy, 1000, 20_000);
    expect(h.cooldownUntil).toBe(21_000);
    const after = afterSuccess(h, 1500, 2000);
    expect(after.cooldownUntil).toBe(21_000);
    expect(after.consecutiveFailures).toBe(0);
    expect(afterSuccess(after, 21_500, 22_000)).toEqual(HEALTHY);
    // A threshold cooldown longer than the rest: a later success ends it when the rest is over.
    let t = HEALTHY;
    t = afterFailure(afterFailure(t, policy, 0), policy, 0);
    t = afterFailure(t, policy, 0, 2000);
    expect(t.cooldownUntil).toBe(10_000);
    expect(afterSuccess(t, 500, 1000).cooldownUntil).toBe(2000);
    expect(afterSuccess(t, 2500, 3000)).toEqual(HEALTHY);
  });
});

describe('MemoryStore', () => {
  it('tracks cooldowns, notifies listeners and resets', async () => {
    let now = 0;
    const store = new MemoryStore({ now: () => now });
    const events: [string, number][] = [];
    store.onCooldownChange((id, until) => events.push([id, until]));
    for (let i = 0; i < 3; i++) await store.recordFailure('ch', policy);
    expect(store.cooldownUntil('ch')).toBe(10_000);
    expect(events).toEqual([['ch', 10_000]]);
    now = 10_001;
    await store.recordSuccess('ch', 10_001);
    expect(await store.channelHealth('ch')).toEqual(HEALTHY);
    await store.recordFailure('ch', policy, 1000);
    await store.resetChannel('ch');
    expect(store.cooldownUntil('ch')).toBe(0);
    expect(events.at(-1)).toEqual(['ch', 0]);
  });

  it('hands out at most max leases; expired leases come back', async () => {
    let now = 0;
    const store = new MemoryStore({ now: () => now });
    const a = await store.tryAcquire('ch', 2, 1000);
    const b = await store.tryAcquire('ch', 2, 1000);
    expect(a && b).toBeTruthy();
    expect(await store.tryAcquire('ch', 2, 1000)).toBeNull();
    await store.release(a!);
    expect(await store.tryAcquire('ch', 2, 1000)).not.toBeNull();
    now = 1001;
    expect(await store.tryAcquire('ch', 2, 1000)).not.toBeNull();
  });

  it('sums spend per channel and key, per UTC day and month', async () => {
    const store = new MemoryStore();
    const at = Date.parse('2026-11-22T23:59:00Z');
    await store.recordSpend({
      channelId: 'c',
      keyId: 'k',
      model: 'm',
      cost: 0.5,
      promptTokens: 1,
      completionTokens: 1,
      at,
    });
    await store.recordSpend({
      channelId: 'c',
      model: 'm',
      cost: 0.25,
      promptTokens: 1,
      completionTokens: 1,
      at: at + 120_000,
    });
    expect(await store.spend('channel', 'c', 'day', at)).toBe(0.5);
    expect(await store.spend('channel', 'c', 'month', at)).toBe(0.75);
    expect(await store.spend('key', 'k', 'month', at)).toBe(0.5);
  });
});
