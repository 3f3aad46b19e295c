import { Buffer } from 'node:buffer';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { Busboy } from '@fastify/busboy';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RelayError } from '../../relay/errors.ts';
import { encodeForm, formFields, spoolForm } from '../../relay/multipart.ts';

// relay/multipart.ts: a form read from the client (in chunks cut anywhere) and re-encoded for the
// upstream says the same thing, parts in order, with only the overridden fields changed; the
// declared length is the bytes sent; the body limit holds; no spooled file outlives a failure.

type Part =
  | { name: string; value: string }
  | { name: string; filename: string; type: string; data: Uint8Array };

/** How a client encodes a form (as undici's FormData does: CRLF, quoted names). */
function clientBody(parts: Part[], boundary: string): Buffer {
  const out: Buffer[] = [];
  for (const p of parts) {
    if ('value' in p) {
      out.push(
        Buffer.from(
          `--${boundary}\r\nContent-Disposition: form-data; name="${p.name}"\r\n\r\n${p.value}\r\n`,
        ),
      );
    } else {
      out.push(
        Buffer.from(
          `--${boundary}\r\nContent-Disposition: form-data; name="${p.name}"; filename="${p.filename}"\r\nContent-Type: ${p.type}\r\n\r\n`,
        ),
        Buffer.from(p.data),
        Buffer.from('\r\n'),
      );
    }
  }
  out.push(Buffer.from(`--${boundary}--\r\n`));
  return Buffer.concat(out);
}

/** The body cut into chunks at the given points (as TCP may deliver it). */
function chunked(body: Buffer, cuts: number[]): Readable {
  const points = [...new Set(cuts.map((c) => c % (body.length + 1)))].sort((a, b) => a - b);
  const pieces: Buffer[] = [];
  let at = 0;
  for (const p of [...points, body.length]) {
    if (p > at) pieces.push(body.subarray(at, p));
    at = Math.max(at, p);
  }
  return Readable.from(pieces);
}

/** What an upstream's parser reads from a body. */
function parse(body: Buffer, contentType: string): Promise<Part[]> {
  return new Promise((resolve, reject) => {
    const parts: Part[] = [];
    const bb = Busboy({ headers: { 'content-type': contentType }, preservePath: true });
    bb.on('field', (name, value) => parts.push({ name, value }));
    bb.on('file', (name, stream, filename, _enc, type) => {
      const p = { name, filename, type, data: new Uint8Array() };
      parts.push(p);
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        p.data = new Uint8Array(Buffer.concat(chunks));
      });
    });
    bb.on('finish', () => resolve(parts));
    bb.on('error', reject);
    Readable.from([body]).pipe(bb);
  });
}

const name = fc.stringMatching(/^[a-z_][a-z0-9_[\]]{0,20}$/);
const field = fc.record({
  name,
  value: fc.string({ maxLength: 200 }).map((s) => s.replace(/\r?\n/g, '\r\n')),
});
const file = fc.record({
  name,
  filename: fc.stringMatching(/^[A-Za-z0-9._ /-]{1,30}$/),
  type: fc.constantFrom('audio/mpeg', 'image/png', 'application/octet-stream', 'audio/wav'),
  data: fc.uint8Array({ maxLength: 5000 }),
});

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kuberelay-multipart-test-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const contentType = (b: string) => `multipart/form-data; boundary=${b}`;

