import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import type { MockUpstream } from '../../mock-upstream/server.ts';
import { configYaml, startMocks } from '../helpers/harness.ts';
import { type Collector, startCollector } from '../helpers/otel-collector.ts';
import { freePort, kuberelay, type Proc } from '../helpers/process.ts';
import { until } from '../helpers/until.ts';

/**
 * Exemplars: with tracing on, a real Prometheus with exemplar storage scrapes the relay (it asks
 * for OpenMetrics) and stores, on the request-duration bucket a request fell into, the trace id of
 * that request. A scraper that asks for nothing gets Prometheus text, without exemplars.
 */

const TRACE_ID = '0af7651916cd43dd8448eb211c80319c';
const TRACEPARENT = `00-${TRACE_ID}-b7ad6b7169203331-01`;

interface ExemplarSeries {
  seriesLabels: Record<string, string>;
  exemplars: { labels: Record<string, string>; value: string; timestamp: number }[];
}

describe('exemplars: a latency bucket links to its trace', () => {
  let dir: string;
  let collector: Collector;
  let mocks: MockUpstream[];
  let relay: Proc;
  let relayUrl: string;
  let prometheus: ChildProcess;
  let promUrl: string;
  let promLog = '';

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'kuberelay-exemplars-'));
    collector = await startCollector();
    mocks = await startMocks(['main']);
    const config = join(dir, 'relay.yaml');
    await writeFile(config, configYaml([{ name: 'main', mock: mocks[0] }]));
    const relayPort = await freePort();
    relay = kuberelay(['relay', '--config', config, '--port', String(relayPort), '--host', '127.0.0.1'], {
      KUBERELAY_AUTH: 'none',
      OTEL_EXPORTER_OTLP_ENDPOINT: collector.endpoint,
      OTEL_BSP_SCHEDULE_DELAY: '200',
    });
    await relay.waitFor(/relay listening/, 60_000);
    relayUrl = `http://127.0.0.1:${relayPort}`;

    const promPort = await freePort();
    promUrl = `http://127.0.0.1:${promPort}`;
    const promConfig = join(dir, 'prometheus.yml');
    await writeFile(
      promConfig,
      stringify({
        global: { scrape_interval: '1s' },
        scrape_configs: [{ job_name: 'relay', static_configs: [{ targets: [`127.0.0.1:${relayPort}`] }] }],
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
        '--enable-feature=exemplar-storage',
        '--log.level=warn',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    prometheus.stdout!.on('data', (d: Buffer) => (promLog += d.toString()));
    prometheus.stderr!.on('data', (d: Buffer) => (promLog += d.toString()));
  }, 1_800_000); // the first run builds the collector (~minutes), later runs reuse it

  afterAll(async () => {
    if (prometheus && prometheus.exitCode === null) {
      prometheus.kill('SIGTERM');
      await once(prometheus, 'exit');
    }
    relay?.child.kill('SIGTERM');
    await relay?.exited();
    await collector?.close();
    await Promise.all((mocks ?? []).map((m) => m.close()));
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('Prometheus scrapes OpenMetrics and stores the trace id of a request on its bucket', async () => {
    const client = new OpenAI({
      baseURL: `${relayUrl}/v1`,
      apiKey: 'unused',
      maxRetries: 0,
      defaultHeaders: { traceparent: TRACEPARENT },
    });
    await client.chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'hi' }],
    });

    // The scrape succeeds in the format Prometheus asked for.
    await until('the scrape to be up', async () => {
      if (prometheus.exitCode !== null) throw new Error(`prometheus exited: ${promLog}`);
      const res = await fetch(`${promUrl}/api/v1/targets`);
      const body = (await res.json()) as {
        data: { activeTargets: { health: string; lastError: string }[] };
      };
      const t = body.data.activeTargets[0];
      if (t?.lastError) throw new Error(t.lastError);
      return t?.health === 'up' ? true : undefined;
    });

    const series = await until('an exemplar to be stored', async () => {
      const now = Date.now() / 1000;
      const q = encodeURIComponent('kuberelay_request_duration_seconds_bucket');
      const res = await fetch(
        `${promUrl}/api/v1/query_exemplars?query=${q}&start=${now - 600}&end=${now + 60}`,
      );
      const body = (await res.json()) as { status: string; error?: string; data: ExemplarSeries[] };
      if (body.status !== 'success') throw new Error(body.error);
      return body.data.length > 0 ? body.data : undefined;
    });
    expect(series).toHaveLength(1);
    const s = series[0]!;
    expect(s.seriesLabels).toMatchObject({
      __name__: 'kuberelay_request_duration_seconds_bucket',
      route: '/v1/chat/completions',
      model: 'gpt-4o-mini',
    });
    expect(s.exemplars).toHaveLength(1);
    const e = s.exemplars[0]!;
    expect(e.labels).toEqual({ trace_id: TRACE_ID });
    // The exemplar's value is the request's duration, inside the bucket it is stored on.
    expect(Number(e.value)).toBeGreaterThan(0);
    expect(Number(e.value)).toBeLessThanOrEqual(Number(s.seriesLabels.le));

    // The request span carries the same trace id, so the exemplar leads to it.
    await until('the request span', async () =>
      collector.spans().some((sp) => sp.traceId === TRACE_ID && sp.kind.includes('Server'))
        ? true
        : undefined,
    );
  }, 90_000);

  it('serves Prometheus text without exemplars to a scraper that does not ask for OpenMetrics', async () => {
    const plain = await fetch(`${relayUrl}/metrics`);
    expect(plain.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
    const text = await plain.text();
    expect(text).toContain('kuberelay_requests_total{');
    expect(text).not.toContain(TRACE_ID);
    expect(text).not.toContain('# EOF');

    const om = await fetch(`${relayUrl}/metrics`, {
      headers: { accept: 'application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5' },
    });
    expect(om.headers.get('content-type')).toBe('application/openmetrics-text; version=1.0.0; charset=utf-8');
    const omText = await om.text();
    expect(omText).toContain('# TYPE kuberelay_requests counter');
    expect(omText).toContain('kuberelay_requests_total{');
    expect(omText).toMatch(
      new RegExp(`^kuberelay_request_duration_seconds_bucket\\{.*\\} 1 # \\{trace_id="${TRACE_ID}"\\} `, 'm'),
    );
    expect(omText.endsWith('# EOF\n')).toBe(true);

    // And the plain text again: an OpenMetrics scrape renames nothing in the registry.
    const again = await (await fetch(`${relayUrl}/metrics`)).text();
    expect(again).toContain('# TYPE kuberelay_requests_total counter');
  });

  it('measures the requests of the object APIs too (files), the relay still up after them', async () => {
    const client = new OpenAI({ baseURL: `${relayUrl}/v1`, apiKey: 'unused', maxRetries: 0 });
    const page = await client.files.list();
    expect(page.data).toEqual([]);
    // Their duration is observed once the answer is sent; the relay then serves the next scrape.
    const counted = await until(
      'the files request to be counted',
      async () => {
        if (relay.child.exitCode !== null) return `relay exited: ${relay.output().slice(-1500)}`;
        const text = await (await fetch(`${relayUrl}/metrics`)).text();
        return text.match(
          /^kuberelay_request_duration_seconds_count\{route="\/v1\/files",model="other"\} \d+$/m,
        )?.[0];
      },
      20_000,
    );
    expect(counted).toBe('kuberelay_request_duration_seconds_count{route="/v1/files",model="other"} 1');
  });
});
