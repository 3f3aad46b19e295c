// CPU time and memory of processes from /proc (Linux): per process, per process tree, and the whole
// machine's busy time (what else ran: other users, the kernel outside the measured processes).

import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

const CLK_TCK = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

export interface ProcSample {
  rssBytes: number;
  /** VmHWM: the peak RSS since the process started. */
  hwmBytes: number;
  /** File-backed part of the RSS (mostly the node binary's pages, shared with other node processes). */
  fileBytes: number;
  /** user + system CPU time. */
  cpuMs: number;
}

export function readProc(pid: number): ProcSample | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (key: string) =>
      Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0) * 1024;
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const cpuMs = ((Number(f[11]) + Number(f[12])) * 1000) / CLK_TCK;
    return { rssBytes: kb('VmRSS'), hwmBytes: kb('VmHWM'), fileBytes: kb('RssFile'), cpuMs };
  } catch {
    return undefined;
  }
}

/** Busy CPU time of the whole machine (all processes), from /proc/stat. */
export function machineBusyMs(): number {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!;
    const v = line.trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal ...
    const busy = v[0]! + v[1]! + v[2]! + (v[5] ?? 0) + (v[6] ?? 0) + (v[7] ?? 0);
    return (busy * 1000) / CLK_TCK;
  } catch {
    return Number.NaN;
  }
}

export function selfCpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

/** Direct children of a process, from /proc/<pid>/task/<tid>/children (empty where the kernel lacks it). */
function childPids(pid: number): number[] {
  const out: number[] = [];
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      const text = readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim();
      if (text) for (const c of text.split(' ')) out.push(Number(c));
    }
  } catch {
    // gone, or no children file
  }
  return out;
}

/**
 * A process and all its descendants, summed: a peer may serve from worker processes (uvicorn, a
 * shell wrapper), and what it costs is the whole tree. VmHWM is summed too, an upper bound of the peak.
 */
export function readProcTree(pid: number): ProcSample | undefined {
  const root = readProc(pid);
  if (!root) return undefined;
  const total = { ...root };
  const todo = childPids(pid);
  for (let i = 0; i < todo.length && i < 256; i++) {
    const s = readProc(todo[i]!);
    if (!s) continue;
    total.rssBytes += s.rssBytes;
    total.hwmBytes += s.hwmBytes;
    total.fileBytes += s.fileBytes;
    total.cpuMs += s.cpuMs;
    todo.push(...childPids(todo[i]!));
  }
  return total;
}
