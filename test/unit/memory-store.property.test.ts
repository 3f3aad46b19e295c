import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PERIODS, periodKey } from '../../core/period.ts';
import type { SpendRecord } from '../../core/spend.ts';
import { MemoryStore } from '../../core/state/memory-store.ts';

const DAY = 86_400_000;
// 2026-01-30 05:17:03.456 UTC: records spread over days on both sides of a month's end.
const BASE = Date.UTC(2026, 0, 30, 5, 17, 3, 456);

describe('MemoryStore spend counters (property)', () => {
  it('each day and month counter holds exactly the records of its period, whatever order their clocks come in', async () => {
    const record = fc.record({
      channelId: fc.constantFrom('c1', 'c2'),
      keyId: fc.option(fc.constantFrom('k1', 'k2'), { nil: undefined }),
      cost: fc.integer({ min: 0, max: 1000 }),
      promptTokens: fc.nat({ max: 50 }),
      completionTokens: fc.nat({ max: 50 }),
      // up to 40 days either way, at any millisecond: not on a day's boundary
      at: fc.integer({ min: BASE - 40 * DAY, max: BASE + 40 * DAY }),
    });
    await fc.assert(
      fc.asyncProperty(fc.array(record, { maxLength: 40 }), async (records) => {
        const store = new MemoryStore();
        for (const r of records) await store.recordSpend({ ...r, model: 'm' } as SpendRecord);
        for (const r of records) {
          for (const period of PERIODS) {
            const key = periodKey(period, r.at);
            for (const [scope, id] of [
              ['channel', r.channelId],
              ['key', r.keyId],
            ] as const) {
              if (id === undefined) continue;
              const mine = records.filter(
                (o) =>
                  (scope === 'channel' ? o.channelId : o.keyId) === id && periodKey(period, o.at) === key,
              );
              expect(await store.usage(scope, id, period, r.at)).toEqual({
                cost: mine.reduce((a, o) => a + o.cost, 0),
                requests: mine.length,
                promptTokens: mine.reduce((a, o) => a + o.promptTokens, 0),
                completionTokens: mine.reduce((a, o) => a + o.completionTokens, 0),
              });
            }
          }
        }
        await store.close();
      }),
    );
  });
});
