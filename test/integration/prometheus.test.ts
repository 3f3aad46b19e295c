import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { type MockUpstream, startMockUpstream } from '../../mock-upstream/server.ts';
import { CHANNEL_KEY, configYaml } from '../helpers/harness.ts';
import {
  dashboardQueries,
  RULES_FILE,
  resolveDashboardVariables,
  ruleQueries,
} from '../helpers/monitoring.ts';
import { freePort, kuberelay, type Proc } from '../helpers/process.ts';

/**
 * A real Prometheus (Debian's /usr/bin/prometheus) scrapes a running relay while it serves
 * traffic, with the shipped alerting rules loaded: the request counter it stores is the number of
 * requests sent, the cost it stores is what the relay exported, every rule evaluates without
 * error, and every dashboard query runs.
 */

const SCRAPE_LABELS = { namespace: 'kr-prom', pod: 'relay-0' };

interface PromResult {
  metric: Record<string, string>;
  value: [number, string];
}

async function until<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}

describe('Prometheus scraping a relay', () => {
  let dir: string;
  let mock: MockUpstream;
  let relay: Proc;
  let relayUrl: string;
  let prometheus: ChildProcess;
  let promUrl: string;
  let promLog = '';

  const query = async (expr: string): Promise<PromResult[]> => {
    const res = await fetch(`${promUrl}/api/v1/query?query=${encodeURIComponent(expr)}`);
    const body = (await res.json()) as { status: string; error?: string; data?: { result: PromResult[] } };
    if (body.status !== 'success') throw new Error(`${expr}: ${body.error}`);
    return body.data!.result;
  };
  const chat = async (model: string, stream = false) => {
    const res = await fetch(`${relayUrl}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model, stream, messages: [{ role: 'user', content: 'count me' }] }),
    });
    await res.arrayBuffer();
    return res.status;
  };

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'kuberelay-prometheus-'));
    mock = await startMockUpstream({ port: 0, name: 'upstream', apiKey: CHANNEL_KEY });
    const config = join(dir, 'relay.yaml');
    await writeFile(
      config,
      configYaml([
        {
          name: 'main',
          baseURL: `http://127.0.0.1:${mock.port}/v1`,
          models: `
    - name: gpt-4o-mini
      pricing: { inputPer1M: "150", outputPer1M: "600" }`,
        },
      ]),
    );
    const relayPort = await freePort();
    relay = kuberelay(['relay', '--config', config, '--port', String(relayPort), '--host', '127.0.0.1'], {
      KUBERELAY_AUTH: 'none',
    });
    await relay.waitFor(/relay listening/);
    relayUrl = `http://127.0.0.1:${relayPort}`;

    const promPort = await freePort();
    promUrl = `http://127.0.0.1:${promPort}`;
    const promConfig = join(dir, 'prometheus.yml');
    await writeFile(
      promConfig,
      stringify({
        global: { scrape_interval: '1s', evaluation_interval: '1s' },
        rule_files: [RULES_FILE],
        scrape_configs: [
          {
            job_name: 'kuberelay-relay',
            static_configs: [{ targets: [`127.0.0.1:${relayPort}`], labels: SCRAPE_LABELS }],
          },
        ],
      }),
    );
    // setpriv: the kernel kills Prometheus if this process dies without afterAll.
    prometheus = spawn(
      'setpriv',
      [
        '--pdeathsig',
        'KILL',
        '--',
        'prometheus',
        `--config.file=${promConfig}`,
        `--storage.tsdb.path=${join(dir, 'data')}`,
        `--web.listen-address=127.0.0.1:${promPort}`,
        '--log.level=warn',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    prometheus.stdout!.on('data', (d: Buffer) => (promLog += d.toString()));
    prometheus.stderr!.on('data', (d: Buffer) => (promLog += d.toString()));
    await until('Prometheus to scrape the relay', async () => {
      if (prometheus.exitCode !== null) throw new Error(`prometheus exited: ${promLog}`);
      const up = await query('up{job="kuberelay-relay"} == 1');
      return up.length === 1 ? true : undefined;
    });
  });

  afterAll(async () => {
    if (prometheus && prometheus.exitCode === null) {
      prometheus.kill('SIGTERM');
      await once(prometheus, 'exit');
    }
    relay?.child.kill('SIGTERM');
    await mock?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('stores the request counter: a query returns exactly the requests sent', async () => {
    const sent = 7;
    for (let i = 0; i < sent; i++) expect(await chat('gpt-4o-mini', i % 2 === 1)).toBe(200);
    expect(await chat('no-such-model')).toBe(404);
    expect(await chat('no-such-model')).toBe(404);

    const ok = await until(`kuberelay_requests_total to reach ${sent}`, async () => {
      const r = await query('sum(kuberelay_requests_total{job="kuberelay-relay", code="200"})');
      return r[0] && Number(r[0].value[1]) === sent ? r : undefined;
    });
    expect(Number(ok[0]!.value[1])).toBe(sent);
    const byModel = await query(
      'sum by (model, code, channel) (kuberelay_requests_total{job="kuberelay-relay"})',
    );
    const rows = byModel
      .map((r) => `${r.metric.model} ${r.metric.channel} ${r.metric.code} ${r.value[1]}`)
      .sort();
    expect(rows).toEqual(['gpt-4o-mini default/main 200 7', 'other none 404 2']);
    // The scrape's target labels are what the alerts group by.
    const labels = await query('kuberelay_requests_total{code="200"}');
    expect(labels[0]!.metric).toMatchObject(SCRAPE_LABELS);

    // Cost: what Prometheus stored is what the relay exported.
    const exported = (await (await fetch(`${relayUrl}/metrics`)).text())
      .split('\n')
      .filter((l) => l.startsWith('kuberelay_cost_usd_total{'))
      .reduce((sum, l) => sum + Number(l.split(' ').at(-1)), 0);
    expect(exported).toBeGreaterThan(0);
    const stored = await until('the cost to be scraped', async () => {
      const r = await query('sum(kuberelay_cost_usd_total)');
      return r[0] && Math.abs(Number(r[0].value[1]) - exported) < 1e-9 ? Number(r[0].value[1]) : undefined;
    });
    expect(stored).toBeCloseTo(exported, 9);
  }, 90_000);

  it('promtool check metrics accepts the scrape of a relay that served traffic', async () => {
    for (let i = 0; i < 4; i++) expect(await chat('gpt-4o-mini', i % 2 === 1)).toBe(200);
    expect(await chat('no-such-model')).toBe(404);
    const text = await (await fetch(`${relayUrl}/metrics`)).text();
    // The families every request updates are there, with their samples.
    for (const family of [
      'kuberelay_requests_total{',
      'kuberelay_request_duration_seconds_bucket{le="+Inf",',
      'kuberelay_upstream_duration_seconds_sum{',
      'kuberelay_time_to_first_token_seconds_count{',
      'kuberelay_overhead_seconds_bucket{',
      'kuberelay_tokens_total{',
      'kuberelay_inflight_requests{',
      'kuberelay_attempts_per_request_count{',
    ]) {
      expect(text, family).toContain(`\n${family}`);
    }
    const r = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
    const findings = `${r.stdout}${r.stderr}`.split('\n').filter(Boolean);
    // Exit 3 is lint findings only; the only ones are prom-client's own Node.js gauges named *_total.
    expect(findings.filter((f) => !/^kuberelay_nodejs_active_\w+_total non-counter metrics/.test(f))).toEqual(
      [],
    );
    expect([0, 3]).toContain(r.status);
  });

  it('evaluates every recording and alerting rule without error', async () => {
    const groups = await until('every rule to be evaluated', async () => {
      const res = await fetch(`${promUrl}/api/v1/rules`);
      const body = (await res.json()) as {
        data: {
          groups: {
            file: string;
            rules: { name: string; health: string; lastError?: string; lastEvaluation: string }[];
          }[];
        };
      };
      const all = body.data.groups.flatMap((g) => g.rules);
      const evaluated = all.every((r) => !r.lastEvaluation.startsWith('0001-'));
      return evaluated && all.length > 0 ? body.data.groups : undefined;
    });
    const rules = groups.flatMap((g) => g.rules);
    expect(rules.map((r) => r.name).sort()).toEqual(
      ruleQueries()
        .map((q) => q.where.replace('rule ', ''))
        .sort(),
    );
    expect(rules.filter((r) => r.health !== 'ok').map((r) => `${r.name}: ${r.lastError}`)).toEqual([]);
    // The recording rules see the relay.
    const cooling = await until('the channel recording rule', async () => {
      const r = await query('kuberelay:channel_cooling_down:max');
      return r.length > 0 ? r : undefined;
    });
    expect(cooling.map((r) => [r.metric.namespace, r.metric.channel, r.value[1]])).toEqual([
      ['kr-prom', 'default/main', '0'],
    ]);
  }, 90_000);

  it('runs every dashboard query, and the traffic panels show the traffic', async () => {
    const failures: string[] = [];
    for (const q of dashboardQueries()) {
      try {
        await query(resolveDashboardVariables(q.expr));
      } catch (err) {
        failures.push(`${q.where}: ${(err as Error).message}`);
      }
    }
    expect(failures).toEqual([]);
    // A counter's first sample has no increase: more traffic after the series exist.
    const rps = dashboardQueries().find((q) => q.where === 'panel "Requests/s by model"')!;
    const series = await until('a request rate for both models', async () => {
      expect(await chat('gpt-4o-mini')).toBe(200);
      expect(await chat('no-such-model')).toBe(404);
      const r = await query(resolveDashboardVariables(rps.expr));
      return r.length === 2 && r.every((s) => Number(s.value[1]) > 0) ? r : undefined;
    });
    expect(series.map((s) => s.metric.model).sort()).toEqual(['gpt-4o-mini', 'other']);
  }, 90_000);
});
