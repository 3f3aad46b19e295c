// What the shipped monitoring (charts/kuberelay/files: alerts and Grafana dashboard) queries, for
// the tests that check it against real processes and a real Prometheus.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';

export const RULES_FILE = fileURLToPath(
  new URL('../../charts/kuberelay/files/prometheus-rules.yaml', import.meta.url),
);
export const DASHBOARD_FILE = fileURLToPath(
  new URL('../../charts/kuberelay/files/grafana-dashboard.json', import.meta.url),
);

export interface Query {
  /** Where it comes from: `rule <name>` or `panel "<title>"`. */
  where: string;
  expr: string;
}

export function ruleQueries(): Query[] {
  const file = parse(readFileSync(RULES_FILE, 'utf8')) as {
    groups: { rules: { alert?: string; record?: string; expr: string }[] }[];
  };
  return file.groups.flatMap((g) =>
    g.rules.map((r) => ({ where: `rule ${r.alert ?? r.record}`, expr: r.expr })),
  );
}

interface Panel {
  title: string;
  targets?: { expr: string }[];
}

export function dashboardQueries(): Query[] {
  const d = JSON.parse(readFileSync(DASHBOARD_FILE, 'utf8')) as {
    panels: Panel[];
    templating: { list: { name: string; query?: unknown }[] };
  };
  const panels = d.panels.flatMap((p) =>
    (p.targets ?? []).map((t) => ({ where: `panel "${p.title}"`, expr: t.expr })),
  );
  const variables = d.templating.list.flatMap((v) => {
    const q = (v.query as { query?: string } | undefined)?.query;
    const m = q?.match(/^label_values\((.*),\s*\w+\)$/);
    return m ? [{ where: `variable $${v.name}`, expr: m[1]! }] : [];
  });
  return [...panels, ...variables];
}

/** A dashboard query as Grafana sends it with every variable on "All". */
export function resolveDashboardVariables(expr: string, rateInterval = '1m'): string {
  return expr
    .replaceAll('$__rate_interval', rateInterval)
    .replaceAll('$__interval', rateInterval)
    .replace(/\$(namespace|model|channel)\b/g, '.*');
}

/** Metric names (`kuberelay_…`) a query reads; recording rules (`kuberelay:…`) are left out. */
export function metricNames(exprs: string[]): Set<string> {
  const names = new Set<string>();
  for (const e of exprs) for (const m of e.matchAll(/\bkuberelay_[a-zA-Z0-9_]+/g)) names.add(m[0]);
  return names;
}

/** `name -> type` from the `# TYPE` lines of a Prometheus exposition. */
export function exposedMetrics(exposition: string): Map<string, string> {
  const types = new Map<string, string>();
  for (const m of exposition.matchAll(/^# TYPE (\S+) (\S+)$/gm)) types.set(m[1]!, m[2]!);
  return types;
}

/** The exposed metric a queried name belongs to (histogram series end in _bucket/_sum/_count). */
export function exposedAs(name: string, exposed: Map<string, string>): string | undefined {
  if (exposed.has(name)) return name;
  const base = name.replace(/_(bucket|sum|count)$/, '');
  return base !== name && exposed.get(base) === 'histogram' ? base : undefined;
}
