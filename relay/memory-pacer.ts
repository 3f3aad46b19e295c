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

/**
 * V8's scavenge, without exposing `gc` on the relay's global object: the flag is on only while a
 * fresh context is made (as jest does for --logHeapUsage). undefined where V8 refuses.
 */
export function youngCollector(): (() => void) | undefined {
  // Started with --expose-gc (a benchmark, a debugging session): use it, leave the flag alone.
  const own = (globalThis as { gc?: (o: { type: 'minor' }) => void }).gc;
  if (typeof own === 'function') return () => own({ type: 'minor' });
  try {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as ((o: { type: 'minor' }) => void) | undefined;
    return typeof gc === 'function' ? () => gc({ type: 'minor' }) : undefined;
  } catch {
    return undefined;
  } finally {
    setFlagsFromString('--no-expose-gc');
  }
}

/**
 * 2 MiB: the relay's RSS grew by 5-10 MB for a 30 MB or 100 MB upload, and for four at once, in
 * bench/upload.ts (4 MiB: 5-12 MB; 8 MiB: 11-16 MB; none: 60-70 MB). A scavenge every 2 MiB costs
 * ~1-2.5 ms, less than the mark-compact collections and page faults it saves (BENCHMARKS.md).
 */
export const PACE_BYTES = 2 * 1024 * 1024;

const collect = youngCollector();

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
