// Smoke test of bench/peers.ts --quick: behaviour only (every path measured, nothing of the baseline,
// the floor and kuberelay failed, missing peers reported); no assertion depends on how fast anything is.
// It never installs a peer (--no-install): an empty cache must report both as not installed, and
// the machine's cache (if it holds them) must give figures or a reason for each.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import type { GatewayResult, PeersResult } from '../../bench/peers/result.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'kuberelay-peers-smoke-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function run(args: string[], env: Record<string, string> = {}) {
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(ROOT, 'bench', 'peers.ts'), ...args], {
      cwd: ROOT,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => {
      stdout += b.toString('utf8');
    });
    child.stderr.on('data', (b: Buffer) => {
      stderr += b.toString('utf8');
    });
    child.once('error', reject);
    child.once('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

// --sources: no tsc build (behaviour only; the full run measures the build, as deployed).
const QUICK = [
  '--quick',
  '--no-install',
  '--sources',
  '--rounds',
  '8',
  '--stream-rounds',
  '3',
  '--stream-tokens',
  '4',
];

/** The chart's relay memory limit: what every gateway runs under by default, as in a pod. */
const CHART_LIMIT = (
  parse(readFileSync(path.join(ROOT, 'charts', 'kuberelay', 'values.yaml'), 'utf8')) as {
    relay: { resources: { limits: { memory: string } } };
  }
).relay.resources.limits.memory;

/** The run says whether its gateways ran under the limit, and leaves no cgroup behind. */
function expectMemoryLimitReported(result: PeersResult, stdout: string) {
  expect(result.memoryLimit.quantity).toBe(CHART_LIMIT);
  if (result.memoryLimit.applied) {
    expect(stdout).toContain(`limited to ${CHART_LIMIT}, as in a pod`);
  } else {
    expect(result.memoryLimit.reason).toBeTruthy();
    expect(stdout).toContain(`**No memory limit** (${CHART_LIMIT} asked for: ${result.memoryLimit.reason})`);
  }
  for (const root of ['/sys/fs/cgroup/memory', '/sys/fs/cgroup']) {
    if (existsSync(root))
      expect(readdirSync(root).filter((d) => d.startsWith('kuberelay-bench-'))).toEqual([]);
  }
}

function expectMeasured(g: GatewayResult, rounds: number, streams: number) {
  expect(g.status, g.reason).toBe('measured');
  expect(g.chat!.latency.count).toBe(rounds);
  expect(Number.isFinite(g.chat!.added.p50)).toBe(true);
  expect(g.stream!.firstToken.latency.count).toBe(streams);
  expect(g.stream!.complete.latency.count).toBe(streams);
  expect(g.load!.requests).toBeGreaterThan(0);
}

describe('bench/peers.ts --quick', () => {
  it('measures the baseline and kuberelay, and reports peers missing from an empty cache', {
    timeout: 240_000,
  }, async () => {
    const json = path.join(tmp, 'empty-cache.json');
    const r = await run([...QUICK, '--json', json], { KUBERELAY_PEERS_DIR: path.join(tmp, 'no-peers') });
    expect(r.code, r.stderr).toBe(0);
    const result = JSON.parse(readFileSync(json, 'utf8')) as PeersResult;
    expect(result.gateways.map((g) => g.name)).toEqual([
      'direct',
      'floor',
      'kuberelay',
      'portkey',
      'litellm',
    ]);
    const [direct, floor, kuberelay, portkey, litellm] = result.gateways;
    expectMeasured(direct!, 8, 3);
    // The floor (a bare Node proxy) is measured like a gateway: streams pass through it whole.
    expectMeasured(floor!, 8, 3);
    expectMeasured(kuberelay!, 8, 3);
    expect(direct!.errors + floor!.errors + kuberelay!.errors, kuberelay!.errorSamples.join(' | ')).toBe(0);
    expect(result.ownErrors).toBe(0);
    if (process.platform === 'linux') {
      expect(kuberelay!.rss!.idleBytes).toBeGreaterThan(0);
      expect(kuberelay!.rss!.peakBytes).toBeGreaterThanOrEqual(kuberelay!.rss!.idleBytes);
      expect(kuberelay!.load!.cpuMsPerRequest).toBeGreaterThan(0);
    }
    for (const peer of [portkey!, litellm!]) {
      expect(peer.status).toBe('not installed');
      expect(peer.reason).toContain('--no-install');
    }
    expect(r.stdout).toContain('| kuberelay |');
    expect(r.stdout).toMatch(/Portkey gateway [\d.]+: \*\*not installed\*\*/);
    expect(r.stdout).toMatch(/LiteLLM proxy [\d.]+ \(1 worker\): \*\*not installed\*\*/);
    expectMemoryLimitReported(result, r.stdout);
  });

  // Portkey only: LiteLLM's start alone takes minutes of CPU on a busy shared machine.
  it('gives figures or a reason for a peer in the machine cache', { timeout: 300_000 }, async () => {
    const json = path.join(tmp, 'cache.json');
    const r = await run([...QUICK, '--peers', 'portkey', '--json', json]);
    expect(r.code, r.stderr).toBe(0);
    const result = JSON.parse(readFileSync(json, 'utf8')) as PeersResult;
    expect(result.ownErrors).toBe(0);
    for (const peer of result.gateways.slice(3)) {
      if (peer.status === 'measured') {
        // A peer's own failures are reported beside its figures, not hidden.
        expect(peer.chat!.latency.count + peer.errors).toBeGreaterThanOrEqual(8);
        if (peer.errors > 0) expect(r.stdout).toContain(`${peer.label}: **${peer.errors} failed requests**`);
      } else {
        expect(peer.reason).toBeTruthy();
        expect(r.stdout).toContain(`${peer.label}: **${peer.status}**`);
      }
    }
  });

  // Before/after in one run: a second kuberelay from a commit's sources, measured like the first.
  it('measures kuberelay built from another commit beside the working tree', {
    timeout: 300_000,
  }, async () => {
    const json = path.join(tmp, 'compare.json');
    const peersDir = path.join(tmp, 'no-peers');
    // Streams ended as uvicorn-style servers end them: every stream still completes.
    const args = [...QUICK, '--peers', 'portkey', '--compare', 'HEAD', '--stream-end', 'split'];
    const r = await run([...args, '--json', json], { KUBERELAY_PEERS_DIR: peersDir });
    expect(r.code, r.stderr).toBe(0);
    const result = JSON.parse(readFileSync(json, 'utf8')) as PeersResult;
    const names = result.gateways.map((g) => g.name);
    expect(names).toEqual(['direct', 'floor', 'kuberelay', 'kuberelay-ref', 'portkey']);
    const ref = result.gateways[3]!;
    expectMeasured(ref, 8, 3);
    expect(ref.errors, ref.errorSamples.join(' | ')).toBe(0);
    expect(result.ownErrors).toBe(0);
    expect(r.stdout).toContain('| kuberelay at HEAD |');
    expect(r.stdout).toContain('the chunked end 1 ms after [DONE]');
    expectMemoryLimitReported(result, r.stdout);
  });

  it('refuses an unknown peer', { timeout: 30_000 }, async () => {
    const r = await run(['--peers', 'no-such-peer']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('unknown peer');
    const end = await run(['--stream-end', 'sometimes']);
    expect(end.code).toBe(1);
    expect(end.stderr).toContain('--stream-end must be together or split');
    const limit = await run(['--memory-limit', 'lots']);
    expect(limit.code).toBe(1);
    expect(limit.stderr).toContain('not a memory quantity: lots');
  });
});
