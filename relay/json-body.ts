import type { FastifyInstance } from 'fastify';
import { badRequest } from './errors.ts';

/**
 * Request bodies nest at most this deep. Real payloads (messages, tools with JSON Schemas) stay far
 * below it; 100k-deep arrays would otherwise overflow the stack of whatever walks the parsed body
 * next (the prototype-poisoning scan, JSON.stringify when forwarding) and end as a 500.
 */
export const MAX_JSON_DEPTH = 128;

/** Whether `text` (JSON or not) opens more than `max` arrays/objects at once, strings skipped. */
export function nestsDeeperThan(text: string, max: number): boolean {
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      i = stringEnd(text, i + 1);
    } else if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
      if (++depth > max) return true;
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      depth--;
    }
  }
  return false;
}

/** Index of the quote closing the string that starts at `from` (or the end of the text). */
export function stringEnd(text: string, from: number): number {
  for (let i = text.indexOf('"', from); i !== -1; i = text.indexOf('"', i + 1)) {
    let backslashes = 0;
    while (text.charCodeAt(i - 1 - backslashes) === 0x5c) backslashes++;
    if (backslashes % 2 === 0) return i;
  }
  return text.length;
}

const BODY_CHARS = Symbol('kuberelay.bodyChars');
const BODY_TEXT = Symbol('kuberelay.bodyText');

/**
 * Size of the JSON body as parsed (UTF-16 units, close enough for a token estimate): a chunked
 * body has no content-length, but its prompt must be reserved against token limits all the same.
 */
export function bodyChars(req: object): number {
  return (req as { [BODY_CHARS]?: number })[BODY_CHARS] ?? 0;
}

/** The JSON body's text as the client sent it (for relay/body-splice.ts), if it was JSON. */
export function bodyText(req: object): string | undefined {
  return (req as { [BODY_TEXT]?: string })[BODY_TEXT];
}

/**
 * Fastify's own JSON parser (with its prototype-poisoning checks), refusing bodies nested deeper
 * than MAX_JSON_DEPTH with a 400 before parsing them.
 */
export function installJsonParser(app: FastifyInstance) {
  const parse = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (req, body, done) => {
    const text = body as string; // parseAs: 'string'
    (req as { [BODY_CHARS]?: number })[BODY_CHARS] = text.length;
    (req as { [BODY_TEXT]?: string })[BODY_TEXT] = text;
    if (nestsDeeperThan(text, MAX_JSON_DEPTH)) {
      done(
        badRequest('invalid_json', `the request body nests deeper than ${MAX_JSON_DEPTH} levels`),
        undefined,
      );
      return;
    }
    parse(req, text, done);
  });
}
