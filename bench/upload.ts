// Memory of the relay while it relays large multipart uploads (audio transcriptions of 30 MB): the
// relay spools file parts to disk and streams them on (relay/multipart.ts), so its RSS should grow
// by far less than the body. The relay is `kuberelay relay` as a child process with the chart's
// body limit raised to 200 MB for one 100 MB upload; the upstream is the mock upstream in this
// process (it holds the whole body: not measured). This process is the client (the body
// streamed from a file with fs.openAsBlob) and samples the relay's RSS from /proc every 20 ms.
//
//   node bench/upload.ts              (Node 24) about 1 minute; markdown on stdout
//   node bench/upload.ts --quick      a short smoke run
//
// Phases: idle (median RSS after one small warm-up upload), sequential (8 uploads one after the
// other: peak RSS, MB/s and the relay's CPU per MB from /proc), concurrent (4 at once: peak RSS),
// one 100 MB upload, and last (what it leaves behind would count against the others) for
// comparison one 30 MB JSON body (which the relay parses whole). Each answer's transcript names the SHA-256
// of what reached the upstream, checked against the file's. Method and figures: BENCHMARKS.md.

import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, openAsBlob, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { startMockUpstream } from '../mock-upstream/server.ts';
import { freePort, kuberelay } from '../test/helpers/process.ts';
import { imageEnv } from './peers/targets.ts';

const { values: args } = parseArgs({ options: { quick: { type: 'boolean' } } });
const BODY_BYTES = 30 * 1000 * 1000;
/** A body over the default limit (KUBERELAY_MAX_BODY_BYTES raised for it): does the growth follow the body? */
const BIG_BYTES = 100 * 1000 * 1000;
const SEQUENTIAL = args.quick ? 2 : 8;
const CONCURRENT = args.quick ? 2 : 4;
const UPSTREAM_KEY = 'bench-upstream-key';
const IMAGE_NODE_OPTIONS = imageEnv().NODE_OPTIONS ?? ''; // what the image sets (Dockerfile)

const rssMB = (pid: number) =>
  Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;
