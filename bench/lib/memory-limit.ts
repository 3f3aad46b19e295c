// A memory limit per benchmarked process, as a pod's `resources.limits.memory` gives its container:
// a memory cgroup of its own (v1 `memory.limit_in_bytes` or v2 `memory.max`), joined before the
// command starts. It matters beyond capping: Node sizes V8's heap from the cgroup's limit
// (process.constrainedMemory()), and on a small heap V8 lets the old generation grow ~1.3x past
// what a full collection kept instead of up to 4x on a big host without one, so a relay measured
// without the chart's limit holds memory that the deployed one does not (BENCHMARKS.md).

import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';

/** `command args` run as `sh -c` that joins a cgroup first (the pid stays the command's: exec). */
export type CommandWrap = (command: string, args: string[]) => { command: string; args: string[] };

export interface MemoryLimits {
  /** The wrap for one more process, in a cgroup of its own. */
  next(name: string): CommandWrap;
  /** Removes the cgroups (their processes must have exited). */
  cleanup(): void;
}

/** Where memory cgroups can be made here, or why not. */
function cgroupRoot(): { dir: string; limitFile: string } | { unavailable: string } {
  const v1 = '/sys/fs/cgroup/memory';
  if (existsSync(path.join(v1, 'memory.limit_in_bytes')))
    return { dir: v1, limitFile: 'memory.limit_in_bytes' };
  const v2 = '/sys/fs/cgroup';
  try {
    if (readFileSync(path.join(v2, 'cgroup.subtree_control'), 'utf8').split(/\s+/).includes('memory'))
      return { dir: v2, limitFile: 'memory.max' };
  } catch {}
  return {
    unavailable: 'no writable memory cgroup controller (cgroup v1 memory, or v2 with memory delegated)',
  };
}

/**
 * Memory cgroups of `bytes` each, or the reason none can be made (not root, no controller): the
 * caller runs without a limit and says so.
 */
export function memoryLimits(
  bytes: number,
  tag = `kuberelay-bench-${process.pid}`,
): MemoryLimits | { unavailable: string } {
  const root = cgroupRoot();
  if ('unavailable' in root) return root;
  const made: string[] = [];
  const make = (name: string): string => {
    const dir = path.join(root.dir, `${tag}-${made.length}-${name.replace(/[^a-z0-9]+/gi, '-')}`);
    mkdirSync(dir);
    made.push(dir);
    writeFileSync(path.join(dir, root.limitFile), String(bytes));
    return dir;
  };
  try {
    rmdirSync(make('probe'));
    made.pop();
  } catch (err) {
    return { unavailable: `cannot make a memory cgroup under ${root.dir}: ${(err as Error).message}` };
  }
  return {
    next(name) {
      const dir = make(name);
      return (command, args) => ({
        command: 'sh',
        args: ['-c', 'echo $$ > "$0/cgroup.procs" && exec "$@"', dir, command, ...args],
      });
    },
    cleanup() {
      for (const dir of made.splice(0)) {
        try {
          rmdirSync(dir);
        } catch {} // a process still in it: the cgroup stays until it exits
      }
    },
  };
}

/** Kubernetes quantity (`640Mi`, `1Gi`, `512M`, `1000000`) in bytes. */
export function quantityBytes(q: string): number {
  const m = /^(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|k|K|M|G|T)?$/.exec(q.trim());
  if (!m) throw new Error(`not a memory quantity: ${q}`);
  const unit: Record<string, number> = {
    Ki: 2 ** 10,
    Mi: 2 ** 20,
    Gi: 2 ** 30,
    Ti: 2 ** 40,
    k: 1e3,
    K: 1e3,
    M: 1e6,
    G: 1e9,
    T: 1e12,
  };
  return Math.round(Number(m[1]) * (m[2] ? unit[m[2]]! : 1));
}

/** The relay's memory limit as the chart's values.yaml sets it (`relay.resources.limits.memory`). */
export function chartRelayMemoryLimit(root: string): string {
  const values = parse(readFileSync(path.join(root, 'charts', 'kuberelay', 'values.yaml'), 'utf8')) as {
    relay?: { resources?: { limits?: { memory?: string } } };
  };
  const q = values.relay?.resources?.limits?.memory;
  if (!q) throw new Error('charts/kuberelay/values.yaml sets no relay.resources.limits.memory');
  return String(q);
}

/** `--memory-limit`: `none`, `chart` (the chart's relay limit) or a quantity of at least 64Mi. */
export function memoryLimitParam(v: string, root: string): string {
  if (v === 'none') return v;
  const q = v === 'chart' ? chartRelayMemoryLimit(root) : v;
  if (!(quantityBytes(q) >= 64 * 2 ** 20)) throw new Error('--memory-limit must be at least 64Mi');
  return q;
}

/** The limit asked for, and whether the processes ran under it (if not: why). */
export interface MemoryLimitReport {
  quantity: string;
  applied: boolean;
  reason?: string | undefined;
}

/** The cgroups for a `memoryLimitParam` value (none for `none`), and what a report says about them. */
export function openMemoryLimits(
  quantity: string,
  log: (msg: string) => void,
): { limits?: MemoryLimits; memoryLimit: MemoryLimitReport } {
  if (quantity === 'none') return { memoryLimit: { quantity, applied: false } };
  const made = memoryLimits(quantityBytes(quantity));
  if ('unavailable' in made) {
    log(`no memory limit: ${made.unavailable}`);
    return { memoryLimit: { quantity, applied: false, reason: made.unavailable } };
  }
  return { limits: made, memoryLimit: { quantity, applied: true } };
}
