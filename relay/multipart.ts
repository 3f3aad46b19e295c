import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import type { IncomingHttpHeaders } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Transform, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Busboy } from '@fastify/busboy';
import { badRequest, RelayError } from './errors.ts';
import { memoryPacer } from './memory-pacer.ts';

/**
 * multipart/form-data request bodies (audio uploads, image edits): read once from the client,
 * text fields kept (they are small), file parts spooled to a temp file each — never held in
 * memory, bounded by the body limit. The model may come after the file (openai-node writes fields
 * in object-key order), so the relay reads the whole form before it picks a channel; spooling
 * also makes the body replayable, so a failed attempt fails over like a JSON one. Each attempt
 * gets the form re-encoded with its channel's model name, streamed from the spool.
 */

export type FormPart =
  | { kind: 'field'; name: string; value: string }
  | { kind: 'file'; name: string; filename: string; contentType: string; path: string; size: number };

export interface SpooledForm {
  parts: FormPart[];
  /** Removes the spooled files; safe to call more than once. */
  cleanup(): Promise<void>;
}

const LIMITS = { fieldSize: 1024 * 1024, fields: 1000, files: 16, parts: 1000 };

// The rest of a refused body is never read: the connection closes after the answer.
const CLOSE = { headers: { connection: 'close' } };

const tooLarge = (limit: number) =>
  new RelayError(
    413,
    'invalid_request_error',
    'request_too_large',
    `request body is larger than ${limit} bytes (KUBERELAY_MAX_BODY_BYTES)`,
    CLOSE,
  );

const unreadable = (err: unknown) =>
  new RelayError(
    400,
    'invalid_request_error',
    'invalid_multipart',
    `the multipart body cannot be read: ${(err as Error).message}`,
    CLOSE,
  );

/** Reads a multipart body to the end; rejects with a RelayError (400, 413) and leaves no file behind. */
export async function spoolForm(
  payload: Readable,
  headers: IncomingHttpHeaders,
  limit: number,
  dir = tmpdir(),
): Promise<SpooledForm> {
  const declared = Number(headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) throw tooLarge(limit);
  let bb: ReturnType<typeof Busboy>;
  try {
    // preservePath: the upstream gets the filename the client sent, not busboy's basename of it.
    bb = Busboy({ headers: headers as { 'content-type': string }, limits: LIMITS, preservePath: true });
  } catch (err) {
    throw unreadable(err);
  }
  payload.on('error', () => {}); // a client gone while the spool is made: seen by readInto
  const spool = await mkdtemp(join(dir, 'kuberelay-form-')).catch((err: unknown) => {
    throw isDiskFull(err) ? spoolFull() : err;
  });
  const cleanup = () => rm(spool, { recursive: true, force: true });
  const parts: FormPart[] = [];
  const writes: Promise<void>[] = [];
  const open: Readable[] = [];
  let refused: RelayError | undefined;
  const refuse = (e: RelayError) => {
    refused ??= e;
  };
  bb.on('field', (name, value, _nameTruncated, valueTruncated) => {
    if (valueTruncated) refuse(badRequest('field_too_large', `form field '${name}' is over 1 MiB`, name));
    parts.push({ kind: 'field', name, value });
  });
  bb.on('file', (name, stream, filename, _encoding, mimeType) => {
    const part: FormPart = {
      kind: 'file',
      name,
      filename: filename ?? name,
      contentType: mimeType || 'application/octet-stream',
      path: join(spool, String(parts.length)),
      size: 0,
    };
    parts.push(part);
    stream.on('data', (c: Buffer) => {
      part.size += c.length;
    });
    open.push(stream);
    writes.push(pipeline(stream, createWriteStream(part.path)));
  });
  bb.on('filesLimit', () =>
    refuse(badRequest('too_many_files', `a form takes at most ${LIMITS.files} files`)),
  );
  bb.on('partsLimit', () =>
    refuse(badRequest('too_many_parts', `a form takes at most ${LIMITS.parts} parts`)),
  );
  let seen = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _enc, done) {
      seen += chunk.length;
      memoryPacer.add(chunk.length);
      done(seen > limit ? tooLarge(limit) : null, chunk);
    },
  });
  try {
    await readInto(payload, counter, bb);
    await Promise.all(writes);
  } catch (err) {
    // A part cut off mid-file never ends by itself: end its write before removing the spool.
    for (const s of open) s.destroy();
    await Promise.allSettled(writes);
    await cleanup();
    if (err instanceof RelayError) throw err;
    if (seen > limit) throw tooLarge(limit);
    if (isDiskFull(err)) throw spoolFull();
    throw unreadable(err);
  }
  if (refused) {
    await cleanup();
    throw refused;
  }
  return { parts, cleanup };
}

