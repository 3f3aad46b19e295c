import { type ClientStream, carriesToken } from './client-stream.ts';

/**
 * The preamble hold. Many providers send a role-only (or empty) chunk at once and the first token
 * much later; passing that chunk on would commit the answer to a channel that may still stall.
 * So the relay holds such chunks until the first content or tool call arrives (or the answer ends),
 * at most `timeouts.firstToken`: a stall before the first token is then a failure like any other
 * before the first byte, and the next channel can serve the request with the client none the wiser.
 */

/** Held text beyond this is sent anyway: a preamble is a few hundred bytes. */
const MAX_HELD_CHARS = 1024 * 1024;

export type Held =
  | { ok: true; text: string; ended: boolean }
  | { ok: false; reason: 'first_token'; message: string }
  | { ok: false; reason: 'error'; err: unknown }
  | { ok: false; reason: 'stream'; message: string };

export async function holdPreamble(
  body: AsyncIterator<Buffer>,
  stream: ClientStream,
  limitMs: number,
  abort: () => void,
): Promise<Held> {
  let text = '';
  let expired = false;
  const timer = setTimeout(() => {
    expired = true;
    abort();
  }, limitMs);
  try {
    for (;;) {
      const r = await body.next();
      if (r.done) {
        text += stream.finish();
        if (stream.done || stream.contentEvents > 0 || carriesToken(text))
          return { ok: true, text, ended: true };
        return { ok: false, reason: 'stream', message: 'the upstream stream ended before its first token' };
      }
      const piece = stream.push(r.value);
      text += piece;
      if (stream.done || stream.contentEvents > 0 || carriesToken(piece) || text.length > MAX_HELD_CHARS) {
        return { ok: true, text, ended: false };
      }
    }
  } catch (err) {
    if (expired) {
      const message = `no first token within ${limitMs} ms (timeouts.firstToken)`;
      return { ok: false, reason: 'first_token', message };
    }
    return { ok: false, reason: 'error', err };
  } finally {
    clearTimeout(timer);
  }
}
