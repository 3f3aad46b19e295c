import { writeSync } from 'node:fs';

/**
 * The relay's JSON log destination: lines are collected into a buffer, and a full buffer (or
 * whatever waits when the flush period ends) leaves in one synchronous write(2) on the main
 * thread. Under load that is one system call per ~10 access lines and no hand-off to libuv's
 * thread pool (an asynchronous write cost a worker's wake-up and a completion per buffer: futex
 * calls per request 0.96 -> 0.61 under load, BENCHMARKS.md). What is buffered is written before
 * the process exits (an `exit` listener: a signal's process.exit, a crash and a plain end all
 * reach it), and `flush` lets a graceful shutdown write it out.
 *
 * Synchronous writes can wait for a full stdout. A blocking pipe (how a container runtime's
 * stdout usually arrives) makes the loop wait until the reader takes the bytes, as pino's own
 * default destination does: the buffer then never grows, and a runtime that reads its
 * containers' logs continuously empties the 64 KiB pipe within microseconds. A non-blocking one
 * answers EAGAIN instead: the rest stays buffered and is retried by the next write or tick, up
 * to MAX_PENDING_BYTES; past that lines are dropped (and counted in a line once writes resume)
 * rather than held without bound or waited for.
 */

/** Lines are written once this many characters are buffered. */
export const LOG_BUFFER_BYTES = 4096;
/** The longest a line waits in the buffer. */
export const LOG_FLUSH_MS = 100;
/** What may wait for a stdout that does not take it (EAGAIN) before new lines are dropped. */
export const MAX_PENDING_BYTES = 1 << 20;

export interface BufferedLogStream {
  write(line: string): boolean;
  /** Writes what is buffered; `cb` once it has left (or could not: EAGAIN, a closed stdout). */
  flush(cb?: (err?: Error) => void): void;
  flushSync(): void;
  /** Stops the periodic flush and the buffering: what is buffered leaves now, later lines at once. */
  stop(): void;
}

/** Buffers with something to write at exit (one `exit` listener for all). */
const live = new Set<{ flushSync(): void }>();
let exitHooked = false;

export function bufferedLogStream(
  fd = 1,
  o: { minBytes?: number; flushMs?: number; maxPendingBytes?: number } = {},
): BufferedLogStream {
  const minBytes = o.minBytes ?? LOG_BUFFER_BYTES;
  const maxPending = o.maxPendingBytes ?? MAX_PENDING_BYTES;
  let text = ''; // lines not yet encoded
  let rest: Buffer | undefined; // bytes a write(2) left behind (EAGAIN, a partial write)
  let dropped = 0;
  let minLength = minBytes;

  /** Writes what waits; false when stdout takes no more now. */
  const writeOut = (): boolean => {
    if (dropped > 0 && rest === undefined) {
      text = `${JSON.stringify({ level: 40, time: Date.now(), msg: 'log lines dropped: stdout was full', dropped })}\n${text}`;
      dropped = 0;
    }
    let buf = rest ?? Buffer.from(text);
    if (rest !== undefined && text !== '') buf = Buffer.concat([rest, Buffer.from(text)]);
    text = '';
    rest = undefined;
    let off = 0;
    try {
      while (off < buf.length) off += writeSync(fd, buf, off);
      return true;
    } catch (err) {
      // EAGAIN: a non-blocking stdout is full; keep the rest for later. Anything else (EPIPE: no
      // reader) has nowhere to be reported; the lines are lost either way.
      if ((err as NodeJS.ErrnoException).code === 'EAGAIN') rest = buf.subarray(off);
      return false;
    }
  };
  const flushSync = () => {
    if (text !== '' || rest !== undefined || dropped > 0) writeOut();
  };
  const self = { flushSync };
  live.add(self);
  if (!exitHooked) {
    exitHooked = true;
    process.on('exit', () => {
      for (const s of live) s.flushSync();
    });
  }
  const timer = setInterval(flushSync, o.flushMs ?? LOG_FLUSH_MS);
  timer.unref();
  return {
    write(line) {
      if ((rest?.length ?? 0) + text.length > maxPending) {
        dropped++;
        return false;
      }
      text += line;
      // While stdout refuses (EAGAIN) only the timer retries: no copy of the backlog per line.
      if (text.length >= minLength && rest === undefined) writeOut();
      return true;
    },
    flush(cb) {
      flushSync();
      cb?.();
    },
    flushSync,
    stop() {
      clearInterval(timer);
      minLength = 0;
      flushSync();
      if (rest === undefined) live.delete(self);
    },
  };
}

type Flush = (cb?: (err?: Error) => void) => void;

/**
 * Waits (at most `timeoutMs`) until what a logger (or a destination) buffered has been written.
 * Anything without a `flush` (a stream that does not buffer) resolves at once.
 */
export function flushLog(target: object, timeoutMs = 1000): Promise<void> {
  const flush = (target as { flush?: Flush }).flush;
  if (typeof flush !== 'function') return Promise.resolve();
  return new Promise((resolve) => {
    const t = setTimeout(resolve, timeoutMs);
    flush.call(target, () => {
      clearTimeout(t);
      resolve();
    });
  });
}