/** The relay's CPU time so far (user + system, seconds), from /proc. */
const cpuS = (pid: number) => {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(f[11]) + Number(f[12])) / 100; // utime, stime in clock ticks (USER_HZ 100)
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function main() {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kuberelay-bench-upload-'));
  const audioPath = path.join(dir, 'audio.wav');
  const audio = randomBytes(BODY_BYTES);
  writeFileSync(audioPath, audio);
  const sha = createHash('sha256').update(audio).digest('hex');

  // In this process (not measured): it holds each body whole, up to the big one.
  const mock = await startMockUpstream({ apiKey: UPSTREAM_KEY, maxBodyBytes: 2 * BIG_BYTES });
  const upPort = mock.port;
  const config = path.join(dir, 'relay.yaml');
  writeFileSync(
    config,
    `apiVersion: v1
kind: Secret
metadata: { name: up }
stringData: { apiKey: ${UPSTREAM_KEY} }
---
apiVersion: kuberelay.io/v1alpha1
kind: Channel
metadata: { name: bench }
spec:
  provider: openai-compatible
  baseURL: http://127.0.0.1:${upPort}/v1
  apiKeySecretRef: { name: up }
  models: [{ name: whisper-1, pricing: { perSecond: "0.0001" } }]
`,
  );
  const port = await freePort();
  const relay = kuberelay(['relay', '--config', config, '--port', String(port), '--host', '127.0.0.1'], {
    KUBERELAY_AUTH: 'none',
    KUBERELAY_MAX_BODY_BYTES: String(2 * BIG_BYTES),
    KUBERELAY_ACCESS_LOG: 'off',
    LOG_LEVEL: 'warn',
    NODE_OPTIONS: IMAGE_NODE_OPTIONS,
  });
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    try {
      if ((await fetch(`${url}/readyz`)).ok) break;
    } catch {}
    if (i > 600) throw new Error(`relay not ready:\n${relay.output()}`);
    await sleep(50);
  }
  const pid = relay.child.pid!;
  const samples: number[] = [];
  const timer = setInterval(() => samples.push(rssMB(pid)), 20);

  const upload = async (file: Blob, expectSha: string) => {
    const form = new FormData();
    form.append('file', file, 'audio.wav'); // the file first, the model after: as openai-node sends
    form.append('model', 'whisper-1');
    const t0 = performance.now();
    const res = await fetch(`${url}/v1/audio/transcriptions`, { method: 'POST', body: form });
    const text = await res.text();
    if (res.status !== 200 || !text.includes(expectSha))
      throw new Error(`upload failed: ${res.status} ${text}`);
    return performance.now() - t0;
  };
  const small = randomBytes(1000);
  await upload(new Blob([small]), createHash('sha256').update(small).digest('hex'));
  await sleep(1000);
  const idleFrom = samples.length;
  await sleep(2000);
  const idle = samples.slice(idleFrom).sort((a, b) => a - b)[Math.floor((samples.length - idleFrom) / 2)]!;

  const blob = await openAsBlob(audioPath);
  let from = samples.length;
  const seqMs: number[] = [];
  const cpu0 = cpuS(pid);
  const settled: number[] = []; // RSS after each upload: a leak would climb upload by upload
  for (let i = 0; i < SEQUENTIAL; i++) {
    seqMs.push(await upload(blob, sha));
    settled.push(rssMB(pid));
  }
  const seqPeak = Math.max(...samples.slice(from));
  const seqCpu = cpuS(pid) - cpu0;
  const seqMBs = (SEQUENTIAL * BODY_BYTES) / 1e6 / (seqMs.reduce((a, b) => a + b, 0) / 1000);
  await sleep(1000);
  from = samples.length;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: CONCURRENT }, () => upload(blob, sha)));
  const concMs = performance.now() - t0;
  const concPeak = Math.max(...samples.slice(from));

  // One upload of 100 MB: if the relay held bodies, its growth would follow.
  await sleep(1000);
  const bigPath = path.join(dir, 'big.wav');
  const big = randomBytes(BIG_BYTES);
  writeFileSync(bigPath, big);
  const bigSha = createHash('sha256').update(big).digest('hex');
  from = samples.length;
  const bigMs = await upload(await openAsBlob(bigPath), bigSha);
  const bigPeak = Math.max(...samples.slice(from));
  // For comparison, a JSON body of the same size, which the relay holds whole (parsed, then
  // serialised again for the upstream): a 30 MB moderations input.
  await sleep(1000);
  from = samples.length;
  const jsonBody = JSON.stringify({ model: 'whisper-1', input: 'a'.repeat(BODY_BYTES - 100) });
  const jr = await fetch(`${url}/v1/moderations`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: jsonBody,
  });
  if (jr.status !== 200) throw new Error(`JSON body failed: ${jr.status} ${await jr.text()}`);
  await jr.arrayBuffer();
  const jsonPeak = Math.max(...samples.slice(from));

  clearInterval(timer);

  relay.child.kill('SIGTERM');
  await relay.exited();
  await mock.close();
  rmSync(dir, { recursive: true, force: true });

  const mb = (n: number) => n.toFixed(1);
  const median = seqMs.sort((a, b) => a - b)[Math.floor(seqMs.length / 2)]!;
  process.stdout.write(`Multipart upload of ${BODY_BYTES / 1e6} MB (POST /v1/audio/transcriptions, model after the file), Node ${process.versions.node}

| phase | relay RSS (MB) | growth over idle (MB) | body in flight (MB) | time |
| --- | --- | --- | --- | --- |
| idle (after a 1 kB upload) | ${mb(idle)} | - | - | - |
| ${SEQUENTIAL} uploads one after the other (peak) | ${mb(seqPeak)} | ${mb(seqPeak - idle)} | ${BODY_BYTES / 1e6} | median ${(median / 1000).toFixed(2)} s each |
| ${CONCURRENT} uploads at once (peak) | ${mb(concPeak)} | ${mb(concPeak - idle)} | ${(CONCURRENT * BODY_BYTES) / 1e6} | ${(concMs / 1000).toFixed(2)} s all |
| one ${BIG_BYTES / 1e6} MB upload (limit raised for it; peak) | ${mb(bigPeak)} | ${mb(bigPeak - idle)} | ${BIG_BYTES / 1e6} | ${(bigMs / 1000).toFixed(2)} s |
| for comparison: one ${BODY_BYTES / 1e6} MB JSON body (held whole; peak) | ${mb(jsonPeak)} | ${mb(jsonPeak - idle)} | ${BODY_BYTES / 1e6} | - |

RSS after each sequential upload (MB): ${settled.map(mb).join(', ')}
Sequential phase: ${seqMBs.toFixed(1)} MB/s, relay CPU ${((seqCpu * 1000) / ((SEQUENTIAL * BODY_BYTES) / 1e6)).toFixed(2)} ms per MB
`);
}

await main();
