// multipart/form-data bodies for the mock's upload endpoints (audio, image edits), parsed from the
// body bytes the server read.
import { Readable } from 'node:stream';
import { Busboy } from '@fastify/busboy';
import type { MockRequest } from './api.ts';

export interface MockFile {
  name: string;
  filename: string;
  contentType: string;
  data: Buffer;
}

export interface MockForm {
  fields: Record<string, string>;
  files: MockFile[];
}

/** The request's form, or an Error saying why it is not one. */
export function parseForm(r: MockRequest): Promise<MockForm> {
  const contentType = r.req.headers['content-type'] ?? '';
  if (!contentType.toLowerCase().startsWith('multipart/form-data')) {
    return Promise.reject(new Error(`expected multipart/form-data, got ${contentType || 'no content type'}`));
  }
  return new Promise((resolve, reject) => {
    const form: MockForm = { fields: {}, files: [] };
    let bb: ReturnType<typeof Busboy>;
    try {
      bb = Busboy({ headers: r.req.headers as { 'content-type': string } });
    } catch (err) {
      reject(err);
      return;
    }
    bb.on('field', (name, value) => {
      form.fields[name] ??= value;
    });
    bb.on('file', (name, stream, filename, _enc, mimeType) => {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () =>
        form.files.push({ name, filename, contentType: mimeType, data: Buffer.concat(chunks) }),
      );
    });
    bb.on('finish', () => resolve(form));
    bb.on('error', reject);
    Readable.from([r.bytes ?? Buffer.alloc(0)]).pipe(bb);
  });
}
