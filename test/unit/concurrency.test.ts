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
});
