import { lstatSync, readdirSync, readFileSync, readlinkSync, realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import {
  BEGIN,
  END,
  loadChartSchema,
  loadChartValues,
  README,
  readmeWithReference,
  valueRows,
} from '../helpers/values-reference.ts';

/**
 * Static checks of charts/kuberelay that need no helm: the chart's CRDs are the API's, every value
 * is described by the schema and listed in the README, the dashboard and the rules are well
 * formed. Rendering and the API server's verdict are in test/e2e/chart.test.ts.
 */

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CHART = `${ROOT}charts/kuberelay/`;

// Grafana's data source variable, as dashboards reference it.
const DATASOURCE = ['$', '{datasource}'].join('');

interface Panel {
  id: number;
  type: string;
  title: string;
  gridPos: { x: number; y: number; w: number; h: number };
  datasource?: { uid: string };
  targets?: { expr: string; refId: string; datasource?: { uid: string } }[];
}

describe('chart CRDs', () => {
  it("are the API's crds/ folder itself (a relative symlink: one home, no copy to drift)", () => {
    expect(lstatSync(`${CHART}crds`).isSymbolicLink()).toBe(true);
    expect(readlinkSync(`${CHART}crds`)).toBe('../../crds');
    expect(realpathSync(`${CHART}crds`)).toBe(realpathSync(`${ROOT}crds`));
    expect(readdirSync(`${ROOT}crds`).filter((f) => f.endsWith('.yaml')).length).toBeGreaterThan(0);
  });
});

describe('chart values', () => {
  it('every key of values.yaml is described by values.schema.json, and the other way round', () => {
    const rows = valueRows();
    const schemaKeys = new Set(rows.map((r) => r.key));
    const leaves: string[] = [];
    const schema = loadChartSchema();
    const walk = (v: unknown, node: { properties?: Record<string, unknown> } | undefined, prefix: string) => {
      for (const [k, child] of Object.entries(v as Record<string, unknown>)) {
        const key = prefix ? `${prefix}.${k}` : k;
        const sub = node?.properties?.[k] as { properties?: Record<string, unknown> } | undefined;
        // Maps and lists (labels, resources, tolerations) are leaves of the schema.
        if (child && typeof child === 'object' && !Array.isArray(child) && sub?.properties)
          walk(child, sub, key);
        else leaves.push(key);
      }
    };
    walk(loadChartValues(), schema, '');
    expect(leaves.filter((k) => !schemaKeys.has(k))).toEqual([]);
    expect([...schemaKeys].filter((k) => !leaves.includes(k))).toEqual([]);
    expect(rows.filter((r) => r.description.length < 5).map((r) => r.key)).toEqual([]);
  });

  it("the README's values table is the one generated from the schema (node test/helpers/values-reference.ts --write)", () => {
    const readme = readFileSync(README, 'utf8');
    expect(readme).toContain(BEGIN);
    expect(readme).toContain(END);
    expect(readmeWithReference(readme)).toBe(readme);
  });
});

describe('Grafana dashboard', () => {
  const dashboard = JSON.parse(readFileSync(`${CHART}files/grafana-dashboard.json`, 'utf8')) as {
    uid: string;
    panels: Panel[];
    templating: { list: { name: string }[] };
  };
  const panels = dashboard.panels.filter((p) => p.type !== 'row');

  it('has unique panel ids, a query on every panel, and every query on the datasource variable', () => {
    const ids = dashboard.panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(panels.length).toBeGreaterThan(20);
    for (const p of panels) {
      expect(p.targets?.length, p.title).toBeGreaterThan(0);
      expect(p.datasource?.uid, p.title).toBe(DATASOURCE);
      for (const t of p.targets ?? []) {
        expect(t.expr, p.title).toMatch(/kuberelay_/);
        expect(t.datasource?.uid, p.title).toBe(DATASOURCE);
      }
      const refIds = (p.targets ?? []).map((t) => t.refId);
      expect(new Set(refIds).size, p.title).toBe(refIds.length);
    }
  });

  it('uses only template variables it defines', () => {
    const defined = new Set([
      ...dashboard.templating.list.map((v) => v.name),
      '__rate_interval',
      '__interval',
      '__range',
    ]);
    const used = new Set(
      JSON.stringify(dashboard.panels)
        .match(/\$\{?(\w+)/g)
        ?.map((m) => m.replace(/^\$\{?/, '')),
    );
    expect([...used].filter((v) => !defined.has(v))).toEqual([]);
  });

  it('lays panels out on the 24-column grid without overlaps', () => {
    const cells = new Set<string>();
    for (const p of dashboard.panels) {
      const { x, y, w, h } = p.gridPos;
      expect(x + w, p.title).toBeLessThanOrEqual(24);
      for (let i = x; i < x + w; i++) {
        for (let j = y; j < y + h; j++) {
          const cell = `${i},${j}`;
          expect(cells.has(cell), `${p.title} overlaps at ${cell}`).toBe(false);
          cells.add(cell);
        }
      }
    }
  });

  it('covers what the issue asks for', () => {
    const exprs = panels.flatMap((p) => p.targets!.map((t) => t.expr)).join('\n');
    for (const metric of [
      'kuberelay_requests_total',
      'kuberelay_request_duration_seconds_bucket',
      'kuberelay_upstream_duration_seconds_bucket',
      'kuberelay_time_to_first_token_seconds_bucket',
      'kuberelay_overhead_seconds_bucket',
      'kuberelay_tokens_total',
      'kuberelay_cost_usd_total',
      'kuberelay_channel_state',
      'kuberelay_cooldowns_total',
      'kuberelay_ratelimit_decisions_total',
      'kuberelay_queue_depth',
    ]) {
      expect(exprs, metric).toContain(metric);
    }
  });
});

describe('Prometheus rules', () => {
  const file = parse(readFileSync(`${CHART}files/prometheus-rules.yaml`, 'utf8')) as {
    groups: {
      name: string;
      rules: {
        alert?: string;
        record?: string;
        labels?: Record<string, string>;
        annotations?: Record<string, string>;
      }[];
    }[];
  };
  const alerts = file.groups.flatMap((g) => g.rules.filter((r) => r.alert));

  it('has the nine alerts of the issue, each with a severity, a summary and a description', () => {
    expect(alerts.map((a) => a.alert).sort()).toEqual(
      [
        'KuberelayBudgetNearlySpent',
        'KuberelayChannelCoolingDown',
        'KuberelayConfigNotProgrammed',
        'KuberelayHighErrorRate',
        'KuberelayHighOverhead',
        'KuberelayJobQueueStuck',
        'KuberelayModelUnavailable',
        'KuberelayOperatorNoLeader',
        'KuberelayRateLimitRejectionsSpiking',
        'KuberelayRequestLogsDropped',
      ].sort(),
    );
    for (const a of alerts) {
      expect(['warning', 'critical'], a.alert).toContain(a.labels?.severity);
      expect(a.annotations?.summary, a.alert).toBeTruthy();
      expect(a.annotations?.description, a.alert).toBeTruthy();
    }
  });

  it('keeps the budget recording rule the chart replaces', () => {
    const records = file.groups.flatMap((g) => g.rules.map((r) => r.record)).filter(Boolean);
    expect(records).toContain('kuberelay:budget_usd:daily');
  });
});
