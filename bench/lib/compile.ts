// A tsc build of kuberelay in a temporary directory, laid out as the image lays it out (dist/ with
// prisma/ beside it), so that a benchmark runs what is deployed rather than the .ts sources (type
// stripping keeps its own parser in memory: ~30 MB more RSS at idle).

import { execFileSync } from 'node:child_process';
import { symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ROOT } from './children.ts';
import { log } from './meta.ts';

/** Builds into `dir`/dist; returns the CLI entry point. */
export function compileKuberelay(dir: string): string {
  const dist = path.join(dir, 'dist');
  log(`compiling with tsc into ${dist}`);
  const tsc = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
  execFileSync(process.execPath, [tsc, '-p', path.join(ROOT, 'tsconfig.json'), '--outDir', dist], {
    cwd: ROOT,
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  writeFileSync(path.join(dist, 'package.json'), '{ "type": "module" }\n');
  symlinkSync(path.join(ROOT, 'node_modules'), path.join(dist, 'node_modules'), 'dir');
  symlinkSync(path.join(ROOT, 'prisma'), path.join(dir, 'prisma'), 'dir');
  return path.join(dist, 'cli', 'index.js');
}