describe('multipart forms', () => {
  it('read in any chunks and re-encoded, a form says the same, with only the model replaced', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.oneof(field, file), { maxLength: 6 }),
        fc.nat({ max: 6 }),
        fc.array(fc.nat(), { maxLength: 8 }),
        fc.stringMatching(/^[A-Za-z0-9'()+_,-]{1,40}$/),
        async (others, at, cuts, boundary) => {
          const parts: Part[] = [...others];
          parts.splice(Math.min(at, parts.length), 0, { name: 'model', value: 'whisper-1' });
          const body = clientBody(parts, boundary);
          const form = await spoolForm(
            chunked(body, cuts),
            { 'content-type': contentType(boundary) },
            1 << 20,
            dir,
          );
          try {
            expect(formFields(form).model).toBe(
              parts.find((p) => p.name === 'model' && 'value' in p)!['value' as never],
            );
            const enc = encodeForm(form, { model: 'up-model' });
            const chunks: Buffer[] = [];
            for await (const c of enc.body()) chunks.push(c as Buffer);
            const sent = Buffer.concat(chunks);
            expect(sent.length).toBe(enc.length);
            const expected = parts.map((p) =>
              'value' in p && p.name === 'model' ? { ...p, value: 'up-model' } : p,
            );
            expect(await parse(sent, enc.contentType)).toEqual(expected);
            // A second attempt (failover) sends the same bytes again.
            const again: Buffer[] = [];
            for await (const c of enc.body()) again.push(c as Buffer);
            expect(Buffer.concat(again).length).toBe(enc.length);
          } finally {
            await form.cleanup();
          }
        },
      ),
      { numRuns: 60 },
    );
    expect(await readdir(dir)).toEqual([]);
  });

  it('a body over the limit is a 413 whether or not it declared its length, and nothing stays spooled', async () => {
    const body = clientBody(
      [{ name: 'file', filename: 'a.mp3', type: 'audio/mpeg', data: new Uint8Array(70_000) }],
      'b',
    );
    for (const headers of [
      { 'content-type': contentType('b'), 'content-length': String(body.length) },
      { 'content-type': contentType('b') },
    ]) {
      const err = await spoolForm(chunked(body, [1000, 30_000]), headers, 64 * 1024, dir).catch(
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(RelayError);
      expect((err as RelayError).statusCode).toBe(413);
      expect((err as RelayError).body().error.code).toBe('request_too_large');
    }
    expect(await readdir(dir)).toEqual([]);
  });

  it('a client that leaves mid-file, or a form cut short, leaves no file behind and gets a 400', async () => {
    const body = clientBody(
      [{ name: 'file', filename: 'a.mp3', type: 'audio/mpeg', data: new Uint8Array(50_000) }],
      'b',
    );
    const cut = Readable.from([body.subarray(0, 20_000)]);
    const err = await spoolForm(cut, { 'content-type': contentType('b') }, 1 << 20, dir).catch(
      (e: unknown) => e,
    );
    expect((err as RelayError).statusCode).toBe(400);
    expect((err as RelayError).body().error.code).toBe('invalid_multipart');

    const gone = new Readable({ read() {} });
    gone.push(body.subarray(0, 20_000));
    const pending = spoolForm(gone, { 'content-type': contentType('b') }, 1 << 20, dir).catch(
      (e: unknown) => e,
    );
    setImmediate(() => gone.destroy(new Error('aborted')));
    expect(((await pending) as RelayError).statusCode).toBe(400);
    expect(await readdir(dir)).toEqual([]);
  });

  it('fields named like Object.prototype members are plain fields of the form', async () => {
    const body = clientBody(
      [
        { name: '__proto__', value: 'x' },
        { name: 'constructor', value: 'y' },
        { name: 'model', value: 'm' },
      ],
      'b',
    );
    const form = await spoolForm(Readable.from([body]), { 'content-type': contentType('b') }, 1 << 20, dir);
    const fields = formFields(form);
    expect(Object.keys(fields)).toEqual(['__proto__', 'constructor', 'model']);
    expect(fields.constructor).toBe('y');
    await form.cleanup();
  });

  it('a multipart content type without a boundary is a 400 in OpenAI error shape', async () => {
    const err = await spoolForm(
      Readable.from([]),
      { 'content-type': 'multipart/form-data' },
      1024,
      dir,
    ).catch((e: unknown) => e);
    expect((err as RelayError).statusCode).toBe(400);
    expect((err as RelayError).body().error.type).toBe('invalid_request_error');
  });
});
