// What the relay's own code for request logging costs per request, for the one feature the
// ablation (BENCHMARKS.md, "What each feature costs") found a price for: building the access line
// (relay/access-log.ts), writing it through the buffered log destination (relay/log-buffer.ts,
// here to /dev/null), and a row's share of the request-log batch's JSON text (db/accounting.ts
// sends a batch of 500 as one JSON parameter). What PostgreSQL then does with the batch is the
// server's CPU, not this.
//
//   node bench/log-cost.ts            (npm run bench:log)
//
// Interleaved in rounds (the order rotating each round) so machine drift hits every case alike.

import { openSync } from 'node:fs';
import os from 'node:os';
import type { RequestRecord } from '../core/accounting.ts';
import { accessLineJson } from '../relay/access-log.ts';
import { bufferedLogStream } from '../relay/log-buffer.ts';

const ROUNDS = 30;
const PER_ROUND = 20_000;
const BATCH = 500;
const BINDINGS = ',"pid":7,"hostname":"kuberelay-relay-7d9f8c6b5-x2x4q"';

/** A finished chat request as the relay records it (a key, a channel, usage from the upstream). */
const record = (i: number): RequestRecord => ({
  requestId: `7f3c2a1e-9b4d-4e8f-a6c5-${String(100000000000 + i)}`,
  at: Date.now(),
  keyId: 'key_9f8e7d6c5b4a',
  route: '/v1/chat/completions',
  model: 'gpt-4o-mini',
  channel: 'openai-primary',
  status: 200,
  durationMs: 1.234 + (i % 100) / 7,
  attempts: 1,
  stream: false,
  promptTokens: 42 + (i % 13),
  completionTokens: 32,
  cachedTokens: 0,
  cacheWriteTokens: 0,
  reasoningTokens: 0,
  usageSource: 'reported',
  cost: 0.0000255 + (i % 13) * 0.00000015,
  traceId: undefined,
});
const records = Array.from({ length: BATCH }, (_, i) => record(i));
const out = bufferedLogStream(openSync('/dev/null', 'w'));

let sink = 0;
const cases: Record<string, () => void> = {
  'access line: build': () => {
    for (let i = 0; i < PER_ROUND; i++)
      sink += accessLineJson(records[i % BATCH]!, Date.now(), BINDINGS).length;
  },
  'access line: build + buffered write': () => {
    for (let i = 0; i < PER_ROUND; i++) out.write(accessLineJson(records[i % BATCH]!, Date.now(), BINDINGS));
  },
  'request-log row: its share of the batch JSON': () => {
    for (let i = 0; i < PER_ROUND / BATCH; i++) sink += JSON.stringify(records).length;
  },
};

const names = Object.keys(cases);
const samples = new Map(names.map((n) => [n, [] as number[]]));
for (let r = 0; r < ROUNDS; r++) {
  for (let k = 0; k < names.length; k++) {
    const name = names[(r + k) % names.length]!;
    const t = performance.now();
    cases[name]!();
    samples.get(name)!.push(((performance.now() - t) * 1000) / PER_ROUND);
  }
}
out.flushSync();

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
console.log('| per request | median µs | min µs |');
console.log('| --- | --- | --- |');
for (const [name, xs] of samples) {
  console.log(`| ${name} | ${median(xs).toFixed(2)} | ${Math.min(...xs).toFixed(2)} |`);
}
if (sink === 0) throw new Error('nothing was built'); // and the builds above cannot be optimised away
console.log(
  `\n${ROUNDS} rounds of ${PER_ROUND}; load average ${os
    .loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')}`,
);
