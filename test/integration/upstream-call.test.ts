import type { ServerResponse } from 'node:http';
import { createServer } from 'node:net';
import { PassThrough } from 'node:stream';
import { Agent, type Dispatcher, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { callUpstream } from '../../relay/upstream-call.ts';
import { errCode, upstreamFault } from '../../relay/upstream-fault.ts';
import { type ScriptedHttp, startScriptedHttp, writeAll } from '../helpers/scripted-http.ts';
import { until } from '../helpers/until.ts';

// The relay's upstream call (relay/upstream-call.ts, relay/upstream-body.ts) against a real HTTP
// server through a real undici Agent configured as the relay's: what it gives the request path
// must be what undici's request() gave (status, headers, errors), with the same backpressure,
// timeouts, and a connection reused or closed as before.

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

/** A fresh path answered by `handler`. */
function route(handler: (res: ServerResponse, port: number) => void): string {
  const path = `/t${++n}`;
  http.on(path, (req, res) => handler(res, req.socket.remotePort!));
  return path;
}

const opts = (path: string, extra: Partial<Dispatcher.DispatchOptions> = {}): Dispatcher.DispatchOptions => ({
  origin: http.origin,
  path,
  method: 'POST',
  headers: { 'content-type': 'application/json' },
  body: '{}',
  headersTimeout: 10_000,
  bodyTimeout: 10_000,
  ...extra,
});

const call = (path: string, extra: Partial<Dispatcher.DispatchOptions> = {}, signal?: AbortSignal) =>
  callUpstream(agent, opts(path, extra), signal);

/** Settles `p` to its error (or throws when it resolved). */
async function errorOf(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection');
}

/** A server writing `total` bytes in 64 KiB writes, honouring backpressure; reports its progress. */
function bigAnswer(total: number) {
  const state = { written: 0, finished: false, closed: false };
  const chunk = Buffer.alloc(64 * 1024, 'x');
  const path = route((res) => {
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': total });
    res.once('close', () => {
      state.closed = true;
    });
    const chunks = Array.from({ length: total / chunk.length }, () => chunk);
    void writeAll(res, chunks, async () => {
      state.written += chunk.length;
    }).then(() => {
      res.end();
      state.finished = !res.destroyed;
    });
  });
  return { path, state };
}

/** Resolves once the server's writes stopped moving: blocked on a client that does not read. */
async function blocked(state: { written: number; finished: boolean }) {
  let last = -1;
  let still = 0;
  await until(
    'the server to be held back by the client',
    async () => {
      if (state.finished) throw new Error('the server wrote everything: nothing held it back');
      still = state.written === last ? still + 1 : 0;
      last = state.written;
      return still >= 5;
    },
    20_000,
  );
}

describe('the upstream call: what the request path sees', () => {
  it('gives the status and headers as request() does (lower-case names, arrays for repeated ones)', async () => {
    const path = route((res) => {
      res.setHeader('Content-Type', 'application/json');
      res.setHeader('Set-Cookie', ['a=1', 'b=2']);
      res.setHeader('X-Mixed-Case', 'v');
      res.setHeader('Retry-After', '3');
      res.end('{"ok":true}');
    });
    const a = await call(path);
    const chunks: Buffer[] = [];
    for await (const c of a.body) chunks.push(c);
    const r = await request(`${http.origin}${path}`, { method: 'POST', body: '{}', dispatcher: agent });
    const text = await r.body.text();
    const { date: _d1, ...mine } = a.headers;
    const { date: _d2, ...theirs } = r.headers;
    expect(a.statusCode).toBe(r.statusCode);
    expect(mine).toEqual(theirs);
    expect(mine['set-cookie']).toEqual(['a=1', 'b=2']);
    expect(mine['x-mixed-case']).toBe('v');
    expect(Buffer.concat(chunks).toString()).toBe(text);
    expect(a.body.destroyed).toBe(true);
  });

  it('skips a 1xx informational answer and resolves with the final one', async () => {
    const path = route((res) => {
      res.writeEarlyHints({ link: '</x>; rel=preload' });
      res.writeHead(201, { 'content-type': 'application/json' }).end('{}');
    });
    const a = await call(path);
    expect(a.statusCode).toBe(201);
    await a.body.dump();
  });
});

describe('the upstream body: backpressure', () => {
  it('holds the upstream back while nobody reads (and no body timeout cuts a paused answer), then reads it all', async () => {
    const total = 64 * 1024 * 1024;
    const { path, state } = bigAnswer(total);
    // bodyTimeout is far shorter than the wait below: a paused answer is not timed.
    const a = await call(path, { bodyTimeout: 300 });
    await blocked(state);
    expect(state.written).toBeLessThan(total);
    let read = 0;
    for await (const c of a.body) read += c.length;
    expect(read).toBe(total);
    expect(state.finished).toBe(true);
  });

  it('holds the upstream back while a push reader waits for its client, then delivers the rest', async () => {
    const total = 64 * 1024 * 1024;
    const { path, state } = bigAnswer(total);
    const a = await call(path, { bodyTimeout: 300 });
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    let read = 0;
    let waited = false;
    const done = a.body.consume((c) => {
      read += c.length;
      if (waited) return undefined;
      waited = true;
      return gate;
    });
    await blocked(state);
    expect(state.written).toBeLessThan(total);
    release();
    await done;
    expect(read).toBe(total);
    expect(state.finished).toBe(true);
  });
});

describe('the upstream body: chunks', () => {
  // undici's parser hands over empty chunks when a paused answer resumes; a sink that waited on
  // each of them paused and resumed the parser for the next one without end (a microtask loop that
  // never let the event loop run). A Readable drops empty chunks; so does the body.
  it('never hands an empty chunk to a reader, even one that waits on every chunk', async () => {
    const piece = Buffer.alloc(150_000, 'y');
    const path = route((res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      void writeAll(res, [Buffer.from('a'), piece, Buffer.from('b'), piece]).then(() => res.end());
    });
    for (const mode of ['push', 'pull']) {
      const a = await call(path);
      let read = 0;
      const take = (c: Buffer) => {
        if (c.length === 0) throw new Error('an empty chunk');
        read += c.length;
        return Promise.resolve();
      };
      if (mode === 'push') await a.body.consume(take);
      else for await (const c of a.body) await take(c);
      expect(read).toBe(2 + 2 * piece.length);
    }
  });
});

describe('the upstream body: dump and destroy', () => {
  it('dump() reads a short answer to its end: the connection is reused', async () => {
    const ports: number[] = [];
    const path = route((res, port) => {
      ports.push(port);
      res.writeHead(500, { 'content-type': 'text/html' }).end('<html>'.repeat(2000));
    });
    const one = new Agent({ connections: 1, pipelining: 1 }); // one connection: a new port is a new one
    await (await callUpstream(one, opts(path))).body.dump({ limit: 256 * 1024 });
    // (The pool frees the socket once undici's own end handling is over, after the dump resolves.)
    await new Promise((r) => setImmediate(r));
    await (await callUpstream(one, opts(path))).body.dump({ limit: 256 * 1024 });
    await one.close();
    expect(ports).toHaveLength(2);
    expect(ports[1]).toBe(ports[0]);
  });

  it.each([
    ['with a Content-Length over the limit', true],
    ['chunked, growing over the limit', false],
  ])(
    'dump() lets a long answer go (%s): the connection is closed, the dump resolves',
    async (_what, withLength) => {
      const ports: number[] = [];
      const closed: boolean[] = [];
      const path = route((res, port) => {
        ports.push(port);
        // More than loopback's socket buffers hold: the server still writes when the client cuts.
        const piece = Buffer.alloc(1024 * 1024, 'h');
        const total = 64 * piece.length;
        res.writeHead(502, {
          'content-type': 'text/html',
          ...(withLength ? { 'content-length': total } : {}),
        });
        res.once('close', () => closed.push(!res.writableFinished));
        void writeAll(
          res,
          Array.from({ length: 64 }, () => piece),
        ).then(() => res.end());
      });
      const one = new Agent({ connections: 1, pipelining: 1 });
      await (await callUpstream(one, opts(path))).body.dump({ limit: 256 * 1024 });
      await until('the server to see its answer cut', async () => closed.length === 1);
      expect(closed).toEqual([true]);
      // The next request needs a new connection.
      (await callUpstream(one, opts(path))).body.destroy();
      await one.destroy();
      expect(ports[1]).not.toBe(ports[0]);
    },
  );

  it('dump() after the last event waits for the terminator: the connection is reused', async () => {
    const ports: number[] = [];
    const path = route((res, port) => {
      ports.push(port);
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('data: [DONE]\n\n');
      setTimeout(() => res.end(), 30); // the chunked terminator, in a write of its own
    });
    const one = new Agent({ connections: 1, pipelining: 1 });
    for (let i = 0; i < 2; i++) {
      const a = await callUpstream(one, opts(path));
      expect((await a.body.next()).value?.toString()).toBe('data: [DONE]\n\n');
      void a.body.dump({ limit: 64 * 1024, timeoutMs: 5_000 });
      await until('the body to end', async () => a.body.destroyed);
      await new Promise((r) => setImmediate(r));
    }
    await one.close();
    expect(ports).toHaveLength(2);
    expect(ports[1]).toBe(ports[0]);
  });

  it.each([
    ['keeps the socket open past the time bound', 'hold'],
    ['sends more than the byte bound', 'flood'],
  ])('dump() after the last event lets the body go when the upstream %s', async (_what, how) => {
    let closed = false;
    const path = route((res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('data: [DONE]\n\n');
      res.once('close', () => {
        closed = true;
      });
      if (how === 'flood') setTimeout(() => res.write(Buffer.alloc(256 * 1024, 'x')), 10);
    });
    const a = await call(path);
    await a.body.next();
    const t0 = Date.now();
    void a.body.dump({ limit: 64 * 1024, timeoutMs: how === 'hold' ? 300 : 60_000 });
    await until('the upstream connection to close', async () => closed);
    expect(a.body.destroyed).toBe(true);
    if (how === 'hold') expect(Date.now() - t0).toBeGreaterThanOrEqual(250);
  });

  it('destroy() mid-stream closes the upstream connection; the body reads as ended', async () => {
    let closed = false;
    const path = route((res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('data: {"n":1}\n\n');
      res.once('close', () => {
        closed = true;
      });
    });
    const a = await call(path);
    const first = await a.body.next();
    expect(first.value?.toString()).toBe('data: {"n":1}\n\n');
    a.body.destroy();
    expect(a.body.destroyed).toBe(true);
    await until('the upstream connection to close', async () => closed);
    await expect(a.body.next()).resolves.toEqual({ value: undefined, done: true });
  });

  it('a for-await left early lets the body go (the connection closes)', async () => {
    let closed = false;
    const path = route((res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('data: 1\n\n');
      res.once('close', () => {
        closed = true;
      });
    });
    const a = await call(path);
    for await (const _c of a.body) break;
    expect(a.body.destroyed).toBe(true);
    await until('the upstream connection to close', async () => closed);
  });
});

describe('the upstream body: errors, as undici reports them', () => {
  /** A server that sends `hello`, then resets the connection once the test says so. */
  function resetAfterHello() {
    let reset!: () => void;
    const path = route((res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('hello');
      reset = () => res.socket?.destroy();
    });
    return { path, reset: () => reset() };
  }

  it('pull: the bytes before a reset, then the reset (UND_ERR_SOCKET, a "reset" fault)', async () => {
    const s = resetAfterHello();
    const a = await call(s.path);
    expect((await a.body.next()).value?.toString()).toBe('hello');
    s.reset();
    const err = await errorOf(a.body.next());
    expect(errCode(err)).toBe('UND_ERR_SOCKET');
    expect(upstreamFault(err)).toBe('reset');
    expect(a.body.destroyed).toBe(true);
  });

  it('push: the sink sees the bytes before a reset, then consume() rejects with it', async () => {
    const s = resetAfterHello();
    const a = await call(s.path);
    const seen: string[] = [];
    const err = await errorOf(
      a.body.consume((c) => {
        seen.push(c.toString());
        s.reset();
        return undefined;
      }),
    );
    expect(seen).toEqual(['hello']);
    expect(errCode(err)).toBe('UND_ERR_SOCKET');
  });

  it('a throwing sink rejects consume() with its error and lets the upstream go', async () => {
    let closed = false;
    const path = route((res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('data: 1\n\n');
      res.once('close', () => {
        closed = true;
      });
    });
    const a = await call(path);
    const boom = new Error('boom');
    await expect(
      a.body.consume(() => {
        throw boom;
      }),
    ).rejects.toBe(boom);
    await until('the upstream connection to close', async () => closed);
  });

  // Each fault as undici's request() reports it and as the upstream call does: the same code and
  // the same failure reason (relay/upstream-fault.ts), so failover and cooldowns see no change.
  const faults: [string, () => Promise<[Promise<unknown>, Promise<unknown>]>][] = [
    [
      'no answer within headersTimeout',
      async () => {
        const path = route(() => {}); // never answers
        const o = { ...opts(path), headersTimeout: 200 };
        return [callUpstream(agent, o), agent.request(o)];
      },
    ],
    [
      'a stall mid-body past bodyTimeout',
      async () => {
        const path = route((res) => {
          res.writeHead(200, { 'content-type': 'text/event-stream' });
          res.write('data: 1\n\n'); // then nothing
        });
        const o = { ...opts(path), bodyTimeout: 200 };
        const readAll = async (body: AsyncIterable<unknown>) => {
          for await (const _c of body) {
          }
        };
        return [
          callUpstream(agent, o).then((a) => readAll(a.body)),
          agent.request(o).then((r) => readAll(r.body)),
        ];
      },
    ],
    [
      'a refused connection',
      async () => {
        const closedPort = await new Promise<number>((resolve) => {
          const s = createServer();
          s.listen(0, '127.0.0.1', () => {
            const { port } = s.address() as { port: number };
            s.close(() => resolve(port));
          });
        });
        const o = { ...opts('/x'), origin: `http://127.0.0.1:${closedPort}` };
        return [callUpstream(agent, o), agent.request(o)];
      },
    ],
    [
      'a reset before the answer',
      async () => {
        const path = route((res) => res.socket?.destroy());
        const o = opts(path);
        return [callUpstream(agent, o), agent.request(o)];
      },
    ],
    [
      'an invalid request header (the relay side: no fault)',
      async () => {
        const o = { ...opts('/x'), headers: { 'x-bad': 'a\nb' } };
        return [callUpstream(agent, o), agent.request(o)];
      },
    ],
  ];
  it.each(faults)('%s: the same error as request()', async (_what, make) => {
    const [mine, theirs] = await make();
    const [a, b] = await Promise.all([errorOf(mine), errorOf(theirs)]);
    expect(errCode(a)).toBe(errCode(b));
    expect(upstreamFault(a)).toBe(upstreamFault(b));
    expect((a as Error).name).toBe((b as Error).name);
  });

  it('a closed dispatcher: rejects with undici ClientDestroyedError, as request() does (not a channel fault)', async () => {
    const closed = new Agent();
    await closed.destroy();
    const err = await errorOf(callUpstream(closed, opts('/x')));
    expect(errCode(err)).toBe('UND_ERR_DESTROYED');
    expect(upstreamFault(err)).toBeUndefined();
  });

  it('a streamed request body is destroyed when the call fails', async () => {
    const body = new PassThrough();
    body.write('{"a":');
    const path = route((res) => res.socket?.destroy());
    await errorOf(call(path, { body }));
    await until('the request body to be destroyed', async () => body.destroyed);
  });
});

describe('the upstream call: the signal', () => {
  it('aborted before the answer: rejects with the signal reason (as request() did), the connection closes', async () => {
    let arrived = false;
    let closed = false;
    const path = route((res) => {
      arrived = true;
      res.once('close', () => {
        closed = true;
      });
    });
    const ac = new AbortController();
    const p = call(path, {}, ac.signal);
    await until('the request to reach the server', async () => arrived);
    ac.abort();
    const err = await errorOf(p);
    expect((err as Error).name).toBe('AbortError');
    expect(upstreamFault(err)).toBeUndefined();
    await until('the upstream connection to close', async () => closed);
  });

  it('an already aborted signal: rejects at once', async () => {
    const ac = new AbortController();
    ac.abort();
    const path = route((res) => res.end('{}'));
    expect(((await errorOf(call(path, {}, ac.signal))) as Error).name).toBe('AbortError');
  });

  it('aborted mid-body: the next read throws the reason, the connection closes', async () => {
    let closed = false;
    const path = route((res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('data: 1\n\n');
      res.once('close', () => {
        closed = true;
      });
    });
    const ac = new AbortController();
    const a = await call(path, {}, ac.signal);
    await a.body.next();
    const pending = a.body.next();
    ac.abort();
    expect(((await errorOf(pending)) as Error).name).toBe('AbortError');
    await until('the upstream connection to close', async () => closed);
  });

  it('after the body was read to its end, an abort changes nothing', async () => {
    const path = route((res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{"a":1}'));
    const ac = new AbortController();
    const a = await call(path, {}, ac.signal);
    const chunks: Buffer[] = [];
    for await (const c of a.body) chunks.push(c);
    ac.abort();
    expect(Buffer.concat(chunks).toString()).toBe('{"a":1}');
    // The connection went back to the pool: the next request on it is served.
    const b = await call(path);
    await b.body.dump();
    expect(b.statusCode).toBe(200);
  });
});
