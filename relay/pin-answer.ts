import type { ProxyDeps } from './proxy-deps.ts';
import type { RespondCtx } from './respond.ts';

/**
 * Pins the object an answer created (a native Responses API response) to the channel that made
 * it, before the client can learn its id: every later call on that id goes there (core/pins/).
 * Translated answers are never stored upstream, so nothing is pinned for them.
 */

const HEAD_BYTES = 4096;
const ID = /"id"\s*:\s*"([^"\\]{1,256})"/;

/** Keeps the first bytes of a JSON answer, where OpenAI puts the object's `id`. */
export class BodyHead {
  #chunks: Buffer[] = [];
  #size = 0;
  push(chunk: Buffer) {
    if (this.#size >= HEAD_BYTES) return;
    this.#chunks.push(chunk);
    this.#size += chunk.length;
  }
  /** The first `"id"` of the body. */
  id(): string | undefined {
    return ID.exec(Buffer.concat(this.#chunks).toString('utf8', 0, HEAD_BYTES))?.[1];
  }
}

/** Whether this answer creates a pinnable object (a 2xx native answer on a route that pins). */
export function pinsAnswer(c: RespondCtx): boolean {
  const status = c.res.statusCode;
  if (!c.route.pins || c.up.translator || status < 200 || status >= 300) return false;
  // store: false is not kept upstream: there is nothing to find later.
  return (c.req.body as { store?: unknown } | null)?.store !== false;
}

export async function pinAnswer(deps: ProxyDeps, c: RespondCtx, id: string | undefined): Promise<void> {
  const kind = c.route.pins;
  if (!kind || id === undefined) return;
  const pin = { channel: c.ch.config.id, keyId: c.req.client.keyId, model: c.model, createdAt: Date.now() };
  try {
    await deps.pins.pin(kind, id, pin);
  } catch (err) {
    // The answer still reaches the client; later calls on the id cannot find its channel.
    deps.log.warn({ err, channel: pin.channel, kind }, 'pin store: could not pin an upstream object');
  }
}
