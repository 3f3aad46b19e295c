// Smoke test of the benchmark harness (bench/run.ts): it runs end to end with real child processes and
// writes a result object holding both the baseline (direct to the mock) and the relay figures.
// Behaviour only: no assertion here depends on how fast anything is.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import type { BenchResult } from '../../bench/run/result.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'kuberelay-bench-smoke-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function run(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(ROOT, 'bench', 'run.ts'), ...args], {
      cwd: ROOT,
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

describe('bench/run.ts --quick', () => {
  it('measures the direct baseline and the relay in one run, with no errors', {
    timeout: 120_000,
  }, async () => {
    const json = path.join(tmp, 'result.json');
    const r = await run([
      '--quick',
      '--json',
      json,
      '--chat-requests',
      '40',
      '--embeddings-requests',
      '10',
      '--stream-requests',
      '10',
      '--stream-tokens',
      '4',
      '--concurrency',
      '4',
      '--duration',
      '0.4',
      '--load-warmup',
      '0.1',
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('| added p50, concurrency 1 |');

    const result = JSON.parse(readFileSync(json, 'utf8')) as BenchResult;
    expect(result.version).toBe(1);
    expect(result.scenario.name).toBe('passthrough');
    expect(result.totalErrors).toBe(0);

    for (const part of [result.chat!, result.embeddings!, result.stream!]) {
      expect(part.errors).toBe(0);
      expect(part.direct.count).toBe(part.requests);
      expect(part.relay.count).toBe(part.requests);
      expect(Number.isFinite(part.added.p50)).toBe(true);
      expect(Number.isFinite(part.added.p99)).toBe(true);
      // The relay reported its own overhead on every response.
      expect(part.relayReportedOverhead.count).toBe(part.requests);
    }
    expect(result.stream!.ttft.direct.count).toBe(10);
    expect(result.stream!.ttft.relay.count).toBe(10);

    expect(result.load).toHaveLength(1);
    const level = result.load[0]!;
    expect(level.concurrency).toBe(4);
    expect(level.direct.errors).toBe(0);
    expect(level.relay.errors).toBe(0);
    expect(level.direct.requests).toBeGreaterThan(0);
    expect(level.relay.requests).toBeGreaterThan(0);

    if (process.platform === 'linux') {
      expect(result.memory.relay.idleBytes).toBeGreaterThan(0);
      expect(result.memory.relay.hwmBytes).toBeGreaterThanOrEqual(result.memory.relay.idleBytes);
      expect(result.memory.mock.idleBytes).toBeGreaterThan(0);
    }
    expect(result.targets.map((t) => t.name)).toContain('added p99, concurrency 1');
  });

  it('refuses an unknown scenario', { timeout: 30_000 }, async () => {
    const r = await run(['--scenario', 'no-such-scenario']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('unknown scenario');
  });
});
