/**
 * Imported first by cli/index.ts, so that `node dist/cli/index.js` on an older Node says what it
 * needs instead of failing inside a dependency (undici on Node 20). bin/kuberelay.cjs checks the
 * same before it loads anything; both follow package.json's engines (a unit test keeps them equal).
 */
export const REQUIRED_NODE_MAJOR = 24;

const major = Number(process.versions.node.split('.')[0]);
if (major < REQUIRED_NODE_MAJOR) {
  process.stderr.write(
    `kuberelay: needs Node.js >=${REQUIRED_NODE_MAJOR}, but this is Node.js ${process.version} (${process.execPath}).\n` +
      `In a clone of the repository, \`npm install\` brings Node ${REQUIRED_NODE_MAJOR}: run \`npx kuberelay ...\` there.\n`,
  );
  process.exit(1);
}
