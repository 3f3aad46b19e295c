// Response helpers shared by the mock's provider modules: JSON answers and paced SSE streams with
// the shared stream faults (stall, die, big event, preamble stall, CRLF framing, spaced JSON).
import type { ServerResponse } from 'node:http';
import type { MockFaults } from './faults.ts';

export interface MockHttp {
  /** `x-mock-name` of this instance. */
  name: string;
  /** e.g. http://127.0.0.1:PORT */
  baseUrl(): string;
  /** A fresh sequence number for response ids. */
  nextId(): number;
  nowSec(): number;
  sendJson(res: ServerResponse, status: number, body: string, headers?: Record<string, string>): void;
  /**
   * Writes an SSE stream: `head` at once, then `count` content pieces (paced by the chunk delay),
   * then `tail` together with the last piece. streamStallAfter / streamDieAfter cut it after N
   * pieces; preambleThenStallMs waits that long after `head` before the first piece.
   */
  stream(
    res: ServerResponse,
    head: string,
    count: number,
    piece: (i: number) => string,
    tail: string,
    faults: MockFaults | undefined,
    headers?: Record<string, string>,
  ): void;
  /** streamEventBytes: one content event of `bytes` in 1 MiB writes, never finished. */
  bigEvent(res: ServerResponse, head: string, start: string, bytes: number): void;
}

/** SSE text as another server frames it: its line ending, its JSON spacing. */
function reframe(text: string, faults: MockFaults | undefined): string {
  let t = text;
  if (faults?.spacedJson) t = t.replace(/":/g, '": ').replace(/,"/g, ', "');
  const nl = faults?.sseLineEnding === 'crlf' ? '\r\n' : faults?.sseLineEnding === 'cr' ? '\r' : undefined;
  return nl ? t.replace(/\n/g, nl) : t;
}

export function mockHttp(name: string, baseUrl: () => string, defaultChunkDelayMs: number): MockHttp {
  let seq = 0;
  const sendJson: MockHttp['sendJson'] = (res, status, body, headers) => {
    res.writeHead(status, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(body),
      'x-mock-name': name,
      ...headers,
    });
    res.end(body);
  };

  const stream: MockHttp['stream'] = (res, head, count, piece, tail, faults, headers) => {
    const delayMs = faults?.chunkDelayMs ?? defaultChunkDelayMs;
    const preambleMs = faults?.preambleThenStallMs ?? 0;
    let cut = count;
    let mode: 'end' | 'stall' | 'die' = 'end';
    const die = faults?.streamDieAfter;
    const stall = faults?.streamStallAfter;
    if (die !== undefined && (stall === undefined || die <= stall)) {
      mode = 'die';
      cut = Math.min(die, count);
    } else if (stall !== undefined) {
      mode = 'stall';
      cut = Math.min(stall, count);
    }
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      'x-mock-name': name,
      ...headers,
    });
    const out = (t: string) => reframe(t, faults);
    const finish = (data: string): void => {
      // holdAfterDone: the whole answer, [DONE] included, on a socket that never ends
      if (mode === 'end' && faults?.holdAfterDone) res.write(out(data + tail));
      else if (mode === 'end' && faults?.endAfterDoneMs !== undefined) {
        res.write(out(data + tail));
        const end = setTimeout(() => res.end(), faults.endAfterDoneMs);
        res.once('close', () => clearTimeout(end));
      } else if (mode === 'end') res.end(out(data + tail));
      // stall: never end, the socket stays open (until the client leaves or close() destroys it)
      else if (mode === 'stall') res.write(out(data));
      // die: flush what was promised, then drop the connection without the chunked terminator
      else res.write(out(data), () => res.destroy());
    };
    if ((delayMs <= 0 && preambleMs <= 0) || cut === 0) {
      let data = head;
      for (let i = 0; i < cut; i++) data += piece(i);
      finish(data);
      return;
    }
    let i = 0;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const next = (): void => {
      const p = piece(i++);
      if (i < cut) {
        res.write(out(p));
        timer = setTimeout(next, delayMs);
      } else finish(p);
    };
    res.once('close', () => clearTimeout(timer));
    res.write(out(head));
    timer = setTimeout(next, Math.max(delayMs, preambleMs));
  };

  const bigEvent: MockHttp['bigEvent'] = (res, head, start, bytes) => {
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'x-mock-name': name });
    res.write(head + start);
    const slice = 'x'.repeat(1024 * 1024);
    let left = bytes;
    const more = (): void => {
      while (left > 0) {
        const n = Math.min(left, slice.length);
        left -= n;
        if (!res.write(n === slice.length ? slice : slice.slice(0, n))) {
          res.once('drain', more);
          return;
        }
      }
      res.write('"}}]}'); // the event's JSON ends; its blank line never comes
    };
    more();
  };

  return {
    name,
    baseUrl,
    nextId: () => ++seq,
    nowSec: () => Math.floor(Date.now() / 1000),
    sendJson,
    stream,
    bigEvent,
  };
}

export type Json = Record<string, unknown>;

export function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
