import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { COMBINED_PREFIX, EventCorrelator, type EventInput } from '../../operator/event-correlator.ts';

const channel = (name: string) => ({
  apiVersion: 'kuberelay.io/v1alpha1',
  kind: 'Channel',
  namespace: 'team',
  name,
  uid: `uid-${name}`,
});
const cooling: EventInput = {
  object: channel('primary'),
  type: 'Warning',
  reason: 'CoolingDown',
  message: 'entered cooldown after status_503: no requests until it ends',
};
const ended: EventInput = {
  object: channel('primary'),
  type: 'Normal',
  reason: 'CooldownEnded',
  message: 'left cooldown: serving again',
};
// A clock not on a boundary.
const T0 = Date.UTC(2026, 11, 1, 13, 7, 41, 613);

describe('event correlator (client-go semantics)', () => {
  it('a channel that flaps 100 times makes two Events, and at most 25 API writes in a burst', () => {
    const c = new EventCorrelator({ component: 'kuberelay-operator', host: 'op-0' });
    const writes: { action: string; name: string; count: number }[] = [];
    let last = { cooling: 0, ended: 0 };
    for (let i = 0; i < 100; i++) {
      for (const e of [cooling, ended]) {
        const d = c.correlate(e, T0 + i * 3_000 + (e === ended ? 1_500 : 0));
        if (e === cooling) last = { ...last, cooling: d.event.count };
        else last = { ...last, ended: d.event.count };
        if (d.action !== 'drop')
          writes.push({ action: d.action, name: d.event.metadata.name, count: d.event.count });
      }
    }
    expect(new Set(writes.map((w) => w.name)).size).toBe(2);
    expect(writes.filter((w) => w.action === 'create')).toHaveLength(2);
    // Under 300 s of flapping: the burst of 25, no whole token refilled yet.
    expect(writes.length).toBe(25);
    // Dropped occurrences are still counted: the next write carries the total.
    expect(last).toEqual({ cooling: 100, ended: 100 });
  });

  it('after the burst, one write per 5 minutes per object; other objects are unaffected', () => {
    const c = new EventCorrelator({ component: 'kuberelay-operator' });
    for (let i = 0; i < 25; i++) expect(c.correlate(cooling, T0 + i).action).not.toBe('drop');
    expect(c.correlate(cooling, T0 + 100).action).toBe('drop');
    expect(c.correlate({ ...cooling, object: channel('other') }, T0 + 100).action).toBe('create');
    expect(c.correlate(cooling, T0 + 100 + 299_000).action).toBe('drop');
    const later = c.correlate(cooling, T0 + 25 + 300_000);
    expect(later).toMatchObject({ action: 'patch', event: { count: 28 } });
  });

  it('from the 10th distinct message of one reason within 10 minutes, similar events are combined', () => {
    const c = new EventCorrelator({ component: 'kuberelay-operator' });
    const names = new Set<string>();
    for (let i = 0; i < 20; i++) {
      const d = c.correlate(
        { ...cooling, message: `entered cooldown after status_${500 + i}` },
        T0 + i * 1000,
      );
      names.add(d.event.metadata.name);
      if (i < 9) expect(d.event.message).toBe(`entered cooldown after status_${500 + i}`);
      else expect(d.event.message).toBe(`${COMBINED_PREFIX}entered cooldown after status_${500 + i}`);
    }
    expect(names.size).toBe(10);
    // After a quiet 10 minutes, messages stand alone again.
    const d = c.correlate(
      { ...cooling, message: 'entered cooldown after status_429' },
      T0 + 20_000 + 601_000,
    );
    expect(d.event.message).toBe('entered cooldown after status_429');
  });

  it('invariant: for any sequence, writes per object never exceed burst + elapsed / refill, and counts add up', () => {
    const arbEvent = fc.record({
      object: fc.constantFrom(channel('a'), channel('b')),
      type: fc.constantFrom('Normal' as const, 'Warning' as const),
      reason: fc.constantFrom('CoolingDown', 'CooldownEnded', 'ModelConflict'),
      message: fc.constantFrom('m1', 'm2', 'm3', 'x'.repeat(2000)),
    });
    fc.assert(
      fc.property(
        fc.array(fc.tuple(arbEvent, fc.integer({ min: 0, max: 120_000 })), { maxLength: 400 }),
        fc.integer({ min: 1, max: 30 }),
        (seq, burst) => {
          const refillMs = 60_000;
          const c = new EventCorrelator({ component: 'op', burst, refillMs });
          let now = T0;
          const writes = new Map<string, number>();
          const counts = new Map<string, number>();
          const occurrences = new Map<string, number>();
          for (const [e, gap] of seq) {
            now += gap;
            const d = c.correlate(e, now);
            expect(d.event.message.length).toBeLessThanOrEqual(1024);
            expect(d.event.involvedObject).toEqual(e.object);
            const name = d.event.metadata.name;
            occurrences.set(name, (occurrences.get(name) ?? 0) + 1);
            counts.set(name, d.event.count);
            if (d.action !== 'drop') writes.set(e.object.name, (writes.get(e.object.name) ?? 0) + 1);
          }
          const elapsed = now - T0;
          for (const n of writes.values()) expect(n).toBeLessThanOrEqual(burst + elapsed / refillMs + 1e-9);
          // An Event's count is every occurrence folded into it, written or not.
          for (const [name, n] of occurrences) expect(counts.get(name)).toBe(n);
        },
      ),
    );
  });
});
