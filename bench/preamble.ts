// Preamble hold benchmark: what holding a stream's role-only first chunk until its first token
// (relay/preamble.ts) costs the relay, against the pass-through tap alone, in the same run.
//
//   node bench/preamble.ts [--rounds 40]
//
// Both variants consume the same chat stream (a role-only chunk, N content events with
// `"usage":null`, the hidden usage chunk, [DONE]) from an async iterator of Buffers, one event per
// chunk as upstreams flush per token, and build the client's text:
// - tap: PassThroughStream.push on every chunk in a for-await loop (the path before the hold);
// - tap, manual loop: the same with the iterator's next() called by hand, as the hold variant does;
// - hold: holdPreamble (a timer, the first-token check on each held piece) until the first token,
//   then PassThroughStream.push on the rest.
// Rounds alternate the two variants (ABAB) so drift hits both; reported: the median µs per stream
// and the difference per stream, for a one-token answer (the fixed cost), short (20 events) and
// long (1,000 events) answers.

import { parseArgs } from 'node:util';
import { PassThroughStream } from '../relay/client-stream.ts';
import { holdPreamble } from '../relay/preamble.ts';

const { values: args } = parseArgs({ options: { rounds: { type: 'string', default: '40' } } });
const rounds = Number(args.rounds);

const pre =
  'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m","system_fingerprint":null,"choices":';
function events(n: number): Buffer[] {
  const out = [
    Buffer.from(
      `${pre}[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}],"usage":null}\n\n`,
    ),
  ];
  for (let i = 0; i < n; i++) {
    out.push(
      Buffer.from(
        `${pre}[{"index":0,"delta":{"content":"w${i} "},"logprobs":null,"finish_reason":null}],"usage":null}\n\n`,
      ),
    );
  }
  out.push(
    Buffer.from(
      `${pre}[],"usage":{"prompt_tokens":5,"completion_tokens":${n},"total_tokens":${n + 5}}}\n\ndata: [DONE]\n\n`,
    ),
  );
  return out;
}

async function* iterate(chunks: Buffer[]) {
  for (const c of chunks) yield c;
}

async function tap(chunks: Buffer[]): Promise<number> {
  const s = new PassThroughStream(true);
  let size = 0;
  for await (const c of iterate(chunks)) {
    size += s.push(c).length;
    if (s.done) break;
  }
  return size;
}

/** The tap with the hold variant's manual iteration: isolates the hold from the loop shape. */
async function tapManual(chunks: Buffer[]): Promise<number> {
  const s = new PassThroughStream(true);
  const it = iterate(chunks)[Symbol.asyncIterator]();
  let size = 0;
  for (;;) {
    const r = await it.next();
    if (r.done) break;
    size += s.push(r.value).length;
    if (s.done) break;
  }
  return size;
}

async function hold(chunks: Buffer[]): Promise<number> {
  const s = new PassThroughStream(true);
  const it = iterate(chunks)[Symbol.asyncIterator]();
  const held = await holdPreamble(it, s, 60_000, () => {});
  if (!held.ok) throw new Error('hold failed');
  let size = held.text.length;
  for (;;) {
    if (s.done || held.ended) break;
    const r = await it.next();
    if (r.done) break;
    size += s.push(r.value).length;
  }
  return size;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

for (const n of [1, 20, 1000]) {
  const chunks = events(n);
  const per = Math.max(20, Math.floor(20_000 / n)); // streams per round
  const times = { tap: [] as number[], tapManual: [] as number[], hold: [] as number[] };
  if ((await tap(chunks)) !== (await hold(chunks))) throw new Error('the variants sent different text');
  for (let r = 0; r < rounds + 2; r++) {
    for (const [name, fn] of [
      ['tap', tap],
      ['tapManual', tapManual],
      ['hold', hold],
    ] as const) {
      const t0 = performance.now();
      for (let i = 0; i < per; i++) await fn(chunks);
      const us = ((performance.now() - t0) * 1000) / per;
      if (r >= 2) times[name].push(us); // two warm-up rounds
    }
  }
  const a = median(times.tap);
  const m = median(times.tapManual);
  const b = median(times.hold);
  console.log(
    `${n} events: tap ${a.toFixed(1)} µs/stream (manual loop ${m.toFixed(1)}), hold ${b.toFixed(1)} µs/stream: ` +
      `the hold costs ${(b - m).toFixed(1)} µs per stream over the same loop, ${(b - a).toFixed(1)} µs (${(((b - a) / a) * 100).toFixed(1)} %) over the tap alone`,
  );
}
