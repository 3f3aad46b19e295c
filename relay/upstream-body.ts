import { type Dispatcher, errors } from 'undici';

/**
 * An upstream answer's body as relay/upstream-call.ts receives it from undici's parser, without a
 * Node Readable in between. Read it one way:
 * - pull: `next()` / `for await` (a stream's events, which the relay transforms and may await on);
 * - push: `consume(fn)`, each chunk handed to `fn` from the parser's callback, the fastest way for
 *   bytes that go to the client as they are; `fn` returns a promise when the client is behind;
 * - `dump()` (an answer nobody reads) or `destroy()` (let go: closes an unfinished answer's
 *   connection).
 * Backpressure: the upstream is paused while the reader is behind (64 KiB taken in and not read,
 * as undici's own BodyReadable; in push mode while `fn`'s promise is pending). An error (a reset,
 * undici's body timeout, the call's signal) is what the next read throws; chunks not yet read are
 * dropped with it, as a destroyed Readable drops its buffer.
 */

const HIGH_WATER_MARK = 64 * 1024;
/** dump()'s default limit, as BodyReadable's. */
const DUMP_LIMIT = 128 * 1024;

/** Takes one chunk; returns a promise when it wants no more until that settles. */
export type ChunkSink = (chunk: Buffer) => Promise<unknown> | undefined;

type Outcome = 'done' | 'failed' | 'destroyed';

interface Waiter<T> {
  resolve: (v: T) => void;
  reject: (err: unknown) => void;
}

export class UpstreamBody implements AsyncIterableIterator<Buffer> {
  /** The answer's Content-Length, when it has one. */
  readonly contentLength: number | null;
  readonly #controller: Dispatcher.DispatchController;
  readonly #onClose: () => void;
  #queue: Buffer[] = [];
  #queued = 0;
  #received = 0;
  /** The upstream sent its last byte (the reader may not have taken it all yet). */
  #ended = false;
  /** Set once nothing more will be read: taken to the end, failed, or let go. */
  #outcome: Outcome | undefined;
  #error: unknown;
  #paused = false;
  #waiter: Waiter<IteratorResult<Buffer>> | undefined;
  #sink: ChunkSink | undefined;
  #sinkDone: Waiter<void> | undefined;
  #sinkWaiting = false;
  #pumping = false;

  /** onClose: called once, when the body is over whichever way. */
  constructor(controller: Dispatcher.DispatchController, contentLength: number | null, onClose: () => void) {
    this.#controller = controller;
    this.contentLength = Number.isFinite(contentLength) ? contentLength : null;
    this.#onClose = onClose;
  }

  /** Over: read to its end, failed, or let go. */
  get destroyed(): boolean {
    return this.#outcome !== undefined;
  }

  // ---- the upstream's side (relay/upstream-call.ts) ----

