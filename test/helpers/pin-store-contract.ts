import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { PinnedKind, PinStore } from '../../core/pins/store.ts';

/**
 * The PinStore contract, run against every implementation (memory, and the fleet-wide one):
 * first pin wins, lookups are per kind, lists are the caller's own objects newest first with the
 * `after` cursor paging through all of them exactly once.
 */
export function describePinStore(name: string, make: () => Promise<PinStore> | PinStore) {
  describe(`PinStore contract: ${name}`, () => {
    it('keeps the first pin of an id and namespaces ids by kind', async () => {
      const s = await make();
      await s.pin('file', 'file-1', { channel: 'ns/a', keyId: 'k1', createdAt: 1 });
      await s.pin('file', 'file-1', { channel: 'ns/b', keyId: 'k1', createdAt: 2 });
      expect((await s.lookup('file', 'file-1'))?.channel).toBe('ns/a');
      expect(await s.lookup('batch', 'file-1')).toBeUndefined();
      await s.unpin('file', 'file-1');
      expect(await s.lookup('file', 'file-1')).toBeUndefined();
    });

    it('lists only the caller’s objects, newest first, paging with after exactly once each', async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.array(
            fc.record({
              key: fc.constantFrom('k1', 'k2', undefined),
              kind: fc.constantFrom<PinnedKind>('file', 'batch'),
            }),
            {
              maxLength: 40,
            },
          ),
          fc.integer({ min: 1, max: 7 }),
          async (objs, page) => {
            const s = await make();
            const run = Math.random().toString(36).slice(2);
            for (const [i, o] of objs.entries()) {
              await s.pin(o.kind, `${run}-${i}`, { channel: 'ns/a', keyId: o.key, createdAt: 1_000 + i });
            }
            const want = objs
              .map((o, i) => ({ ...o, id: `${run}-${i}` }))
              .filter((o) => o.kind === 'file' && o.key === 'k1')
              .map((o) => o.id)
              .reverse();
            const seen: string[] = [];
            let after: string | undefined;
            for (let guard = 0; guard < 50; guard++) {
              const got = await s.list('file', { keyId: 'k1', limit: page, ...(after ? { after } : {}) });
              expect(got.length).toBeLessThanOrEqual(page);
              seen.push(...got.map((o) => o.id));
              if (got.length < page) break;
              after = got[got.length - 1]?.id;
            }
            expect(seen).toEqual(want);
          },
        ),
        { numRuns: 40 },
      );
    });
  });
}
