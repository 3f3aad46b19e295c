import { describe, expect, it } from 'vitest';
import { type AcquireResult, ConcurrencyGate } from '../../core/concurrency.ts';
import { MemoryStore } from '../../core/state/memory-store.ts';
import type { Lease } from '../../core/state/store.ts';

function leaseOf(r: AcquireResult): Lease {
  if (!r.ok) throw new Error(`expected a permit, got ${r.reason}`);
  return r.lease;
}

const limits = { maxConcurrent: 1, maxQueue: 2, queueTimeoutMs: 200, leaseMs: 10_000 };

describe('ConcurrencyGate', () => {
  it('queues FIFO behind maxConcurrent and wakes waiters on release', async () => {
    const gate = new ConcurrencyGate(new MemoryStore());
    const first = await gate.acquire('ch', limits);
    expect(first.ok).toBe(true);
    const order: number[] = [];
    const queued = (n: number) =>
      gate.acquire('ch', limits).then((r) => {
        order.push(n);
        return r;
      });
    const w1 = queued(1);
    const w2 = queued(2);
    await new Promise((r) => setImmediate(r)); // both tried the store and queued
    expect(gate.depth('ch')).toBe(2);
    expect(await gate.acquire('ch', limits)).toEqual({ ok: false, reason: 'queue_full' });
    await gate.release(leaseOf(first));
    const r1 = await w1;
    expect(r1.ok).toBe(true);
    await gate.release(leaseOf(r1));
    expect((await w2).ok).toBe(true);
    expect(order).toEqual([1, 2]);
    gate.close();
  });

  it('gives up after queueTimeout', async () => {
    const gate = new ConcurrencyGate(new MemoryStore());
    await gate.acquire('ch', limits);
    const t0 = Date.now();
    expect(await gate.acquire('ch', limits)).toEqual({ ok: false, reason: 'queue_timeout' });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(190);
    expect(gate.depth('ch')).toBe(0);
    gate.close();
  });

  it('a waiter whose client left is out of the queue at once, and takes no permit', async () => {
    const gate = new ConcurrencyGate(new MemoryStore());
    const held = leaseOf(await gate.acquire('ch', { ...limits, queueTimeoutMs: 60_000 }));
    const client = new AbortController();
    const waiting = gate.acquire('ch', { ...limits, queueTimeoutMs: 60_000 }, { signal: client.signal });
    await new Promise((r) => setImmediate(r));
    expect(gate.depth('ch')).toBe(1);
    client.abort();
    expect(await waiting).toEqual({ ok: false, reason: 'aborted' });
    expect(gate.depth('ch')).toBe(0);
    await gate.release(held);
    expect((await gate.acquire('ch', limits)).ok).toBe(true); // the permit was not taken by the leaver
    gate.close();
  });

  it('peers of a tier: takes the first with room; when all are full, waits for whichever frees first', async () => {
    const gate = new ConcurrencyGate(new MemoryStore());
    const tier = ['a', 'b'].map((channelId) => ({
      channelId,
      limits: { ...limits, queueTimeoutMs: 60_000 },
    }));
    const a = await gate.acquireAny(tier);
    expect(a).toMatchObject({ ok: true, index: 0 });
    const b = await gate.acquireAny(tier); // a is full: b has room, no waiting
    expect(b).toMatchObject({ ok: true, index: 1 });
    const waiting = gate.acquireAny(tier);
    await new Promise((r) => setImmediate(r));
    expect([gate.depth('a'), gate.depth('b')]).toEqual([1, 1]);
    if (!b.ok) throw new Error('unreachable');
    await gate.release(b.lease);
    expect(await waiting).toMatchObject({ ok: true, index: 1 });
    expect([gate.depth('a'), gate.depth('b')]).toEqual([0, 0]);
    expect(await gate.acquireAny(tier, { wait: false })).toEqual({ ok: false, reason: 'busy' });
    gate.close();
  });
});
