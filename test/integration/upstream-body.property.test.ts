import fc from 'fast-check';
import { Agent, type Dispatcher } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { UpstreamBody } from '../../relay/upstream-body.ts';
import { callUpstream } from '../../relay/upstream-call.ts';
import { errCode } from '../../relay/upstream-fault.ts';
import { type ScriptedHttp, startScriptedHttp, writeAll } from '../helpers/scripted-http.ts';

// Whatever the upstream's chunking and pacing (with a Content-Length or chunked, more than the
// 64 KiB that pauses the upstream or less) and however the reader takes the body (pulling, or
// pushed to a sink that now and then waits, as a slow client makes it wait), the bytes read are
// the bytes sent, in order, and the body ends closed. A connection cut mid-answer gives a prefix
// of what was sent and then undici's UND_ERR_SOCKET, never a clean end.

let http: ScriptedHttp;
let agent: Agent;
let n = 0;

beforeAll(async () => {
  http = await startScriptedHttp();
  agent = new Agent({ keepAliveTimeout: 30_000, pipelining: 1 });
});
afterAll(async () => {
  await agent.close();
  await http.close();
});

/** A wait of one of three lengths: none, a microtask, a macrotask (the event loop turns). */
type Wait = 0 | 1 | 2;
const wait = (w: Wait): Promise<void> | undefined =>
  w === 0 ? undefined : w === 1 ? Promise.resolve() : new Promise((r) => setImmediate(r));

/** A chunk as its length and a seed: its bytes differ from position to position and chunk to chunk. */
const chunk = fc.record({
  len: fc.oneof(
    { weight: 4, arbitrary: fc.integer({ min: 0, max: 2_000 }) },
    { weight: 2, arbitrary: fc.integer({ min: 1, max: 30_000 }) },
    // Past the 64 KiB high-water mark at once: the upstream gets paused and resumed.
    { weight: 1, arbitrary: fc.integer({ min: 64 * 1024, max: 200_000 }) },
  ),
  seed: fc.nat(255),
});
const bytes = ({ len, seed }: { len: number; seed: number }) => {
  const b = Buffer.allocUnsafe(len);
  for (let i = 0; i < len; i++) b[i] = (seed + i * 31) & 255;
  return b;
};

const answer = fc.record({
  chunks: fc.array(chunk, { maxLength: 12 }),
  withLength: fc.boolean(),
  serverWaits: fc.array(fc.constantFrom<Wait>(0, 1, 2), { minLength: 1, maxLength: 8 }),
  reader: fc.constantFrom('pull', 'push'),
  readerWaits: fc.array(fc.constantFrom<Wait>(0, 1, 2), { minLength: 1, maxLength: 8 }),
});

/** Reads `body` as the relay does in pull or push mode, waiting now and then as `waits` say. */
async function read(body: UpstreamBody, reader: string, waits: Wait[], got: Buffer[] = []): Promise<Buffer> {
  let i = 0;
  const take = (c: Buffer) => {
    if (c.length === 0) throw new Error('an empty chunk');
    got.push(c);
  };
  if (reader === 'pull') {
    for await (const c of body) {
      take(c);
      await wait(waits[i++ % waits.length]!);
    }
  } else {
    await body.consume((c) => {
      take(c);
      return wait(waits[i++ % waits.length]!);
    });
  }
  return Buffer.concat(got);
}

function serve(chunks: Buffer[], withLength: boolean, waits: Wait[], cutAfter?: number): string {
  const path = `/p${++n}`;
  http.on(path, (_req, res) => {
    const total = chunks.reduce((s, c) => s + c.length, 0);
    res.writeHead(200, {
      'content-type': 'application/octet-stream',
      ...(withLength ? { 'content-length': total } : {}),
    });
    res.flushHeaders(); // the answer has begun, even when the cut comes before a byte of it
    let i = 0;
    const sent = cutAfter === undefined ? chunks : chunks.slice(0, cutAfter);
    void writeAll(res, sent, async () => {
      await wait(waits[i++ % waits.length]!);
    }).then(() => {
      if (cutAfter === undefined) res.end();
      else res.socket?.destroy(); // without the chunked terminator: a cut answer
    });
  });
  return path;
}

const opts = (path: string): Dispatcher.DispatchOptions => ({
  origin: http.origin,
  path,
  method: 'POST',
  body: '{}',
  headersTimeout: 30_000,
  bodyTimeout: 30_000,
});

describe('the upstream body (property)', () => {
  it('reads exactly the bytes sent, whatever the chunking, pacing and reader', async () => {
    await fc.assert(
      fc.asyncProperty(answer, async (a) => {
        const chunks = a.chunks.map(bytes);
        const path = serve(chunks, a.withLength, a.serverWaits);
        const res = await callUpstream(agent, opts(path));
        const got = await read(res.body, a.reader, a.readerWaits);
        expect(got.equals(Buffer.concat(chunks))).toBe(true);
        expect(res.body.destroyed).toBe(true);
      }),
      { numRuns: 60 },
    );
  });

  it('a connection cut mid-answer: a prefix of what was sent, then UND_ERR_SOCKET', async () => {
    await fc.assert(
      fc.asyncProperty(answer, fc.nat(), async (a, k) => {
        const chunks = a.chunks.map(bytes);
        const cutAfter = chunks.length === 0 ? 0 : k % chunks.length;
        // Chunked: the client cannot take the cut for the end (with a length it knows it is short).
        const path = serve(chunks, false, a.serverWaits, cutAfter);
        const res = await callUpstream(agent, opts(path));
        const got: Buffer[] = [];
        let error: unknown;
        try {
          await read(res.body, a.reader, a.readerWaits, got);
        } catch (err) {
          error = err;
        }
        expect(errCode(error)).toBe('UND_ERR_SOCKET');
        const sent = Buffer.concat(chunks.slice(0, cutAfter));
        const partial = Buffer.concat(got);
        expect(sent.subarray(0, partial.length).equals(partial)).toBe(true);
        expect(res.body.destroyed).toBe(true);
      }),
      { numRuns: 40 },
    );
  });
});
