import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type RequestRecord, usageKeyOf, usageRowKey, usageRowOf } from '../../core/accounting.ts';

// The request-log writer finds a record's pending rollup row by usageKeyOf, without making the row:
// it must name the row usageRowOf makes, for any record (keys and channels absent or not, any time).
describe('usageKeyOf', () => {
  it('is the key of the row usageRowOf makes', () => {
    const name = fc.string({ maxLength: 12 });
    fc.assert(
      fc.property(
        fc.record(
          {
            requestId: fc.string(),
            at: fc.double({ min: 0, max: 4e12, noNaN: true }),
            keyId: name,
            route: fc.constant('/v1/chat/completions'),
            model: name,
            channel: name,
            status: fc.integer({ min: 100, max: 599 }),
            durationMs: fc.double({ min: 0, max: 1e6, noNaN: true }),
            attempts: fc.nat(5),
            stream: fc.boolean(),
            promptTokens: fc.nat(),
            completionTokens: fc.nat(),
            cachedTokens: fc.nat(),
            cacheWriteTokens: fc.nat(),
            reasoningTokens: fc.nat(),
            cost: fc.double({ min: 0, max: 100, noNaN: true }),
          },
          {
            requiredKeys: [
              'requestId',
              'at',
              'route',
              'model',
              'status',
              'durationMs',
              'attempts',
              'stream',
              'cost',
            ],
          },
        ),
        (r) => {
          const rec = {
            promptTokens: 0,
            completionTokens: 0,
            cachedTokens: 0,
            cacheWriteTokens: 0,
            reasoningTokens: 0,
            ...r,
          } as RequestRecord;
          expect(usageKeyOf(rec)).toBe(usageRowKey(usageRowOf(rec)));
        },
      ),
    );
  });
});
