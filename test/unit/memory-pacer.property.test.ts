import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MemoryPacer, paced, settleAfterStart, youngCollector } from '../../relay/memory-pacer.ts';

// relay/memory-pacer.ts: one young-generation collection per `everyBytes` relayed, however the
// bytes are chunked, none for a body smaller than that; a paced stream passes its bytes on
// unchanged; the collector is V8's own and leaves no `gc` on the global object.

const chunkSizes = fc.array(fc.integer({ min: 0, max: 300_000 }), { maxLength: 200 });

describe('MemoryPacer', () => {
  it('never collects ahead of the bytes; a chunk of everyBytes or more always collects', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 1_000_000 }), chunkSizes, (every, sizes) => {
        let calls = 0;
        const p = new MemoryPacer(every, () => calls++);
        let total = 0;
        for (const n of sizes) {
          const before = calls;
          p.add(n);
          total += n;
          expect(calls).toBeLessThanOrEqual(Math.floor(total / every));
          // One collection frees all garbage so far, however big the chunk: at most one per add.
          expect(calls - before).toBeLessThanOrEqual(1);
          if (n >= every) expect(calls - before).toBe(1);
        }
        expect(p.collections).toBe(calls);
      }),
    );
  });

  it('with chunks no larger than everyBytes: exactly one collection per everyBytes', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1000, max: 1_000_000 }), chunkSizes, (every, raw) => {
        const sizes = raw.map((n) => n % (every + 1));
        let calls = 0;
        const p = new MemoryPacer(every, () => calls++);
        let total = 0;
        for (const n of sizes) {
          p.add(n);
          total += n;
          expect(calls).toBe(Math.floor(total / every));
        }
      }),
    );
  });

  it('a body smaller than everyBytes never collects, in any chunking', () => {
    fc.assert(
      fc.property(fc.integer({ min: 2, max: 4 * 1024 * 1024 }), chunkSizes, (every, raw) => {
        let calls = 0;
        const p = new MemoryPacer(every, () => calls++);
        let left = every - 1;
        for (const n of raw) {
          const take = Math.min(n, left);
          p.add(take);
          left -= take;
        }
        expect(calls).toBe(0);
      }),
    );
  });

  it('refuses a pace that is not a positive byte count', () => {
    expect(() => new MemoryPacer(0, () => {})).toThrow(RangeError);
    expect(() => new MemoryPacer(Number.NaN, () => {})).toThrow(RangeError);
  });
});

describe('paced', () => {
  it('passes every byte on unchanged and counts them, under random chunkings', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.uint8Array({ maxLength: 70_000 }), { maxLength: 40 }),
        fc.integer({ min: 1, max: 200_000 }),
        async (chunks, every) => {
          let calls = 0;
          const p = new MemoryPacer(every, () => calls++);
          const input = Readable.from(chunks.map((c) => Buffer.from(c)));
          const out = await buffer(paced(input, p));
          const expected = Buffer.concat(chunks);
          expect(out.equals(expected)).toBe(true);
          expect(calls).toBeLessThanOrEqual(Math.floor(expected.length / every));
          // One collection per chunk at most, however many paces the chunk spans; so each
          // collection accounts for at most `perCall` paces, and less than one pace is left over.
          const biggest = Math.max(0, ...chunks.map((c) => c.length));
          const perCall = Math.max(1, Math.floor((every - 1 + biggest) / every));
          expect(calls * perCall * every).toBeGreaterThanOrEqual(expected.length - (every - 1));
        },
      ),
      { numRuns: 50 },
    );
  });

  it('an upstream body that fails ends the paced copy with that error', async () => {
    const failing = new Readable({
      read() {
        this.push(Buffer.from('partial'));
        this.destroy(new Error('upstream reset'));
      },
    });
    await expect(buffer(paced(failing, new MemoryPacer(1024, () => {})))).rejects.toThrow('upstream reset');
  });

  it('a client that goes away stops the upstream body', async () => {
    const upstream = new Readable({ read() {} });
    const copy = paced(upstream, new MemoryPacer(1024, () => {}));
    copy.destroy();
    await new Promise((r) => setImmediate(r));
    expect(upstream.destroyed).toBe(true);
  });
});

describe('youngCollector', () => {
  it("is V8's collector, and the relay's global object gets no gc", () => {
    const collect = youngCollector();
    expect(collect).toBeTypeOf('function');
    expect(() => collect!()).not.toThrow();
    expect((globalThis as { gc?: unknown }).gc).toBeUndefined();
  });
});

describe('settleAfterStart', () => {
  it('collects what start-up left behind, old objects included', async () => {
    // An object that survived young collections (old space), then became garbage.
    let startupGarbage: object | undefined = { config: new Array(10_000).fill('x') };
    const ref = new WeakRef(startupGarbage);
    youngCollector()!();
    youngCollector()!();
    startupGarbage = undefined;
    await new Promise((r) => setImmediate(r)); // a WeakRef keeps its target until the job ends
    expect(ref.deref()).toBeDefined(); // still there: nothing has collected it yet
    await new Promise((r) => setImmediate(r)); // (deref() kept it for this job too)
    settleAfterStart();
    expect(ref.deref()).toBeUndefined();
    expect((globalThis as { gc?: unknown }).gc).toBeUndefined();
  });
});