  push(chunk: Buffer) {
    // undici's parser may hand over an empty chunk when resumed: nothing to read, and a sink that
    // waited on it would pause and resume the parser for another, endlessly.
    if (this.#outcome || chunk.length === 0) return;
    this.#received += chunk.length;
    const w = this.#waiter;
    if (w) {
      this.#waiter = undefined;
      w.resolve({ value: chunk, done: false });
      return;
    }
    if (this.#sink && !this.#sinkWaiting && !this.#pumping && this.#queue.length === 0) {
      this.#deliver(chunk);
      return;
    }
    this.#queue.push(chunk);
    this.#queued += chunk.length;
    if (this.#sink) this.#pump();
    else if (this.#queued >= HIGH_WATER_MARK) this.#pause();
  }

  end() {
    if (this.#outcome) return;
    this.#ended = true;
    if (this.#waiter) {
      const w = this.#waiter;
      this.#waiter = undefined;
      this.#close();
      w.resolve({ value: undefined, done: true });
    } else if (this.#sink) this.#pump();
  }

  /** The call failed (undici's error): the next read throws it. */
  fail(err: unknown) {
    if (!this.#outcome) this.#failWith(err);
  }

  /** Fails the body with `reason` and aborts the upstream request (the call's signal, a sink's error). */
  abort(reason: unknown) {
    if (this.#outcome) return;
    this.#failWith(reason);
    if (!this.#ended) this.#controller.abort(reason as Error);
  }

  // ---- the reader's side ----

  next(): Promise<IteratorResult<Buffer>> {
    if (this.#queue.length > 0) {
      const value = this.#queue.shift()!;
      this.#queued -= value.length;
      if (this.#ended && this.#queue.length === 0) this.#close();
      else if (this.#queued < HIGH_WATER_MARK) this.#resume(); // may push more, synchronously
      return Promise.resolve({ value, done: false });
    }
    if (this.#outcome === 'failed') return Promise.reject(this.#error);
    if (this.#outcome === 'destroyed' || this.#ended) {
      this.#close();
      return Promise.resolve({ value: undefined, done: true });
    }
    return new Promise((resolve, reject) => {
      this.#waiter = { resolve, reject };
      this.#resume();
    });
  }

  /** A `for await` left early: let the body go, as a Readable's iterator does. */
  return(): Promise<IteratorResult<Buffer>> {
    this.destroy();
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator]() {
    return this;
  }

  /**
   * Hands every chunk to `sink` as it arrives (the ones already here first). Resolves after the
   * last; rejects with the body's error, or `sink`'s (thrown or its promise's), which aborts the
   * upstream request.
   */
  consume(sink: ChunkSink): Promise<void> {
    if (this.#outcome === 'failed') return Promise.reject(this.#error);
    if (this.#outcome === 'destroyed') return Promise.reject(new errors.RequestAbortedError());
    if (this.#outcome === 'done') return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.#sink = sink;
      this.#sinkDone = { resolve, reject };
      this.#pump();
    });
  }

  /**
   * Reads the rest and discards it, so a finished answer's connection can be reused. The rest is
   * let go instead when the answer runs past `limit` bytes beyond what the reader took (by its
   * Content-Length or what arrives), or is still coming after `timeoutMs`: an SSE stream's
   * `[DONE]` often comes a packet before the chunked terminator, and some upstreams never send it.
   * Never rejects.
   */
  async dump(opts?: { limit?: number; timeoutMs?: number }): Promise<void> {
    const limit = opts?.limit ?? DUMP_LIMIT;
    if (this.#outcome) return;
    const read = this.#received - this.#queued; // what the reader took; the queue is dropped too
    this.#queue = [];
    this.#queued = 0;
    if ((this.contentLength ?? 0) - read > limit || this.#received - read > limit) {
      this.destroy();
      return;
    }
    const ms = opts?.timeoutMs;
    const timer = ms === undefined ? undefined : setTimeout(() => this.destroy(), ms);
    await this.consume(() => {
      if (this.#received - read > limit) this.destroy();
    })
      .catch(() => {})
      .finally(() => clearTimeout(timer));
  }

  /** Lets the body go: an unfinished answer's request is aborted (its connection closed). */
  destroy() {
    if (this.#outcome) return;
    this.#settle('destroyed');
    const err = new errors.RequestAbortedError();
    this.#waiter?.reject(err);
    this.#waiter = undefined;
    this.#sinkDone?.reject(err);
    this.#sinkDone = undefined;
    if (!this.#ended) this.#controller.abort(err);
  }

  // ---- inside ----

  /** Push mode: hands queued chunks to the sink until it waits; ends or resumes the upstream. */
  #pump() {
    if (this.#pumping || this.#outcome) return;
    this.#pumping = true;
    try {
      while (this.#queue.length > 0 && !this.#sinkWaiting && !this.#outcome) {
        const chunk = this.#queue.shift()!;
        this.#queued -= chunk.length;
        this.#deliver(chunk);
      }
    } finally {
      this.#pumping = false;
    }
    if (this.#outcome || this.#sinkWaiting || this.#queue.length > 0) return;
    if (this.#ended) {
      const done = this.#sinkDone;
      this.#sinkDone = undefined;
      this.#close();
      done?.resolve();
    } else this.#resume(); // may push more, synchronously
  }

  #deliver(chunk: Buffer) {
    let wait: ReturnType<ChunkSink>;
    try {
      wait = this.#sink!(chunk);
    } catch (err) {
      this.abort(err);
      return;
    }
    if (!wait || this.#outcome) return;
    this.#sinkWaiting = true;
    this.#pause();
    wait.then(
      () => {
        this.#sinkWaiting = false;
        this.#pump();
      },
      (err: unknown) => {
        this.#sinkWaiting = false;
        this.abort(err);
      },
    );
  }

  #failWith(err: unknown) {
    this.#error = err;
    this.#settle('failed');
    this.#waiter?.reject(err);
    this.#waiter = undefined;
    this.#sinkDone?.reject(err);
    this.#sinkDone = undefined;
  }

  #close() {
    if (!this.#outcome) this.#settle('done');
  }

  #settle(outcome: Outcome) {
    this.#outcome = outcome;
    this.#queue = [];
    this.#queued = 0;
    this.#onClose();
  }

  #pause() {
    if (this.#paused) return;
    this.#paused = true;
    this.#controller.pause();
  }

  #resume() {
    if (!this.#paused) return;
    this.#paused = false;
    this.#controller.resume();
  }
}
