// Where a running relay allocates, per request: V8's sampling heap profiler through the inspector,
// counting the objects that scavenges and mark-compacts collected (short-lived garbage is what a
// request path makes), and the collections by kind per 10,000 requests (a PerformanceObserver
// evaluated inside the relay). The relay must run with `--inspect=127.0.0.1:0`; its inspector port
// is found from its pid (the listening sockets in /proc).
//
//   node bench/alloc-profile.ts --pid PID --url http://127.0.0.1:PORT [--header 'authorization: Bearer K']
//   node bench/alloc-profile.ts --targets FILE.json [--target kuberelay]   (the same from {name: {url, pid, headers}})
//     [--requests 20000 --concurrency 32 --interval 4096 --top 40 --out /tmp/x.heapprofile]
//
// Sizes are V8's estimates (each sample stands for `interval` bytes on average); compare two builds
// under the same load, never the absolute figures across machines.

import { readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { Pool } from 'undici';
import { chatBody } from './lib/requests.ts';

const { values } = parseArgs({
  options: {
    pid: { type: 'string' },
    url: { type: 'string' },
    header: { type: 'string', multiple: true, default: [] },
    requests: { type: 'string', default: '20000' },
    warmup: { type: 'string', default: '3000' },
    concurrency: { type: 'string', default: '32' },
    interval: { type: 'string', default: '4096' },
    top: { type: 'string', default: '40' },
    stream: { type: 'boolean', default: false },
    out: { type: 'string' },
    // or all three from a JSON file of targets ({name: {url, pid, headers}}), as a dev harness writes
    targets: { type: 'string' },
    target: { type: 'string', default: 'kuberelay' },
  },
});
const fromFile = values.targets
  ? (JSON.parse(readFileSync(values.targets, 'utf8'))[values.target] as {
      url: string;
      pid: number;
      headers: Record<string, string>;
    })
  : undefined;
if (fromFile) {
  values.pid = String(fromFile.pid);
  values.url = fromFile.url;
  values.header = Object.entries(fromFile.headers).map(([k, v]) => `${k}: ${v}`);
}
if (!values.pid || !values.url) {
  console.error(
    'usage: node bench/alloc-profile.ts --pid PID --url RELAY_URL [--header "k: v"] [--requests N]',
  );
  process.exit(2);
}
const pid = Number(values.pid);
const requests = Number(values.requests);

/** Loopback ports `pid` listens on (sockets of its fds matched against /proc/net/tcp). */
function listeningPorts(pid: number): number[] {
  const inodes = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) inodes.add(m[1]!);
    } catch {}
  }
  const ports: number[] = [];
  for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f[3] === '0A' && inodes.has(f[9]!)) ports.push(Number.parseInt(f[1]!.split(':')[1]!, 16));
  }
  return ports;
}

async function inspectorURL(): Promise<string> {
  for (const port of listeningPorts(pid)) {
    try {
      const res = await fetch(`http://127.0.0.1:${port}/json/list`, { signal: AbortSignal.timeout(500) });
      const list = (await res.json()) as { webSocketDebuggerUrl?: string }[];
      if (list[0]?.webSocketDebuggerUrl) return list[0].webSocketDebuggerUrl;
    } catch {}
  }
  throw new Error(`no inspector on any port of pid ${pid}: start it with --inspect=127.0.0.1:0`);
}

const ws = new WebSocket(await inspectorURL());
await new Promise((resolve, reject) => {
  ws.onopen = resolve;
  ws.onerror = reject;
});
let nextId = 1;
const waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
ws.onmessage = (ev) => {
  const msg = JSON.parse(String(ev.data));
  const w = msg.id !== undefined ? waiting.get(msg.id) : undefined;
  if (!w) return;
  waiting.delete(msg.id);
  if (msg.error) w.reject(new Error(JSON.stringify(msg.error)));
  else w.resolve(msg.result);
};
const call = (method: string, params: object = {}) =>
  // biome-ignore lint/suspicious/noExplicitAny: the inspector protocol's results, read where used
  new Promise<any>((resolve, reject) => {
    const id = nextId++;
    waiting.set(id, { resolve, reject });
    ws.send(JSON.stringify({ id, method, params }));
  });
