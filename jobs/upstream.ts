import { randomBytes } from 'node:crypto';
import type { Dispatcher } from 'undici';
import type { MultipartPart, UpstreamCall } from '../providers/jobs.ts';
import type { ChannelRuntime } from '../relay/runtime.ts';

/**
 * Sends one `UpstreamCall` (an adapter's pure description, providers/jobs.ts) through the channel's
 * connection pool: its credential and static headers, the adapter's signature when it signs, a
 * bound on the whole call. The HTTP edge of the job plane.
 */

/** The most of a JSON job answer the plane reads (submit and poll answers are small). */
const MAX_JSON_BYTES = 4 * 1024 * 1024;

export interface SendOptions {
  /** Headers to add (e.g. the client's Range on content). */
  headers?: Record<string, string>;
  timeoutMs: number;
  signal?: AbortSignal;
}

export async function sendCall(
  ch: ChannelRuntime,
  call: UpstreamCall,
  o: SendOptions,
): Promise<Dispatcher.ResponseData> {
  let body: Buffer | undefined;
  const headers: Record<string, string> = { ...ch.headers, ...call.headers, ...o.headers };
  if (call.body !== undefined && call.multipart) {
    const boundary = `----kuberelay${randomBytes(12).toString('hex')}`;
    body = encodeMultipart(call.body as Record<string, MultipartPart>, boundary);
    headers['content-type'] = `multipart/form-data; boundary=${boundary}`;
  } else if (call.body !== undefined) {
    body = Buffer.from(JSON.stringify(call.body));
    headers['content-type'] = 'application/json';
  }
  if (body) headers['content-length'] = String(body.length);
  headers.accept ??= 'application/json';
  if (ch.adapter.sign) {
    const signed = ch.adapter.sign(
      { method: call.method, url: ch.origin + call.path, headers, body: body?.toString('utf8') ?? '' },
      ch.target,
    );
    Object.assign(headers, signed);
  }
  const timeout = AbortSignal.timeout(o.timeoutMs);
  return ch.dispatcher.request({
    origin: ch.origin,
    path: call.path,
    method: call.method,
    headers,
    body,
    signal: o.signal ? AbortSignal.any([o.signal, timeout]) : timeout,
    headersTimeout: o.timeoutMs,
    bodyTimeout: o.timeoutMs,
  });
}

/** Reads a JSON answer (bounded); undefined when it is not JSON. */
export async function readJson(res: Dispatcher.ResponseData): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of res.body) {
    size += (c as Buffer).length;
    if (size > MAX_JSON_BYTES) {
      res.body.destroy();
      return undefined;
    }
    chunks.push(c as Buffer);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    return undefined;
  }
}

/** multipart/form-data (RFC 7578) of text fields and files. */
export function encodeMultipart(parts: Record<string, MultipartPart>, boundary: string): Buffer {
  const out: Buffer[] = [];
  const quote = (s: string) => s.replace(/["\r\n\\]/g, (c) => encodeURIComponent(c));
  for (const [name, v] of Object.entries(parts)) {
    let head = `--${boundary}\r\ncontent-disposition: form-data; name="${quote(name)}"`;
    if (typeof v === 'string') {
      out.push(Buffer.from(`${head}\r\n\r\n`), Buffer.from(v), Buffer.from('\r\n'));
      continue;
    }
    head += `; filename="${quote(v.filename ?? name)}"\r\ncontent-type: ${v.contentType}\r\n\r\n`;
    out.push(Buffer.from(head), Buffer.from(v.data), Buffer.from('\r\n'));
  }
  out.push(Buffer.from(`--${boundary}--\r\n`));
  return Buffer.concat(out);
}
