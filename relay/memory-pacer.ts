import { pipeline, type Readable, Transform } from 'node:stream';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/**
 * Bounds the memory a large body costs while it passes through. Every chunk the relay reads from
 * a socket or a spool file is a fresh Buffer whose bytes live outside V8's heap; the JS object
 * is tiny, so a long upload makes little heap garbage and V8 schedules no collection until its
 * external-memory trigger (~64 MB) fires: RSS grows by the body, up to that. The pacer counts
 * the bytes relayed and asks for a young-generation collection (a scavenge: ~0.3-2 ms, the
 * chunks are young) every `everyBytes`, so the garbage in flight stays near that. A body smaller
 * than `everyBytes` never triggers one by itself.
 */
export class MemoryPacer {
  readonly everyBytes: number;
  readonly #collect: () => void;
  #pending = 0;
  /** Collections requested so far. */
  collections = 0;

  constructor(everyBytes: number, collect: () => void) {
    if (!(everyBytes > 0)) throw new RangeError('everyBytes must be positive');
    this.everyBytes = everyBytes;
    this.#collect = collect;
  }

  /** Counts `bytes` relayed; collects once for every `everyBytes` counted. */
  add(bytes: number): void {
    this.#pending += bytes;
    if (this.#pending < this.everyBytes) return;
    // One collection frees everything already garbage, however far past the mark a chunk went.
    this.#pending %= this.everyBytes;
    this.collections++;
    this.#collect();
  }
}

type GcOptions = { type: 'minor' | 'major'; flavor?: 'regular' | 'last-resort' };
type Gc = (o: GcOptions) => void;

/**
 * V8's `gc`, without exposing it on the relay's global object: the flag is on only while a fresh
 * context is made (as jest does for --logHeapUsage). undefined where V8 refuses.
 */
function v8Gc(): Gc | undefined {
  // Started with --expose-gc (a benchmark, a debugging session): use it, leave the flag alone.
  const own = (globalThis as { gc?: Gc }).gc;
  if (typeof own === 'function') return own;
  try {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as Gc | undefined;
    return typeof gc === 'function' ? gc : undefined;
  } catch {
    return undefined;
  } finally {
    setFlagsFromString('--no-expose-gc');
  }
}

/** V8's scavenge (a young-generation collection); undefined where V8 refuses. */
export function youngCollector(): (() => void) | undefined {
  const gc = v8Gc();
  return gc && (() => gc({ type: 'minor' }));
}

/**
 * 2 MiB: the relay's RSS grew by 5-10 MB for a 30 MB or 100 MB upload, and for four at once, in
 * bench/upload.ts (4 MiB: 5-12 MB; 8 MiB: 11-16 MB; none: 60-70 MB). A scavenge every 2 MiB costs
 * ~1-2.5 ms, less than the mark-compact collections and page faults it saves (BENCHMARKS.md).
 */
export const PACE_BYTES = 2 * 1024 * 1024;

const gc = v8Gc();
const collect = gc && (() => gc({ type: 'minor' }));

/**
 * Once, when the relay has started and before it serves: a full collection that also shrinks
 * V8's spaces (the 'last-resort' flavour, as under memory pressure). Loading modules and compiling
 * the config leave garbage and a grown young generation that V8 would otherwise keep until load
 * came, so an idle relay would hold memory it never uses again (BENCHMARKS.md, idle RSS).
 */
export function settleAfterStart(): void {
  gc?.({ type: 'major', flavor: 'last-resort' });
}

/** The process's pacer: every large body the relay streams counts its bytes here. */
export const memoryPacer = new MemoryPacer(PACE_BYTES, collect ?? (() => {}));
/**
 * `body` passed on unchanged, its bytes counted by `pacer` (an upstream answer streamed to the
 * client: each chunk undici reads is a fresh Buffer, as on the way in).
 */
export function paced(body: Readable, pacer: MemoryPacer = memoryPacer): Readable {
  const counted = new Transform({
    transform(chunk: Buffer, _enc, done) {
      pacer.add(chunk.length);
      done(null, chunk);
    },
  });
  // Errors travel both ways: an upstream failure ends the client's copy, a client gone ends undici's.
  pipeline(body, counted, () => {});
  return counted;
}
