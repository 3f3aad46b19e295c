import { execFile } from 'node:child_process';
import { mkdtemp, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO } from '../helpers/process.ts';

/**
 * `npm test`'s first step, test/setup.sh, on a machine without the Debian packages and then on one
 * with them. The first machine is this one with the packages hidden: a PATH holding only what the
 * script itself runs (no redis-server, prometheus, promtool, tini, initdb, apt-get, go) and
 * KUBERELAY_PG_LIBDIR pointing away from /usr/lib/postgresql. Without apt-get (or as a user) the
 * script cannot install, so it must name exactly what to install and stop; as root with apt-get it
 * installs them, which CI's fresh machines do (.ci/run runs `npm test`).
 */

const execFileAsync = promisify(execFile);

async function setup(env: Record<string, string>) {
  try {
    const { stdout, stderr } = await execFileAsync('bash', ['test/setup.sh'], { cwd: REPO, env });
    return { code: 0, out: stdout + stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, out: e.stdout + e.stderr };
  }
}

describe('test/setup.sh', () => {
  let bare: string;

  beforeAll(async () => {
    bare = await mkdtemp(join(tmpdir(), 'kuberelay-setup-path-'));
    const { stdout } = await execFileAsync('bash', ['-c', 'command -v bash dirname id']);
    for (const tool of stdout.trim().split('\n')) await symlink(tool, join(bare, tool.split('/').pop()!));
  });
  afterAll(async () => {
    if (bare) await rm(bare, { recursive: true, force: true });
  });

  it('without the packages, names exactly what to install and stops', async () => {
    const r = await setup({ PATH: bare, HOME: tmpdir(), KUBERELAY_PG_LIBDIR: join(bare, 'no-postgresql') });
    expect(r.code, r.out).toBe(1);
    expect(r.out).toContain(
      'the tests need these Debian packages, which are not installed: redis-server postgresql prometheus tini',
    );
    expect(r.out).toContain(
      'sudo apt-get install -y --no-install-recommends redis-server postgresql prometheus tini',
    );
    // And the node tier's (containernetworking-plugins is found by path, not on PATH).
    expect(r.out).toMatch(
      /not installed: redis-server postgresql prometheus tini runc .*iptables conntrack socat buildah mmdebstrap\n/,
    );
  });

  it('with them (and the cached control plane), reuses everything', async () => {
    const r = await setup({ PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? tmpdir() });
    expect(r.code, r.out).toBe(0);
    expect(r.out).toContain('redis-server, postgresql, prometheus, tini found (reused)');
    expect(r.out).toContain('e2e control plane (etcd, kube-apiserver, kubectl, helm) cached (reused)');
    expect(r.out).toContain(
      'node binaries (kubelet, kube-scheduler, kube-controller-manager, kube-proxy, containerd, coredns) cached (reused)',
    );
    expect(r.out).toContain(
      'node tier: runc, CNI plugins, iptables, conntrack, socat, buildah, mmdebstrap found (reused)',
    );
    expect(r.out).not.toMatch(/installing|building/);
  });
});
