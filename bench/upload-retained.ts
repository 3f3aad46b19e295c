// What the relay keeps of a large upload, as opposed to what it has let go of and V8 has not
// collected yet (bench/upload.ts measures RSS, which counts both). The relay runs in this process
// (startHarness), garbage collected every second (node --expose-gc; a full collection of the
// relay's heap blocks it for a while, so more often would mostly measure the collector); the upstream is the mock in a
// child process, the client curl (`-F file=@...`, streamed from disk), so only the relay's buffers
// are in this process. Prints the peak of ArrayBuffer memory over the idle baseline, with and
// without the forced collections.
//
//   node --expose-gc bench/upload-retained.ts      (Node 24) about a minute

import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { configYaml, startHarness } from '../test/helpers/harness.ts';
import { REPO } from '../test/helpers/process.ts';

const BODY_BYTES = 30 * 1000 * 1000;
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with node --expose-gc');

const dir = mkdtempSync(path.join(os.tmpdir(), 'kuberelay-bench-retained-'));
const file = path.join(dir, 'audio.wav');
writeFileSync(file, randomBytes(BODY_BYTES));
const mockScript = path.join(dir, 'mock.ts');
writeFileSync(
  mockScript,
  `import { startMockUpstream } from ${JSON.stringify(path.join(REPO, 'mock-upstream/server.ts'))};
const m = await startMockUpstream({ apiKey: 'sk-channel-secret-0123456789', maxBodyBytes: ${2 * BODY_BYTES} });
console.log('PORT ' + m.port);\n`,
);
const mock = spawn(process.execPath, [mockScript], { stdio: ['ignore', 'pipe', 'inherit'] });
const port = await new Promise<number>((resolve) =>
  mock.stdout.on('data', (d) => {
    const m = /PORT (\d+)/.exec(String(d));
    if (m) resolve(Number(m[1]));
  }),
);
const h = await startHarness(
  configYaml([{ name: 'c', baseURL: `http://127.0.0.1:${port}/v1`, models: '[{ name: whisper-1 }]' }]),
  { bodyLimit: 2 * BODY_BYTES, timeouts: { requestMs: 600_000 } },
);

async function run(collect: boolean): Promise<number> {
  gc!();
  const base = process.memoryUsage().arrayBuffers;
  let peak = 0;
  const timer = setInterval(() => {
    if (collect) gc!();
    peak = Math.max(peak, process.memoryUsage().arrayBuffers - base);
  }, 1000);
  const curl = spawn('curl', [
    '-sS',
    '-F',
    `file=@${file}`,
    '-F',
    'model=whisper-1',
    `${h.url}/v1/audio/transcriptions`,
  ]);
  let out = '';
  curl.stdout.on('data', (d) => {
    out += d;
  });
  await new Promise((r) => curl.once('exit', r));
  clearInterval(timer);
  if (!out.includes(`${BODY_BYTES} bytes`)) throw new Error(`upload failed: ${out}`);
  return peak / 1e6;
}

const lazy = await run(false);
const collected = await run(true);
await h.close();
mock.kill('SIGTERM');
rmSync(dir, { recursive: true, force: true });
process.stdout.write(`One ${BODY_BYTES / 1e6} MB upload through an in-process relay (Node ${process.versions.node}):

| garbage collection | peak ArrayBuffer memory over idle (MB) |
| --- | --- |
| as V8 schedules it | ${lazy.toFixed(1)} |
| forced every second (what the relay still holds) | ${collected.toFixed(1)} |
`);
