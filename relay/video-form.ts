import type { IncomingMessage } from 'node:http';
import { Busboy, type BusboyInstance } from '@fastify/busboy';
import type { FastifyInstance } from 'fastify';
import { badRequest, RelayError } from './errors.ts';

/**
 * multipart/form-data for POST /v1/videos (what the openai SDK's `videos.create` sends): text
 * fields become the body's fields, the `input_reference` file is kept as bytes (a video job may
 * wait in the queue before it is submitted, so its input is stored with it). Bounded by the
 * body limit; anything past it is a 413 in OpenAI's shape.
 */

export interface FormFile {
  contentType: string;
  filename?: string;
  data: Uint8Array;
}

/** The parsed form: fields as strings, files by field name. */
export interface VideoForm {
  [field: string]: string | FormFile;
}

export function isFormFile(v: unknown): v is FormFile {
  return typeof v === 'object' && v !== null && (v as FormFile).data instanceof Uint8Array;
}

/** Registers the parser in this (encapsulated) scope only, beside whatever the app has. */
export function installVideoFormParser(scope: FastifyInstance, maxBytes: number) {
  if (scope.hasContentTypeParser('multipart/form-data')) scope.removeContentTypeParser('multipart/form-data');
  scope.addContentTypeParser('multipart/form-data', (req, payload, done) => {
    parseForm(req.raw, payload, maxBytes).then(
      (form) => done(null, form),
      (err: Error) => done(err, undefined),
    );
  });
}

function parseForm(
  req: IncomingMessage,
  payload: NodeJS.ReadableStream,
  maxBytes: number,
): Promise<VideoForm> {
  return new Promise((resolve, reject) => {
    let bb: BusboyInstance;
    try {
      bb = new Busboy({
        headers: req.headers as { 'content-type': string },
        limits: { fileSize: maxBytes, files: 4, fields: 64, fieldSize: 1024 * 1024 },
      });
    } catch (err) {
      reject(badRequest('invalid_body', `the multipart body cannot be read: ${(err as Error).message}`));
      return;
    }
    const form: VideoForm = {};
    let failed: Error | undefined;
    const fail = (e: Error) => {
      failed ??= e;
    };
    bb.on('field', (name: string, value: string) => {
      form[name] = value;
    });
    bb.on('file', (name, stream, filename, _enc, mimeType) => {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('limit', () =>
        fail(
          new RelayError(
            413,
            'invalid_request_error',
            'request_too_large',
            `the file ${name} is larger than ${maxBytes} bytes`,
          ),
        ),
      );
      stream.on('end', () => {
        const file: FormFile = {
          contentType: mimeType || 'application/octet-stream',
          data: Buffer.concat(chunks),
        };
        if (filename) file.filename = filename;
        form[name] = file;
      });
    });
    bb.on('error', (err: Error) =>
      reject(failed ?? badRequest('invalid_body', `the multipart body cannot be read: ${err.message}`)),
    );
    bb.on('finish', () => (failed ? reject(failed) : resolve(form)));
    payload.pipe(bb);
  });
}
