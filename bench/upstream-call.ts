// What the relay's upstream call costs its process: undici's request() with its BodyReadable read by
// `for await` (what relay/proxy.ts did before) against relay/upstream-call.ts (dispatch() handler,
// a body read in push mode for a JSON answer, pulled for a stream, as relay/respond.ts reads them),
// against one mock upstream in a child process. This process's CPU time per request (user +
// system, process.cpuUsage) and wall time, for a non-stream chat and a 16-chunk stream.
//
//   node bench/upstream-call.ts [--rounds N] [--per-round N]
//
// Interleaved in rounds (each way once per round, order alternating) so machine drift hits both.

import path from 'node:path';
import { parseArgs } from 'node:util';
import { Agent } from 'undici';
import { callUpstream } from '../relay/upstream-call.ts';
import { freePort, ROOT, startChild, stopChild, waitReady } from './lib/children.ts';
import { chatBody } from './lib/requests.ts';

const { values } = parseArgs({
  options: { rounds: { type: 'string', default: '20' }, 'per-round': { type: 'string', default: '400' } },
});
const ROUNDS = Number(values.rounds);
const PER_ROUND = Number(values['per-round']);
const KEY = 'bench-upstream-key';

const port = await freePort();
const mock = startChild(
  'mock upstream',
  [
    path.join(ROOT, 'cli', 'index.ts'),
    'mock-upstream',
    '--port',
    String(port),
    '--host',
    '127.0.0.1',
    '--api-key',
    KEY,
  ],
  {},
);
const origin = `http://127.0.0.1:${port}`;
await waitReady(mock, `${origin}/_mock/health`);
const agent = new Agent({ keepAliveTimeout: 30_000, pipelining: 1 });

const opts = (stream: boolean) => {
  const body = chatBody(32, stream);
  return {
    origin,
    path: '/v1/chat/completions',
    method: 'POST' as const,
    headers: {
      'content-type': 'application/json',
      authorization: `Bearer ${KEY}`,
      'content-length': String(Buffer.byteLength(body)),
    },
    body,
    headersTimeout: 30_000,
    bodyTimeout: 30_000,
  };
};

type Way = (stream: boolean) => Promise<number>;
const ways: Record<string, Way> = {
  'request() + BodyReadable': async (stream) => {
    const res = await agent.request(opts(stream));
    let n = 0;
    for await (const c of res.body) n += (c as Buffer).length;
    return n;
  },
  'dispatch() + upstream body': async (stream) => {
    const res = await callUpstream(agent, opts(stream));
    let n = 0;
    if (stream) for await (const c of res.body) n += c.length;
    else
      await res.body.consume((c) => {
        n += c.length;
        return undefined;
      });
    return n;
  },
};

async function block(way: Way, stream: boolean): Promise<{ cpuUs: number; wallUs: number }> {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < PER_ROUND; i++) if ((await way(stream)) === 0) throw new Error('empty answer');
  const c = process.cpuUsage(c0);
  return { cpuUs: (c.user + c.system) / PER_ROUND, wallUs: ((performance.now() - t0) * 1000) / PER_ROUND };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const names = Object.keys(ways);
try {
  for (const stream of [false, true]) {
    for (const n of names) await block(ways[n]!, stream); // warm-up
    const cpu: Record<string, number[]> = Object.fromEntries(names.map((n) => [n, []]));
    const wall: Record<string, number[]> = Object.fromEntries(names.map((n) => [n, []]));
    for (let r = 0; r < ROUNDS; r++) {
      const order = r % 2 === 0 ? names : [...names].reverse();
      for (const n of order) {
        const b = await block(ways[n]!, stream);
        cpu[n]!.push(b.cpuUs);
        wall[n]!.push(b.wallUs);
      }
    }
    console.log(
      `\n${stream ? 'stream (16 chunks)' : 'chat, non-stream'}: ${ROUNDS} rounds x ${PER_ROUND} requests`,
    );
    console.log('| way | CPU µs/request (median of rounds) | wall µs/request |');
    console.log('| --- | --- | --- |');
    for (const n of names)
      console.log(`| ${n} | ${median(cpu[n]!).toFixed(1)} | ${median(wall[n]!).toFixed(1)} |`);
  }
} finally {
  await agent.close();
  await stopChild(mock);
}
