// What parsing a JSON request body costs: the relay's parser before (the depth check, then
// Fastify's default parser: secure-json-parse's JSON.parse and two regular expressions over the
// whole text for prototype-poisoning keys) against now (relay/json-body.ts), for the benchmarks'
// chat body, a long conversation, and a body whose text has `\u00..` escapes (the slow path).
//
//   node bench/json-body.ts
//
// Interleaved in rounds (each way once per round, order alternating) so machine drift hits both.

import Fastify from 'fastify';
import { type BodyParser, jsonBodyParser, MAX_JSON_DEPTH, nestsDeeperThan } from '../relay/json-body.ts';
import { chatBody } from './lib/requests.ts';

const short = chatBody(32, false);
const longBody = JSON.parse(short) as { messages: { content: string }[] };
longBody.messages = Array.from({ length: 40 }, (_, i) => longBody.messages[i % longBody.messages.length]!);
const long = JSON.stringify(longBody);
const escaped = short.replace(/"content":"/, '"content":"caf\\u00e9 ');

const fastify = Fastify().getDefaultJsonParser('error', 'error') as BodyParser;
const before: BodyParser = (req, text, done) => {
  if (nestsDeeperThan(text, MAX_JSON_DEPTH)) done(new Error('too deep'));
  else fastify(req, text, done);
};
const relay = jsonBodyParser(fastify);

const ROUNDS = 40;
const PER_ROUND = 5_000;
let sink: unknown;
const done = (_err: Error | null, v?: unknown) => {
  sink = v;
};

function time(parse: BodyParser, text: string): number {
  const t = performance.now();
  for (let i = 0; i < PER_ROUND; i++) parse({} as never, text, done);
  return ((performance.now() - t) * 1000) / PER_ROUND; // µs per call
}

function median(xs: number[]) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

console.log('| body | before µs | now µs | ratio |');
console.log('| --- | --- | --- | --- |');
for (const [name, text] of [
  [`chat (${short.length} B)`, short],
  [`40 messages (${long.length} B)`, long],
  [`chat with a \\u00e9 escape (${escaped.length} B, slow path)`, escaped],
] as const) {
  const a: number[] = [];
  const b: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    if (r % 2 === 0) {
      a.push(time(before, text));
      b.push(time(relay, text));
    } else {
      b.push(time(relay, text));
      a.push(time(before, text));
    }
  }
  const [ma, mb] = [median(a), median(b)];
  console.log(`| ${name} | ${ma.toFixed(2)} | ${mb.toFixed(2)} | ${(ma / mb).toFixed(2)}x |`);
}
if (sink === undefined) throw new Error('nothing parsed');
console.log(
  `\nload average: ${(await import('node:os'))
    .loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')}`,
);
