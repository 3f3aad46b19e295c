import type { FastifyInstance, FastifyRequest } from 'fastify';
import { badRequest } from './errors.ts';

/**
 * Request bodies nest at most this deep. Real payloads (messages, tools with JSON Schemas) stay far
 * below it; 100k-deep arrays would otherwise overflow the stack of whatever walks the parsed body
 * next (the prototype-poisoning scan, JSON.stringify when forwarding) and end as a 500.
 */
export const MAX_JSON_DEPTH = 128;

/** What one pass over a JSON text found (scanJson). */
export type JsonScan = 'plain' | 'suspect' | 'too_deep';

/**
 * One pass over `text` (JSON or not), strings skipped: `too_deep` when it opens more than
 * `maxDepth` arrays/objects at once; else `suspect` when a string in it may be a key that poisons
 * a prototype (`__proto__`, `constructor`, spelt out or with `\u` escapes); else `plain`.
 */
export function scanJson(text: string, maxDepth: number): JsonScan {
  let depth = 0;
  let suspect = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      const end = stringEnd(text, i + 1);
      if (!suspect) suspect = mayBePoisonKey(text, i + 1, end);
      i = end;
    } else if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
      if (++depth > maxDepth) return 'too_deep';
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      depth--;
    }
  }
  return suspect ? 'suspect' : 'plain';
}

/**
 * Whether the raw string text[start, end) may decode to `__proto__` or `constructor`: it is one of
 * them, or it has a backslash and the length that 9 or 11 letters take when some are written
 * as 6-character `\uXXXX` escapes (9 to 66 characters).
 */
function mayBePoisonKey(text: string, start: number, end: number): boolean {
  const n = end - start;
  if (n < 9 || n > 66) return false;
  if (n === 9 && text.startsWith('__proto__', start)) return true;
  if (n === 11 && text.startsWith('constructor', start)) return true;
  const backslash = text.indexOf('\\', start);
  return backslash !== -1 && backslash < end;
}

/** Whether `text` (JSON or not) opens more than `max` arrays/objects at once, strings skipped. */
export function nestsDeeperThan(text: string, max: number): boolean {
  return scanJson(text, max) === 'too_deep';
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
 * than MAX_JSON_DEPTH with a 400 before parsing them. Text in which the depth scan saw no string
 * that may be a poisoning key is parsed with JSON.parse alone (secure-json-parse would run two
 * regular expressions over it to find the same); anything JSON.parse refuses (an empty body, a
 * byte-order mark, bad JSON) goes to Fastify's parser too, so every refusal is its answer.
 */
export function installJsonParser(app: FastifyInstance) {
  // Fastify's default JSON parser is the callback form.
  const parse = jsonBodyParser(app.getDefaultJsonParser('error', 'error') as BodyParser);
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, parse);
}

export type BodyParser = (
  req: FastifyRequest,
  body: string,
  done: (err: Error | null, body?: unknown) => void,
) => void;

/** The parser installJsonParser installs, in front of Fastify's `fallback` (for bench/json-body.ts). */
export function jsonBodyParser(fallback: BodyParser): BodyParser {
  return (req, text, done) => {
    (req as { [BODY_CHARS]?: number })[BODY_CHARS] = text.length;
    (req as { [BODY_TEXT]?: string })[BODY_TEXT] = text;
    const scan = scanJson(text, MAX_JSON_DEPTH);
    if (scan === 'too_deep') {
      done(
        badRequest('invalid_json', `the request body nests deeper than ${MAX_JSON_DEPTH} levels`),
        undefined,
      );
      return;
    }
    if (scan === 'suspect') {
      fallback(req, text, done);
      return;
    }
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      fallback(req, text, done);
      return;
    }
    done(null, value);
  };
}
