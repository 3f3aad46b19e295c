import type { ServerResponse } from 'node:http';
import { sseErrorEvent } from './sse.ts';

/**
 * Streaming responses in progress, so that the shutdown deadline can end each with an error event
 * (a client is told why, rather than seeing a bare cut, and never a fake [DONE]).
 */
export class OpenStreams {
  readonly #open = new Set<ServerResponse>();

  /** A response that streams (a body with `stream: true`), until its connection closes. */
  track(res: ServerResponse): void {
    this.#open.add(res);
    res.once('close', () => this.#open.delete(res));
  }

  /** Writes the error event to every stream that has started, then waits (bounded) for it to leave. */
  endAll(): Promise<void> {
    const writes = [...this.#open]
      .filter((res) => res.headersSent && !res.destroyed && !res.writableEnded)
      .map((res) => new Promise<void>((resolve) => res.write(SHUTTING_DOWN, () => resolve())));
    return Promise.race([Promise.all(writes).then(() => {}), new Promise<void>((r) => setTimeout(r, 500))]);
  }
}

const SHUTTING_DOWN = sseErrorEvent('the relay is shutting down; retry the request', 'relay_shutting_down');
