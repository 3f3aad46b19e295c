import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { RULES_FILE } from '../helpers/monitoring.ts';

/**
 * The alerts with Prometheus' own tool: `promtool check rules` (syntax, PromQL) and
 * `promtool test rules` (unit tests on sample series: every alert fires where it should and stays
 * quiet where it should not). Each alert's cases are then shown to matter: with the alert's
 * expression replaced by one that never fires, or one that always fires, its tests fail.
 */

const execFileAsync = promisify(execFile);
const TESTS = fileURLToPath(new URL('./fixtures/prometheus-rules.test.yaml', import.meta.url));

interface RulesFile {
  groups: { name: string; rules: { alert?: string; record?: string; expr: string }[] }[];
}
interface TestsFile {
  rule_files: string[];
  tests: { name: string; alert_rule_test?: { alertname: string; exp_alerts?: unknown[] }[] }[];
}

async function promtool(args: string[]): Promise<{ code: number; output: string }> {
  try {
    const { stdout, stderr } = await execFileAsync('promtool', args);
    return { code: 0, output: stdout + stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : 1, output: (e.stdout ?? '') + (e.stderr ?? '') };
  }
}

describe('alerting rules (promtool)', () => {
  let rules: RulesFile;
  let tests: TestsFile;
  let dir: string;
  const alerts = () => rules.groups.flatMap((g) => g.rules.flatMap((r) => (r.alert ? [r.alert] : [])));

  beforeAll(async () => {
    rules = parse(await readFile(RULES_FILE, 'utf8')) as RulesFile;
    tests = parse(await readFile(TESTS, 'utf8')) as TestsFile;
    dir = await mkdtemp(join(tmpdir(), 'kuberelay-promtool-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('promtool check rules accepts the rules file', async () => {
    const r = await promtool(['check', 'rules', RULES_FILE]);
    expect(r.code, r.output).toBe(0);
    expect(r.output).toMatch(/SUCCESS: 14 rules found/);
  });

  it('promtool test rules passes', async () => {
    const r = await promtool(['test', 'rules', TESTS]);
    expect(r.code, r.output).toBe(0);
    expect(r.output).toContain('SUCCESS');
  });

  it('every alert has a case where it fires and one where it must not', () => {
    const cases = tests.tests.flatMap((t) => t.alert_rule_test ?? []);
    for (const alert of alerts()) {
      const mine = cases.filter((c) => c.alertname === alert);
      expect(
        mine.some((c) => (c.exp_alerts ?? []).length > 0),
        `${alert}: no case where it fires`,
      ).toBe(true);
      expect(
        mine.some((c) => (c.exp_alerts ?? []).length === 0),
        `${alert}: no case where it stays quiet`,
      ).toBe(true);
    }
    expect(alerts()).toHaveLength(10);
  });

  /** Runs the unit tests against a copy of the rules whose `alert` has expression `expr`. */
  const testWith = async (alert: string, expr: string) => {
    const mutated = structuredClone(rules);
    for (const g of mutated.groups) for (const r of g.rules) if (r.alert === alert) r.expr = expr;
    const rulesPath = join(dir, `${alert}.rules.yaml`);
    await writeFile(rulesPath, stringify(mutated));
    const testsPath = join(dir, `${alert}.test.yaml`);
    await writeFile(testsPath, stringify({ ...tests, rule_files: [rulesPath] }));
    return promtool(['test', 'rules', testsPath]);
  };

  it('each alert’s tests fail when the alert never fires', async () => {
    for (const alert of alerts()) {
      const r = await testWith(alert, 'vector(1) == 0');
      expect(r.code, `${alert} never firing went unnoticed:\n${r.output}`).not.toBe(0);
      expect(r.output).toContain(`alertname: ${alert}`);
    }
  }, 120_000);

  it('each alert’s tests fail when the alert always fires', async () => {
    for (const alert of alerts()) {
      const r = await testWith(alert, 'vector(1)');
      expect(r.code, `${alert} always firing went unnoticed:\n${r.output}`).not.toBe(0);
      expect(r.output).toContain(`alertname: ${alert}`);
    }
  }, 120_000);
});
