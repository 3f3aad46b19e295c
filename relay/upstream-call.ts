import type { Readable } from 'node:stream';
import { type Dispatcher, errors } from 'undici';
import { UpstreamBody } from './upstream-body.ts';

/**
 * The request path's upstream call, on undici's `dispatch()` handler API instead of `request()`:
 * no Node Readable between the upstream's bytes and the client's. undici's `request()` pushes each
 * chunk into a BodyReadable that the relay then reads back through an async iterator, a few extra
 * event-loop turns and allocations per chunk; here a chunk goes from undici's parser callback to
 * whoever reads the body (relay/upstream-body.ts), with the same errors, timeouts and backpressure.
 */

export type UpstreamHeaders = Dispatcher.ResponseData['headers'];

export interface UpstreamAnswer {
  statusCode: number;
  /** As `request()` gives them: lower-case names, an array for a repeated header. */
  headers: UpstreamHeaders;
  body: UpstreamBody;
}

/**
 * Sends one request. Resolves with the answer's status and headers once they arrived (the body
 * follows); rejects with undici's own error (UND_ERR_HEADERS_TIMEOUT, UND_ERR_SOCKET, ECONNREFUSED,
 * ...) or the signal's reason when it aborted first. The signal aborts the body too, until it is
 * read to its end or let go.
 */
export function callUpstream(
  dispatcher: Dispatcher,
  opts: Dispatcher.DispatchOptions,
  signal?: AbortSignal,
): Promise<UpstreamAnswer> {
  return new Promise((resolve, reject) => {
    const handler = new CallHandler(opts, signal, resolve, reject);
    try {
      dispatcher.dispatch(opts, handler);
    } catch (err) {
      handler.onResponseError(null, err as Error);
    }
  });
}

class CallHandler implements Dispatcher.DispatchHandler {
  readonly #requestBody: unknown;
  readonly #signal: AbortSignal | undefined;
  #resolve: ((a: UpstreamAnswer) => void) | undefined;
  readonly #reject: (err: unknown) => void;
  #controller: Dispatcher.DispatchController | null = null;
  #body: UpstreamBody | undefined;
  #settled = false;
  readonly #onAbort: (() => void) | undefined;

  constructor(
    opts: Dispatcher.DispatchOptions,
    signal: AbortSignal | undefined,
    resolve: (a: UpstreamAnswer) => void,
    reject: (err: unknown) => void,
  ) {
    this.#requestBody = opts.body;
    this.#signal = signal;
    this.#resolve = resolve;
    this.#reject = reject;
    if (signal && !signal.aborted) {
      this.#onAbort = () => this.#abort(signal.reason);
      signal.addEventListener('abort', this.#onAbort, { once: true });
    }
  }

  #abort(reason: unknown) {
    const err = (reason ?? new errors.RequestAbortedError()) as Error; // as request() rejects: the signal's reason
    if (this.#body) this.#body.abort(err);
    else this.#controller?.abort(err); // before the answer: undici calls onResponseError with it
    // Not started yet: onRequestStart aborts it.
  }

  /** The body is over (read to its end, let go, or failed): the signal has nothing left to abort. */
  #release = () => {
    if (this.#onAbort) this.#signal!.removeEventListener('abort', this.#onAbort);
  };

  onRequestStart(controller: Dispatcher.DispatchController) {
    this.#controller = controller;
    if (this.#signal?.aborted) this.#abort(this.#signal.reason);
  }

  onResponseStart(controller: Dispatcher.DispatchController, statusCode: number, headers: UpstreamHeaders) {
    if (statusCode < 200) return; // 1xx informational: the answer is still to come
    const length = headers['content-length'];
    const body = new UpstreamBody(controller, length === undefined ? null : Number(length), this.#release);
    this.#body = body;
    this.#settled = true;
    const resolve = this.#resolve!;
    this.#resolve = undefined;
    resolve({ statusCode, headers, body });
  }

  onResponseData(_controller: Dispatcher.DispatchController, chunk: Buffer) {
    this.#body?.push(chunk);
  }

  onResponseEnd() {
    this.#body?.end();
  }

  onResponseError(_controller: Dispatcher.DispatchController | null, err: Error) {
    if (!this.#settled) {
      this.#settled = true;
      this.#resolve = undefined;
      this.#release();
      this.#reject(err);
    } else {
      this.#body?.fail(err);
    }
    const b = this.#requestBody as Readable | undefined;
    if (b && typeof b === 'object' && typeof b.destroy === 'function' && !b.destroyed) {
      b.on('error', () => {}); // the request's own failure is the one reported
      b.destroy(err);
    }
  }
}
