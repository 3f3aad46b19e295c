// One request of a benchmark, timed by the client: the headers, the first body bytes and the first
// generated token of a stream, the whole body; and the request bodies the benchmarks send.

import type { Pool } from 'undici';

export const CHAT_MODEL = 'gpt-4o-mini';
export const EMBEDDING_MODEL = 'text-embedding-3-small';

export interface Target {
  name: string;
  pool: Pool;
  headers: Record<string, string>;
}

export interface Sample {
  ok: boolean;
  error?: string;
  /** Until the whole response was read. */
  totalMs: number;
  /** Until the response headers. */
  headersMs: number;
  /** Streams: until the first body bytes, and until the first chunk with generated content. */
  firstByteMs?: number;
  firstTokenMs?: number;
  overheadMs?: number;
}

export interface RequestSpec {
  path: string;
  body: string;
  stream: boolean;
  /** Streams: the number of content chunks expected. */
  tokens?: number;
  extraHeaders?: Record<string, string>;
}

// Peers re-serialise the chunks (Python's json puts a space after the colon), so both are spacing-blind.
const FIRST_TOKEN = /"content":\s*"[^"]/;

/** Chat chunks with generated content in an SSE body (data lines parsed as JSON; others ignored). */
export function contentChunks(sse: string): number {
  let n = 0;
  for (const line of sse.split(/\r?\n/)) {
    if (!line.startsWith('data:')) continue;
    const data = line.slice(5).trim();
    if (data === '[DONE]') continue;
    try {
      const content = JSON.parse(data)?.choices?.[0]?.delta?.content;
      if (typeof content === 'string' && content.length > 0) n++;
    } catch {
      // not JSON: not a chat chunk
    }
  }
  return n;
}

export async function send(t: Target, spec: RequestSpec): Promise<Sample> {
  const t0 = performance.now();
  try {
    const res = await t.pool.request({
      path: spec.path,
      method: 'POST',
      headers: spec.extraHeaders ? { ...t.headers, ...spec.extraHeaders } : t.headers,
      body: spec.body,
    });
    const headersMs = performance.now() - t0;
    const oh = res.headers['x-kuberelay-overhead-ms'];
    const overheadMs = typeof oh === 'string' ? Number(oh) : undefined;
    if (!spec.stream) {
      const text = await res.body.text();
      const totalMs = performance.now() - t0;
      if (res.statusCode !== 200)
        return { ok: false, error: `${res.statusCode} ${text.slice(0, 200)}`, totalMs, headersMs };
      return { ok: true, totalMs, headersMs, overheadMs };
    }
    let text = '';
    let firstByteMs: number | undefined;
    let firstTokenMs: number | undefined;
    for await (const chunk of res.body) {
      const now = performance.now() - t0;
      firstByteMs ??= now;
      text += (chunk as Buffer).toString('utf8');
      if (firstTokenMs === undefined && FIRST_TOKEN.test(text)) firstTokenMs = now;
    }
    const totalMs = performance.now() - t0;
    if (res.statusCode !== 200)
      return { ok: false, error: `${res.statusCode} ${text.slice(0, 200)}`, totalMs, headersMs };
    const chunks = contentChunks(text);
    if (!/data: ?\[DONE\]/.test(text) || chunks !== spec.tokens) {
      return { ok: false, error: `incomplete stream (${chunks} content chunks)`, totalMs, headersMs };
    }
    return { ok: true, totalMs, headersMs, firstByteMs, firstTokenMs, overheadMs };
  } catch (err) {
    return {
      ok: false,
      error: (err as Error).message,
      totalMs: performance.now() - t0,
      headersMs: Number.NaN,
    };
  }
}

export const chatBody = (completionTokens: number, stream: boolean) =>
  JSON.stringify({
    model: CHAT_MODEL,
    messages: [
      {
        role: 'system',
        content:
          'You are a helpful assistant for a customer support team. Answer briefly and politely, cite the ' +
          'relevant policy section when there is one, and never invent order numbers or tracking codes.',
      },
      { role: 'user', content: 'Hello! My order has not arrived yet. What can I do about it?' },
      { role: 'assistant', content: 'I am sorry to hear that. Could you share the order number, please?' },
      { role: 'user', content: 'It is A-1042, placed last Tuesday. Thank you for your help.' },
    ],
    max_tokens: completionTokens,
    temperature: 0.2,
    ...(stream ? { stream: true } : {}),
  });

/** Failed requests: how many, and the first few distinct messages. */
export class Errors {
  count = 0;
  samples = new Set<string>();
  add(s: Sample) {
    if (s.ok) return;
    this.count++;
    if (this.samples.size < 5 && s.error) this.samples.add(s.error);
  }
  merge(other: Errors): this {
    this.count += other.count;
    for (const e of other.samples) if (this.samples.size < 5) this.samples.add(e);
    return this;
  }
}

export async function setMockFaults(mockURL: string, faults: Record<string, number> | null) {
  const res = await fetch(`${mockURL}/_mock/faults`, {
    method: faults ? 'PUT' : 'DELETE',
    headers: { 'content-type': 'application/json' },
    body: faults ? JSON.stringify(faults) : undefined,
  });
  if (!res.ok) throw new Error(`mock faults: ${res.status} ${await res.text()}`);
}
