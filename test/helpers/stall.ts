import { readdirSync, readFileSync } from 'node:fs';

/**
 * SIGSTOP / SIGCONT a whole server process tree: a database that still holds its TCP connections
 * open but answers nothing (a stalled disk, a frozen VM, a long GC pause on the other side).
 * Stopping only the parent would leave the backends of open connections answering.
 */

function children(pid: number): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      // The comm field may hold spaces and parentheses: the ppid follows the last ')'.
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) out.push(Number(d));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** The pid of the process whose command line holds every one of `args` (e.g. ['-p', '5433']). */
export function findProcess(program: string, args: string[]): number {
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const argv = readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0');
      if (!argv[0]?.endsWith(program)) continue;
      const joined = argv.join('\0');
      if (joined.includes(args.join('\0'))) return Number(d);
    } catch {
      // gone meanwhile
    }
  }
  throw new Error(`no ${program} process with ${args.join(' ')}`);
}

/** Stops `pid` and all its descendants; returns the resume function. */
export function stallTree(pid: number): () => void {
  const stopped: number[] = [];
  const stop = (p: number) => {
    process.kill(p, 'SIGSTOP');
    stopped.push(p);
    for (const c of children(p)) stop(c);
  };
  stop(pid);
  return () => {
    for (const p of stopped.reverse()) {
      try {
        process.kill(p, 'SIGCONT');
      } catch {
        // exited meanwhile
      }
    }
  };
}
