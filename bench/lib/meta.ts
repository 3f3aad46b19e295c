// Where and when a benchmark ran: the commit (and whether the tree was dirty), and progress lines on stderr.

import { execFileSync } from 'node:child_process';
import { ROOT } from './children.ts';

export function gitCommit(): string | undefined {
  try {
    const git = (...args: string[]) => execFileSync('git', args, { cwd: ROOT, encoding: 'utf8' }).trim();
    const head = git('rev-parse', '--short', 'HEAD');
    const dirty = git('status', '--porcelain').split('\n').filter(Boolean).length;
    return dirty > 0 ? `${head} + ${dirty} uncommitted changes` : head;
  } catch {
    return undefined;
  }
}

/** The machine and code a run measured, as every result records it. */
export interface RunMeta {
  node: string;
  cpus: number;
  cpuModel: string;
  commit: string | undefined;
  loadavgStart: number[];
  loadavgEnd: number[];
}

export const log = (msg: string) => process.stderr.write(`[bench] ${msg}\n`);
