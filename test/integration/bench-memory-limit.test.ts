// bench/lib/memory-limit.ts: a benchmarked process runs in a memory cgroup of its own, as in a
// pod, so Node sizes V8's heap from the limit; where no cgroup can be made the reason is given.
// A real cgroup and a real Node process: the child reports the limit it sees and its heap limit.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { startProcess } from '../../bench/lib/children.ts';
import { chartRelayMemoryLimit, memoryLimits, quantityBytes } from '../../bench/lib/memory-limit.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const REPORT =
  'const v8 = require("node:v8"); process.stdout.write(JSON.stringify({ constrained: process.constrainedMemory(), heapLimit: v8.getHeapStatistics().heap_size_limit }))';

async function seen(wrap?: Parameters<typeof startProcess>[5]) {
  const child = startProcess('report', process.execPath, ['-e', REPORT], {}, ROOT, wrap);
  expect(await child.exited, child.output()).toBe(0);
  return JSON.parse(child.output()) as { constrained: number; heapLimit: number };
}

describe('memoryLimits', () => {
  it('runs a process under the limit, which sizes its V8 heap, and removes the cgroups after', async () => {
    const tag = `kuberelay-bench-test-${process.pid}`;
    const limits = memoryLimits(quantityBytes('640Mi'), tag);
    if ('unavailable' in limits) {
      // Not root, or no memory controller: the bench reports this instead of a limit.
      expect(limits.unavailable).toMatch(/cgroup/);
      return;
    }
    const free = await seen();
    const limited = await seen(limits.next('report'));
    limits.cleanup();
    expect(limited.constrained).toBe(640 * 2 ** 20);
    // Node gives V8 a heap sized from the limit, far below the host's (24 GB here: ~4 GB).
    expect(limited.heapLimit).toBeLessThan(free.heapLimit);
    expect(limited.heapLimit).toBeLessThan(640 * 2 ** 20);
    for (const root of ['/sys/fs/cgroup/memory', '/sys/fs/cgroup']) {
      if (existsSync(root)) expect(readdirSync(root).filter((d) => d.startsWith(tag))).toEqual([]);
    }
  });

  it('reads Kubernetes quantities and the chart relay limit', () => {
    expect(quantityBytes('640Mi')).toBe(640 * 2 ** 20);
    expect(quantityBytes('1Gi')).toBe(2 ** 30);
    expect(quantityBytes('512M')).toBe(512e6);
    expect(quantityBytes('1.5Gi')).toBe(1.5 * 2 ** 30);
    expect(quantityBytes('100000000')).toBe(1e8);
    for (const bad of ['lots', '-1Mi', '1 Xi', ''])
      expect(() => quantityBytes(bad)).toThrow(/not a memory quantity/);
    const values = parse(readFileSync(path.join(ROOT, 'charts', 'kuberelay', 'values.yaml'), 'utf8')) as {
      relay: { resources: { limits: { memory: string } } };
    };
    expect(chartRelayMemoryLimit(ROOT)).toBe(values.relay.resources.limits.memory);
  });
});