const evaluate = async (expression: string) =>
  (await call('Runtime.evaluate', { expression, returnByValue: true })).result?.value;

const headers: Record<string, string> = { 'content-type': 'application/json' };
for (const h of values.header) {
  const i = h.indexOf(':');
  headers[h.slice(0, i).trim().toLowerCase()] = h.slice(i + 1).trim();
}
const body = chatBody(16, values.stream);
const pool = new Pool(values.url, { connections: Number(values.concurrency), pipelining: 1 });
async function load(count: number): Promise<number> {
  let left = count;
  let errors = 0;
  const worker = async () => {
    while (left-- > 0) {
      const r = await pool.request({ method: 'POST', path: '/v1/chat/completions', headers, body });
      await r.body.text();
      if (r.statusCode !== 200) errors++;
    }
  };
  await Promise.all(Array.from({ length: Number(values.concurrency) }, worker));
  return errors;
}

await load(Number(values.warmup));
// GC counts by kind, inside the relay (1 minor/scavenge, 2 major, 4 incremental, 8 weak callbacks).
await evaluate(`(() => {
  const { PerformanceObserver } = process.getBuiltinModule('node:perf_hooks');
  globalThis.__gcCounts = {};
  globalThis.__gcObs?.disconnect();
  globalThis.__gcObs = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      const k = e.detail?.kind ?? e.kind;
      const c = (globalThis.__gcCounts[k] ??= { n: 0, ms: 0 });
      c.n++; c.ms += e.duration;
    }
  });
  globalThis.__gcObs.observe({ entryTypes: ['gc'] });
  return true;
})()`);
await call('HeapProfiler.enable');
await call('HeapProfiler.startSampling', {
  samplingInterval: Number(values.interval),
  includeObjectsCollectedByMinorGC: true,
  includeObjectsCollectedByMajorGC: true,
});
const errors = await load(requests);
const { profile } = await call('HeapProfiler.stopSampling');
await new Promise((r) => setTimeout(r, 200)); // the observer's last entries
const gc = (await evaluate('JSON.stringify(globalThis.__gcCounts)')) as string;
await evaluate('globalThis.__gcObs.disconnect(), true');
ws.close();
await pool.close();
if (values.out) writeFileSync(values.out, JSON.stringify(profile));

interface Node {
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  selfSize: number;
  children: Node[];
}
const sites = new Map<string, number>();
const byFile = new Map<string, number>();
let total = 0;
const short = (url: string) => url.replace(/^file:\/\/.*?\/(dist|node_modules)\//, '$1/');
(function walk(n: Node) {
  if (n.selfSize > 0) {
    const f = n.callFrame;
    const key = `${f.functionName || '(anonymous)'} ${short(f.url)}:${f.lineNumber + 1}`;
    sites.set(key, (sites.get(key) ?? 0) + n.selfSize);
    const file = short(f.url) || '(native)';
    byFile.set(file, (byFile.get(file) ?? 0) + n.selfSize);
    total += n.selfSize;
  }
  for (const c of n.children) walk(c);
})(profile.head as Node);

const kinds: Record<string, string> = { 1: 'scavenge', 2: 'mark-compact', 4: 'incremental', 8: 'weak-cb' };
const counts = JSON.parse(gc) as Record<string, { n: number; ms: number }>;
console.log(
  `${requests} requests, ${errors} errors; allocated ~${(total / requests).toFixed(0)} B/request (sampled)`,
);
console.log(
  `GC per 10,000 requests: ${Object.entries(counts)
    .map(
      ([k, c]) =>
        `${kinds[k] ?? k} ${((c.n * 10_000) / requests).toFixed(1)} (${((c.ms * 1000) / requests).toFixed(1)} us/req)`,
    )
    .join(', ')}`,
);
const top = Number(values.top);
const rows = (m: Map<string, number>, n: number) =>
  [...m]
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(
      ([k, v]) =>
        `${(v / requests).toFixed(0).padStart(6)} B/req ${((100 * v) / total).toFixed(1).padStart(5)} %  ${k}`,
    )
    .join('\n');
console.log(`\nby file:\n${rows(byFile, 25)}\n\nby site:\n${rows(sites, top)}`);
