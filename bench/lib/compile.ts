// A tsc build of kuberelay in a temporary directory, laid out as the image lays it out (dist/ with
// prisma/ beside it), so that a benchmark runs what is deployed rather than the .ts sources (type
// stripping keeps its own parser in memory: ~30 MB more RSS at idle). `exportRef` gives the
// sources of another commit, so one run can measure two versions side by side.

import { execFileSync } from 'node:child_process';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ROOT } from './children.ts';
import { log } from './meta.ts';

/** Builds the sources at `root` into `dir`/dist; returns the CLI entry point. */
export function compileKuberelay(dir: string, root = ROOT): string {
  const dist = path.join(dir, 'dist');
  log(`compiling ${root === ROOT ? 'the working tree' : root} with tsc into ${dist}`);
  const tsc = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
  execFileSync(process.execPath, [tsc, '-p', path.join(root, 'tsconfig.json'), '--outDir', dist], {
    cwd: root,
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  writeFileSync(path.join(dist, 'package.json'), '{ "type": "module" }\n');
  symlinkSync(path.join(ROOT, 'node_modules'), path.join(dist, 'node_modules'), 'dir');
  symlinkSync(path.join(root, 'prisma'), path.join(dir, 'prisma'), 'dir');
  return path.join(dist, 'cli', 'index.js');
}

/**
 * The tracked sources of commit `ref` in `dir` (git archive), with this tree's node_modules and
 * generated Prisma client beside them (the client is generated, not tracked; the bench assumes
 * the schema did not change between the two). Returns the directory, a root for compileKuberelay.
 */
export function exportRef(ref: string, dir: string): string {
  mkdirSync(dir, { recursive: true });
  const commit = execFileSync('git', ['-C', ROOT, 'rev-parse', '--verify', `${ref}^{commit}`], {
    encoding: 'utf8',
  }).trim();
  log(`exporting ${ref} (${commit.slice(0, 7)}) into ${dir}`);
  const tar = execFileSync('git', ['-C', ROOT, 'archive', '--format=tar', commit], {
    maxBuffer: 512 * 1024 * 1024,
  });
  execFileSync('tar', ['-x', '-C', dir], { input: tar });
  symlinkSync(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'), 'dir');
  symlinkSync(path.join(ROOT, 'db', 'generated'), path.join(dir, 'db', 'generated'), 'dir');
  return dir;
}
