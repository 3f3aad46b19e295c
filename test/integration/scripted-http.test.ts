// test/helpers/scripted-http.ts writeAll: waiting for a full socket to drain leaves no listener
// behind, however often it waits (it left a 'close' listener per wait, and Node warned of a leak
// once a slow reader made it wait more than ten times).

import type { ServerResponse } from 'node:http';
import { request } from 'node:http';
import { afterAll, describe, expect, it } from 'vitest';
import { startScriptedHttp, writeAll } from '../helpers/scripted-http.ts';

describe('writeAll', () => {
  const servers: { close(): Promise<void> }[] = [];
  afterAll(async () => {
    for (const s of servers) await s.close();
  });

  it('waits for drain many times over and leaves the response with the listeners it had', async () => {
    const http = await startScriptedHttp();
    servers.push(http);
    const chunks = Array.from({ length: 64 }, () => Buffer.alloc(256 * 1024, 0x61));
    const seen = new Promise<{ before: number; after: number; waits: number }>((resolve) => {
      http.on('/slow', (_req, res: ServerResponse) => {
        const before = res.listenerCount('close') + res.listenerCount('drain');
        let waits = 0;
        const write = res.write.bind(res);
        res.write = ((c: Buffer) => {
          const ok = write(c);
          if (!ok) waits++;
          return ok;
        }) as typeof res.write;
        void writeAll(res, chunks).then(() => {
          resolve({ before, after: res.listenerCount('close') + res.listenerCount('drain'), waits });
          res.end();
        });
      });
    });
    // A reader that takes its time: the server's socket fills, again and again.
    const received = await new Promise<number>((resolve, reject) => {
      const req = request(`${http.origin}/slow`, (res) => {
        let n = 0;
        res.on('data', (c: Buffer) => {
          n += c.length;
          res.pause();
          setTimeout(() => res.resume(), 1);
        });
        res.on('end', () => resolve(n));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end();
    });
    const { before, after, waits } = await seen;
    expect(received).toBe(64 * 256 * 1024);
    expect(waits).toBeGreaterThan(10);
    expect(after).toBe(before);
  });
});
