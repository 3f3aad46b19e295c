// SSE tap benchmark: what parsing an upstream stream costs the relay, and how long one push()
// holds the event loop (what every other request on the process waits for).
//
//   node bench/sse.ts [--tap path/to/sse.ts]      (--tap: measure another SseTap, e.g. an older one)
//
// 1. One huge event (16 and 32 MB of content in one `data:` line) arriving in 64 KiB chunks:
//    total time, the longest single push(), and the most bytes held back at any time.
// 2. A typical chat stream (1,000 content events of ~150 bytes with `"usage":null`, the usage chunk
//    hidden, [DONE]) in 1 KiB chunks: events per second.

import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const { values: args } = parseArgs({ options: { tap: { type: 'string' } } });
const mod = await import(args.tap ? pathToFileURL(args.tap).href : '../relay/sse.ts');
type Tap = { push(b: Buffer): Buffer[] | string; flush(): Buffer[] | string; usage?: unknown };
const SseTap = mod.SseTap as new (hide: boolean) => Tap;

const size = (out: Buffer[] | string) =>
  typeof out === 'string' ? Buffer.byteLength(out) : out.reduce((s, b) => s + b.length, 0);

function feed(input: Buffer, chunk: number) {
  const tap = new SseTap(true);
  let longest = 0;
  let inBytes = 0;
  let outBytes = 0;
  let held = 0;
  const t0 = performance.now();
  for (let i = 0; i < input.length; i += chunk) {
    const part = input.subarray(i, i + chunk);
    const t = performance.now();
    outBytes += size(tap.push(part));
    longest = Math.max(longest, performance.now() - t);
    inBytes += part.length;
    held = Math.max(held, inBytes - outBytes);
  }
  outBytes += size(tap.flush());
  return {
    ms: performance.now() - t0,
    longestPushMs: longest,
    maxHeldBytes: held,
    billed: tap.usage !== undefined,
  };
}

const usage = 'data: {"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7}}\n\n';
for (const mb of [16, 32]) {
  const big = Buffer.from(
    `data: {"choices":[{"index":0,"delta":{"content":"${'x'.repeat(mb * 1024 * 1024)}"}}],"usage":null}\n\n${usage}data: [DONE]\n\n`,
  );
  const r = feed(big, 65_536);
  console.log(
    `one ${mb} MB event: ${r.ms.toFixed(0)} ms total, longest push ${r.longestPushMs.toFixed(1)} ms, ` +
      `at most ${(r.maxHeldBytes / 1024 / 1024).toFixed(2)} MiB held, usage billed: ${r.billed}`,
  );
}

const piece = (i: number) =>
  `data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"w${i} "},"finish_reason":null}],"usage":null}\n\n`;
let text = '';
for (let i = 0; i < 1000; i++) text += piece(i);
const typical = Buffer.from(text + usage + 'data: [DONE]\n\n');
const runs = 50;
feed(typical, 1024); // warm-up
const t0 = performance.now();
for (let i = 0; i < runs; i++) feed(typical, 1024);
const ms = performance.now() - t0;
console.log(
  `typical stream: ${((runs * 1001) / (ms / 1000)).toFixed(0)} events/s (${(ms / runs).toFixed(2)} ms per 1,000-event stream)`,
);
