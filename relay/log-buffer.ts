import pino from 'pino';

/**
 * The relay's JSON log destination: pino's own (sonic-boom, asynchronous, as by default) with a
 * buffer, so that under load several lines leave in one write(2) instead of one each through
 * libuv's thread pool (the access log writes a line per request). A line waits at most
 * `flushMs`; what is buffered is written out before the process exits (pino flushes its
 * destinations synchronously on `exit`, which a signal's process.exit, a crash and a plain end
 * all reach), and `flush` lets a graceful shutdown wait for it.
 */

/** Lines are written once this many bytes are buffered (well under sonic-boom's 16 KiB per write). */
export const LOG_BUFFER_BYTES = 4096;
/** The longest a line waits in the buffer. */
export const LOG_FLUSH_MS = 100;

export interface BufferedLogStream {
  write(line: string): boolean;
  /** Writes what is buffered; `cb` once it has left. */
  flush(cb?: (err?: Error) => void): void;
  flushSync(): void;
  /** Stops the periodic flush (what is buffered still leaves at exit or on `flush`). */
  stop(): void;
}

export function bufferedLogStream(
  fd = 1,
  o: { minBytes?: number; flushMs?: number } = {},
): BufferedLogStream {
  const dest = pino.destination({ dest: fd, sync: false, minLength: o.minBytes ?? LOG_BUFFER_BYTES });
  // Bytes handed over and bytes written: the periodic flush runs only when some wait (sonic-boom's
  // own periodicFlush would write an empty string every period on an idle relay).
  let handed = 0;
  let written = 0;
  dest.on('write', (n: number) => {
    written += n;
  });
  const timer = setInterval(() => {
    if (written < handed) dest.flush();
  }, o.flushMs ?? LOG_FLUSH_MS);
  timer.unref();
  return {
    write(line) {
      handed += Buffer.byteLength(line);
      return dest.write(line);
    },
    flush(cb) {
      // sonic-boom calls back when its current write ends, which may leave a short tail behind.
      const again = (err?: Error) => {
        if (err || written >= handed) cb?.(err);
        else dest.flush(again);
      };
      again();
    },
    flushSync() {
      dest.flushSync();
      written = handed;
    },
    stop: () => clearInterval(timer),
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
