import { readFile } from 'node:fs/promises';
import { request } from 'node:https';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { type ClusterClient, connect } from '../cluster/control-plane.ts';
import { type ChartInstall, installChart, type OperatorProc, until } from '../helpers/chart-procs.ts';

/**
 * Leader election as installed by default: two operators with exactly the chart's environment
 * (no KUBERELAY_LEASE_* set, so client-go's 15 s / 10 s / 2 s), their ServiceAccount bound to the
 * chart's Roles, against the real API server.
 */

const NS = 'kr-election';
const LEASE = 'kuberelay-operator';
const DEFAULTS = { leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000 };

function apiGet(k: ClusterClient, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request(`${k.server}${path}`, { ...k.tls, timeout: 10_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => {
        body += d;
      });
      res.on('end', () => resolve(body));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

/** Requests the API server has served for leases (every client, every verb), from its /metrics. */
async function leaseRequests(k: ClusterClient): Promise<{ total: number; byVerb: Record<string, number> }> {
  const text = await apiGet(k, '/metrics');
  const byVerb: Record<string, number> = {};
  let total = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith('apiserver_request_total{') || !line.includes('resource="leases"')) continue;
    const verb = /verb="([^"]+)"/.exec(line)?.[1] ?? '?';
    const n = Number(line.slice(line.lastIndexOf(' ') + 1));
    byVerb[verb] = (byVerb[verb] ?? 0) + n;
    total += n;
  }
  return { total, byVerb };
}

