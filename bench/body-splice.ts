// What building the upstream body costs per request: re-serialising the parsed body (what the relay
// did before) against splicing the client's text (relay/body-splice.ts), for the benchmarks' chat
// body and for a long conversation, with the model unchanged, renamed, and with stream usage added.
//
//   node bench/body-splice.ts
//
// Interleaved in rounds (each way once per round, order alternating) so machine drift hits both.

import { spliceBody } from '../relay/body-splice.ts';
import { chatBody } from './lib/requests.ts';

const short = chatBody(32, false);
const longBody = JSON.parse(short) as { messages: unknown[] };
longBody.messages = Array.from({ length: 40 }, (_, i) => longBody.messages[i % 4]);
const long = JSON.stringify(longBody);

const ROUNDS = 40;
const PER_ROUND = 2_000;

function time(fn: () => unknown): number {
  const t = performance.now();
  for (let i = 0; i < PER_ROUND; i++) fn();
  return ((performance.now() - t) * 1000) / PER_ROUND; // µs per call
}

function median(xs: number[]) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

console.log('| body | case | re-serialise µs | splice µs | ratio |');
console.log('| --- | --- | --- | --- | --- |');
for (const [name, text] of [
  [`chat (${short.length} B)`, short],
  [`40 messages (${long.length} B)`, long],
] as const) {
  const parsed = JSON.parse(text) as Record<string, unknown>;
  const model = parsed.model as string;
  for (const [label, upstream, usage] of [
    ['model kept', model, false],
    ['model renamed', 'gpt-4o-mini-2024-07-18', false],
    ['renamed + stream usage', 'gpt-4o-mini-2024-07-18', true],
  ] as const) {
    const old = () => {
      const out: Record<string, unknown> = { ...parsed, model: upstream };
      if (usage) out.stream_options = { include_usage: true };
      return JSON.stringify(out);
    };
    const neu = () => spliceBody(text, upstream, usage);
    const a: number[] = [];
    const b: number[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      if (r % 2 === 0) {
        a.push(time(old));
        b.push(time(neu));
      } else {
        b.push(time(neu));
        a.push(time(old));
      }
    }
    const [ma, mb] = [median(a), median(b)];
    console.log(`| ${name} | ${label} | ${ma.toFixed(2)} | ${mb.toFixed(2)} | ${(ma / mb).toFixed(1)}x |`);
  }
}
console.log(
  `\nload average: ${(await import('node:os'))
    .loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')}`,
);