const isDiskFull = (err: unknown) => ['ENOSPC', 'EDQUOT'].includes((err as { code?: string }).code ?? '');

/** The relay's temp space ran out: its own trouble, not the client's (a retry may land on a peer). */
const spoolFull = () =>
  new RelayError(
    503,
    'server_error',
    'upload_spool_full',
    "the relay's temp space for uploads is full; retry later",
    { headers: { ...CLOSE.headers, 'retry-after': '1' } },
  );

/**
 * Pipes the client's body through `counter` into the parser. Unlike stream.pipeline, a failure
 * leaves the request stream alone (only paused): destroying it would take the socket, and with it
 * the 413 or 400 the client is owed.
 */
function readInto(payload: Readable, counter: Transform, bb: Writable): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const fail = (err: unknown) => {
      payload.unpipe(counter);
      payload.pause();
      counter.destroy();
      reject(err);
    };
    const gone = () => {
      if (!payload.readableEnded) fail(new Error('the client went away'));
    };
    if (payload.destroyed) return gone();
    payload.once('error', fail);
    payload.once('close', gone);
    counter.once('error', fail);
    bb.once('error', fail);
    bb.once('finish', () => resolve());
    payload.pipe(counter).pipe(bb);
  });
}

/** The text fields of a form as an object (the first of repeated names), for model and limits. */
export function formFields(form: SpooledForm): Record<string, string> {
  // No prototype: a field named __proto__ or constructor is just a field.
  const out: Record<string, string> = Object.create(null);
  for (const p of form.parts) if (p.kind === 'field' && !Object.hasOwn(out, p.name)) out[p.name] = p.value;
  return out;
}

/** A form ready to send: its content type (with boundary), exact length and a fresh body stream. */
export interface EncodedForm {
  contentType: string;
  length: number;
  body(): Readable;
}

/** Re-encodes the form with `overrides` replacing those fields' values (e.g. the upstream model). */
export function encodeForm(form: SpooledForm, overrides: Readonly<Record<string, string>>): EncodedForm {
  const boundary = `----kuberelay-${randomBytes(12).toString('hex')}`;
  const pieces: Array<Buffer | { path: string; size: number }> = [];
  for (const p of form.parts) {
    if (p.kind === 'field') {
      const value = Object.hasOwn(overrides, p.name) ? overrides[p.name]! : p.value;
      pieces.push(Buffer.from(`--${boundary}\r\n${disposition(p.name)}\r\n\r\n${value}\r\n`));
    } else {
      const head = `--${boundary}\r\n${disposition(p.name, p.filename)}\r\nContent-Type: ${p.contentType}\r\n\r\n`;
      pieces.push(Buffer.from(head), { path: p.path, size: p.size }, Buffer.from('\r\n'));
    }
  }
  pieces.push(Buffer.from(`--${boundary}--\r\n`));
  const length = pieces.reduce((n, x) => n + (Buffer.isBuffer(x) ? x.length : x.size), 0);
  return {
    contentType: `multipart/form-data; boundary=${boundary}`,
    length,
    body: () => Readable.from(chunks(pieces)),
  };
}

async function* chunks(pieces: Array<Buffer | { path: string; size: number }>) {
  for (const x of pieces) {
    if (Buffer.isBuffer(x)) yield x;
    else
      for await (const chunk of createReadStream(x.path)) {
        memoryPacer.add((chunk as Buffer).length);
        yield chunk as Buffer;
      }
  }
}

/** WHATWG form encoding escapes quotes and line breaks in names (so a name cannot end the header). */
const quoted = (s: string) => `"${s.replace(/"/g, '%22').replace(/\r/g, '%0D').replace(/\n/g, '%0A')}"`;

function disposition(name: string, filename?: string): string {
  const file = filename === undefined ? '' : `; filename=${quoted(filename)}`;
  return `Content-Disposition: form-data; name=${quoted(name)}${file}`;
}
