// Added latency of a translated request (chat completions -> Anthropic Messages and back) against a
// pass-through one, same relay process, same mock process, same run: the relay serves two Channels
// on one mock upstream, `pass` (openai-compatible: the zero-copy path) and `claude` (anthropic:
// request, response and stream translated). Requests alternate between the two models one by one,
// so drift hits both alike; the mock answers both APIs with the same content and cost. Plus
// in-process figures of the pure translation (request + response, and a stream's events).
//
//   npm run bench:translate              about a minute; markdown on stdout
//   npm run bench:translate -- --quick   a short smoke run, figures not meaningful

import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Pool } from 'undici';
import { toNativeChat } from '../providers/anthropic/request.ts';
import { fromNativeChat } from '../providers/anthropic/response.ts';
import { AnthropicChatStream } from '../providers/anthropic/stream.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const CLI = path.join(ROOT, 'cli', 'index.ts');
const KEY = 'bench-upstream-key';

const { values: args } = parseArgs({ options: { quick: { type: 'boolean' } } });
const ROUNDS = args.quick ? 50 : 2000;
const WARMUP = args.quick ? 20 : 300;
const MICRO = args.quick ? 1000 : 50_000;

interface Child {
  proc: ChildProcess;
  out: () => string;
}

function start(argv: string[], env: Record<string, string>): Child {
  const proc = spawn(process.execPath, [CLI, ...argv], {
    cwd: ROOT,
    env: { ...process.env, LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const keep = (b: Buffer) => {
    out = (out + b.toString()).slice(-8000);
  };
  proc.stdout!.on('data', keep);
  proc.stderr!.on('data', keep);
  return { proc, out: () => out };
}

async function stop(c: Child) {
  if (c.proc.exitCode !== null) return;
  const exited = new Promise((r) => c.proc.once('exit', r));
  c.proc.kill('SIGTERM');
  await exited;
}

async function freePort(): Promise<number> {
  const net = await import('node:net');
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

async function ready(c: Child, url: string) {
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (c.proc.exitCode !== null) throw new Error(`exited: ${c.out()}`);
    try {
      if ((await fetch(url)).ok) return;
    } catch {}
    if (Date.now() > deadline) throw new Error(`not ready: ${url}\n${c.out()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const config = (mock: string) => `apiVersion: v1
kind: Secret
metadata: { name: up }
stringData: { apiKey: ${KEY} }
---
apiVersion: kuberelay.io/v1alpha1
kind: Channel
metadata: { name: pass }
spec:
  provider: openai-compatible
  baseURL: ${mock}/v1
  apiKeySecretRef: { name: up }
  models: [{ name: pass }]
---
apiVersion: kuberelay.io/v1alpha1
kind: Channel
metadata: { name: claude }
spec:
  provider: anthropic
  baseURL: ${mock}
  apiKeySecretRef: { name: up }
  models: [{ name: claude, upstreamName: claude-sonnet-4-20250514 }]
`;

/** The same chat request for both paths: a system prompt, a user turn, 8 tokens back. */
const body = (model: string, stream: boolean) =>
  JSON.stringify({
    model,
    messages: [
      { role: 'system', content: 'You are a helpful assistant.' },
      { role: 'user', content: 'Say hello to the relay' },
    ],
    max_tokens: 8,
    ...(stream ? { stream: true } : {}),
  });

async function send(pool: Pool, payload: string, stream: boolean): Promise<number> {
  const t0 = performance.now();
  const res = await pool.request({
    path: '/v1/chat/completions',
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: payload,
  });
  const text = await res.body.text();
  if (res.statusCode !== 200) throw new Error(`HTTP ${res.statusCode}: ${text.slice(0, 200)}`);
  if (stream && !text.endsWith('data: [DONE]\n\n')) throw new Error('stream without [DONE]');
  return performance.now() - t0;
}

function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
}

const ms = (x: number) => x.toFixed(3);

/** Per-request cost of the pure translation, in microseconds. */
function micro() {
  const req = JSON.parse(body('claude', false)) as Record<string, unknown>;
  const native = {
    id: 'msg_1',
    type: 'message',
    role: 'assistant',
    model: 'claude-sonnet-4-20250514',
    content: [{ type: 'text', text: 'This is a mock response from the kuberelay' }],
    stop_reason: 'end_turn',
    stop_sequence: null,
    usage: { input_tokens: 9, output_tokens: 8 },
  };
  const events: Array<[string, string]> = [
    [
      'message_start',
      JSON.stringify({ type: 'message_start', message: { ...native, content: [], stop_reason: null } }),
    ],
    [
      'content_block_start',
      '{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}',
    ],
    ['ping', '{"type":"ping"}'],
    ...'This is a mock response from the kuberelay'
      .split(/(?= )/)
      .map((t): [string, string] => [
        'content_block_delta',
        JSON.stringify({ type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: t } }),
      ]),
    ['content_block_stop', '{"type":"content_block_stop","index":0}'],
    [
      'message_delta',
      '{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":8}}',
    ],
    ['message_stop', '{"type":"message_stop"}'],
  ];
  let t0 = performance.now();
  for (let i = 0; i < MICRO; i++) {
    JSON.stringify(toNativeChat(req, { upstreamModel: 'claude-sonnet-4-20250514' }));
    JSON.stringify(fromNativeChat(JSON.parse(JSON.stringify(native)), { model: 'claude' }));
  }
  const json = ((performance.now() - t0) * 1000) / MICRO;
  t0 = performance.now();
  for (let i = 0; i < MICRO; i++) {
    const s = new AnthropicChatStream({ model: 'claude', includeUsage: true });
    for (const [e, d] of events) s.push(e, d);
  }
  const stream = ((performance.now() - t0) * 1000) / MICRO;
  return { json, stream, events: events.length };
}

async function main() {
  const mockPort = await freePort();
  const relayPort = await freePort();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kuberelay-bench-translate-'));
  const file = path.join(dir, 'config.yaml');
  const mockURL = `http://127.0.0.1:${mockPort}`;
  writeFileSync(file, config(mockURL));
  const mock = start(['mock-upstream', '--port', String(mockPort), '--api-key', KEY], {});
  const relay = start(['relay', '--config', file], {
    PORT: String(relayPort),
    HOST: '127.0.0.1',
    KUBERELAY_AUTH: 'none',
  });
  const pool = new Pool(`http://127.0.0.1:${relayPort}`, { connections: 1, pipelining: 1 });
  try {
    await ready(mock, `${mockURL}/_mock/health`);
    await ready(relay, `http://127.0.0.1:${relayPort}/readyz`);
    const rows: string[] = [];
    for (const stream of [false, true]) {
      const pass: number[] = [];
      const translated: number[] = [];
      const passBody = body('pass', stream);
      const claudeBody = body('claude', stream);
      for (let i = 0; i < WARMUP; i++) {
        await send(pool, passBody, stream);
        await send(pool, claudeBody, stream);
      }
      for (let i = 0; i < ROUNDS; i++) {
        // alternate which goes first, so neither always follows the other
        if (i % 2 === 0) {
          pass.push(await send(pool, passBody, stream));
          translated.push(await send(pool, claudeBody, stream));
        } else {
          translated.push(await send(pool, claudeBody, stream));
          pass.push(await send(pool, passBody, stream));
        }
      }
      const kind = stream ? 'stream (to [DONE])' : 'non-stream';
      for (const q of [0.5, 0.9, 0.99]) {
        const a = quantile(pass, q);
        const b = quantile(translated, q);
        rows.push(`| ${kind} | p${q * 100} | ${ms(a)} | ${ms(b)} | ${ms(b - a)} |`);
      }
    }
    const m = micro();
    console.log(`## Translated vs pass-through (${ROUNDS} requests each, concurrency 1, interleaved)\n`);
    console.log('| request | quantile | pass-through ms | translated (anthropic) ms | added ms |');
    console.log('| --- | --- | --- | --- | --- |');
    for (const r of rows) console.log(r);
    console.log(
      `\nPure translation, in process (${MICRO} iterations): request + response ${m.json.toFixed(2)} µs; a stream of ${m.events} events ${m.stream.toFixed(2)} µs.`,
    );
  } finally {
    await pool.close();
    await stop(relay);
    await stop(mock);
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
