// Smoke test of the soak benchmark (bench/soak.ts): a tiny run end to end with its real child
// processes, so the benchmark cannot rot. Behaviour only: nothing here depends on speed or memory.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { SoakResult } from '../../bench/soak.ts';
import { REPO } from '../helpers/process.ts';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'kuberelay-soak-smoke-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function run(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(REPO, 'bench', 'soak.ts'), ...args], {
      cwd: REPO,
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

describe('bench/soak.ts', () => {
  it('runs a small mixed soak: every kind as expected, the relay idle and its permits back after', {
    // Seven processes start on a machine the rest of the suite keeps busy: generous, never timed.
    timeout: 240_000,
  }, async () => {
    const json = path.join(tmp, 'soak.json');
    const r = await run(['--requests', '200', '--concurrency', '4', '--sample-ms', '200', '--json', json]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('# Soak: 200 requests');

    const result = JSON.parse(readFileSync(json, 'utf8')) as SoakResult;
    expect(result.version).toBe(1);
    expect(result.redis).toBe(true);
    expect(result.requests).toBe(200);
    expect(result.stoppedEarly).toBe(false);
    expect(result.unexpected).toEqual({});
    for (const k of Object.values(result.kinds)) {
      expect(k.sent).toBeGreaterThan(0);
      expect(k.expected).toBe(k.sent);
    }
    expect(result.after.inflight).toBe(0);
    expect(result.after.queueDepth).toBe(0);
    expect(result.permitProbe.admitted).toBe(result.permitProbe.permits);
    expect(result.relayAlive).toBe(true);
    expect(result.before.rssBytes).toBeGreaterThan(0);
    expect(result.after.fds).toBeGreaterThan(0);
    expect(result.samples.at(-1)!.done).toBe(200);
  });
});