describe('operator leader election with the chart defaults', () => {
  let k: ClusterClient;
  let install: ChartInstall;
  let ops: OperatorProc[] = [];
  let apiserverPid: number;

  const lease = async () => {
    const r = await k.kubectl(['-n', NS, 'get', 'lease', LEASE, '-o', 'json']);
    expect(r.code, r.stderr).toBe(0);
    return JSON.parse(r.stdout) as {
      metadata: { resourceVersion: string };
      spec: { holderIdentity?: string; leaseDurationSeconds?: number };
    };
  };
  // Every operator must answer: one that died is no proof of stepping down.
  const leaders = async () => {
    const flags = await Promise.all(ops.map((o) => o.isLeader()));
    return ops.filter((_, i) => flags[i]);
  };

  beforeAll(async () => {
    k = connect(inject('kubeconfig'));
    apiserverPid = Number(await readFile(join(dirname(k.kubeconfigPath), 'pids', 'kube-apiserver'), 'utf8'));
    install = await installChart(k, NS);
    ops = [await install.startOperator(), await install.startOperator()];
    await until('one leader', async () => (await leaders()).length === 1, 30_000);
  });

  afterAll(async () => {
    process.kill(apiserverPid, 'SIGCONT'); // whatever happened, never leave it stopped
    for (const p of install?.procs ?? []) p.child.kill('SIGKILL');
  });

  it('renews about once per retry period, with leaseDurationSeconds set (60 s, two operators)', async () => {
    const first = await lease();
    expect(first.spec.leaseDurationSeconds).toBe(DEFAULTS.leaseDurationMs / 1000);
    const before = await leaseRequests(k);
    const t0 = Date.now();
    await new Promise((r) => setTimeout(r, 60_000));
    const after = await leaseRequests(k);
    const seconds = (Date.now() - t0) / 1000;
    const puts = (after.byVerb.PUT ?? 0) - (before.byVerb.PUT ?? 0);
    const rate = (after.total - before.total) / seconds;
    console.log(
      `[e2e] two idle operators: ${(rate).toFixed(2)} Lease requests/s over ${seconds.toFixed(0)} s (${puts} updates); ` +
        `by verb ${JSON.stringify(Object.fromEntries(Object.entries(after.byVerb).map(([v, n]) => [v, n - (before.byVerb[v] ?? 0)])))}`,
    );
    // The leader: one GET + one PUT per 2 s; the standby: one GET per 2-2.4 s; the API server's
    // own identity lease a few more. Today's bug was 120-180 per second.
    expect(puts).toBeGreaterThanOrEqual(seconds / 2 - 4);
    expect(puts).toBeLessThanOrEqual(seconds / 2 + 10);
    expect(rate).toBeLessThan(3);
    expect((await lease()).spec.leaseDurationSeconds).toBe(15);
    // Two idle operators log nothing but their start.
    for (const o of ops) expect(o.proc.output()).not.toMatch(/leader election/);
  });

  it('a hanging API server (SIGSTOP) makes the leader step down by the renew deadline', async () => {
    const [leader] = await leaders();
    expect(leader).toBeDefined();
    // Stop it right after a renew, so the deadline runs from a known moment: a renew that just
    // waits for its HTTP client to give up (10 s connect timeout, from the next renew 2 s later)
    // would step down 2 s too late.
    const leasePath = `/apis/coordination.k8s.io/v1/namespaces/${NS}/leases/${LEASE}`;
    const rv = async () =>
      (JSON.parse(await apiGet(k, leasePath)) as { metadata: { resourceVersion: string } }).metadata
        .resourceVersion;
    const seen = await rv();
    await until('a renew', async () => (await rv()) !== seen, 10_000);
    process.kill(apiserverPid, 'SIGSTOP');
    const t0 = Date.now();
    try {
      await until('no operator calls itself leader', async () => (await leaders()).length === 0, 20_000);
      for (const o of ops) expect(o.proc.child.exitCode).toBeNull();
      const stepDownMs = Date.now() - t0;
      console.log(`[e2e] API server stopped -> leader stepped down after ${stepDownMs} ms`);
      // At the renew deadline of the last renew, well before another candidate could take the
      // lease (15 s); 800 ms for this test's poll of the operators.
      expect(stepDownMs).toBeLessThanOrEqual(DEFAULTS.renewDeadlineMs + 800);
      expect(stepDownMs).toBeGreaterThanOrEqual(DEFAULTS.renewDeadlineMs - DEFAULTS.retryPeriodMs - 1000);
    } finally {
      process.kill(apiserverPid, 'SIGCONT');
    }
    await until(
      'a leader again after the API server resumes',
      async () => (await leaders()).length === 1,
      40_000,
    );
  });

  it('SIGKILL of the leader: the standby takes over within lease duration + retry period', async () => {
    const [leader] = await leaders();
    expect(leader).toBeDefined();
    const standby = ops.find((o) => o !== leader)!;
    leader!.proc.child.kill('SIGKILL');
    await leader!.proc.exited();
    const t0 = Date.now();
    await until('the standby leads', () => standby.isLeader(), 30_000);
    const takeoverMs = Date.now() - t0;
    console.log(`[e2e] leader killed -> standby leading after ${takeoverMs} ms`);
    // 1.2: the standby's poll jitter; plus up to 2 s for the requests on a loaded machine and this test's poll.
    expect(takeoverMs).toBeLessThanOrEqual(DEFAULTS.leaseDurationMs + DEFAULTS.retryPeriodMs * 1.2 + 2000);
    expect((await lease()).spec.holderIdentity).toContain('kr-kuberelay-operator-');
    ops = [standby];
  });

  it('SIGTERM: the leader hands the Lease over at once (released only after its writes stopped)', async () => {
    const next = await install.startOperator();
    ops.push(next);
    const [leader] = await leaders();
    leader!.proc.child.kill('SIGTERM');
    const t0 = Date.now();
    expect(await leader!.proc.exited()).toBe(0);
    await until('the new operator leads', () => next.isLeader(), 10_000);
    const handoverMs = Date.now() - t0;
    console.log(`[e2e] leader SIGTERM -> successor leading after ${handoverMs} ms`);
    expect(handoverMs).toBeLessThan(DEFAULTS.retryPeriodMs * 1.2 + 2000);
    const out = leader!.proc.output();
    expect(out.indexOf('no longer leader')).toBeGreaterThan(-1);
  });
});
