#!/usr/bin/env node
// The `kuberelay` command outside the image (npx kuberelay, npm exec, a symlink on PATH). It is
// CommonJS with nothing newer than Node 14 can read, so that an old Node answers in words: the CLI
// itself needs the Node that package.json's engines names, and on an older one it would fail
// somewhere deep in a dependency (undici on Node 20). `npm install` brings that Node (the `node`
// devDependency): an older `node` on PATH hands over to it.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
const engines = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')).engines || {};
const need = Number((/(\d+)/.exec(engines.node || '0') || [])[1] || 0);
const have = Number(process.versions.node.split('.')[0]);
const ownNode = path.join(root, 'node_modules', 'node', 'bin', 'node');

if (have >= need) {
  delete process.env.KUBERELAY_REEXEC;
  // A checkout runs the TypeScript sources (Node strips the types); a packed package runs dist/.
  const source = path.join(root, 'cli', 'index.ts');
  const entry = fs.existsSync(source) ? source : path.join(root, 'dist', 'cli', 'index.js');
  import(require('node:url').pathToFileURL(entry).href);
} else if (fs.existsSync(ownNode) && !process.env.KUBERELAY_REEXEC) {
  runWith(ownNode);
} else {
  process.stderr.write(
    `kuberelay: needs Node.js ${engines.node}, but this is Node.js ${process.version} (${process.execPath}).\n` +
      `In a clone of the repository, \`npm install\` brings Node ${need}: run \`npx kuberelay ...\` there, or put\n` +
      `${__filename} on PATH after that install. Otherwise install Node ${need} or newer\n` +
      '(https://nodejs.org) and run kuberelay with it.\n',
  );
  process.exit(1);
}

/** Runs this same command under `node`, passing signals on and its exit status back. */
function runWith(node) {
  const env = { ...process.env, KUBERELAY_REEXEC: '1' };
  const child = require('node:child_process').spawn(node, [__filename, ...process.argv.slice(2)], {
    stdio: 'inherit',
    env,
  });
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, () => child.kill(sig));
  child.on('exit', (code, signal) => {
    if (!signal) process.exit(code ?? 1);
    process.removeAllListeners(signal);
    process.kill(process.pid, signal);
  });
}
