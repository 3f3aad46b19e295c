import { execFile } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO } from '../helpers/process.ts';

/**
 * bin/kuberelay.cjs started by a Node older than package.json's engines. The Node running this test
 * is made "too old" by a copy of the command whose package.json asks for Node 99.
 */

const execFileAsync = promisify(execFile);

async function run(file: string, args: string[]) {
  try {
    const { stdout, stderr } = await execFileAsync(process.execPath, [file, ...args]);
    return { code: 0, out: stdout + stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, out: e.stdout + e.stderr };
  }
}

describe('the kuberelay command on an unsupported Node', () => {
  let dir: string;

  async function pkg(name: string, withOwnNode: boolean): Promise<string> {
    const root = join(dir, name);
    await mkdir(join(root, 'bin'), { recursive: true });
    await copyFile(join(REPO, 'bin/kuberelay.cjs'), join(root, 'bin/kuberelay.cjs'));
    await writeFile(join(root, 'package.json'), JSON.stringify({ engines: { node: '>=99' } }));
    if (withOwnNode) {
      await mkdir(join(root, 'node_modules/node/bin'), { recursive: true });
      await symlink(process.execPath, join(root, 'node_modules/node/bin/node'));
    }
    return join(root, 'bin/kuberelay.cjs');
  }

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'kuberelay-bin-'));
  });
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('says which Node it needs and how to run it, without a stack trace', async () => {
    const r = await run(await pkg('plain', false), ['relay', '--config', 'examples/quickstart.yaml']);
    expect(r.code).toBe(1);
    expect(r.out).toContain(`kuberelay: needs Node.js >=99, but this is Node.js ${process.version}`);
    expect(r.out).toContain('`npm install` brings Node 99: run `npx kuberelay ...` there');
    expect(r.out).not.toMatch(/\n\s+at /);
  });

  it("hands over to the checkout's own Node, once, and passes its exit status back", async () => {
    // The checkout's Node is (here) too old as well: the handed-over run says so and exits 1,
    // instead of handing over again.
    const r = await run(await pkg('own-node', true), ['keys', 'list']);
    expect(r.code).toBe(1);
    expect(r.out.match(/kuberelay: needs Node.js >=99/g)).toHaveLength(1);
  });
});
