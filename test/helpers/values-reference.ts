// The README's "Chart values" table, generated from charts/kuberelay/values.schema.json (the
// descriptions) and values.yaml (the defaults). test/unit/chart.test.ts fails when the README
// differs; `node test/helpers/values-reference.ts --write` rewrites the README section.
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';

const CHART = fileURLToPath(new URL('../../charts/kuberelay/', import.meta.url));
export const README = fileURLToPath(new URL('../../README.md', import.meta.url));
export const BEGIN =
  '<!-- values-reference:begin (generated from values.schema.json: node test/helpers/values-reference.ts --write) -->';
export const END = '<!-- values-reference:end -->';

export interface SchemaNode {
  type?: string | string[];
  description?: string;
  properties?: Record<string, SchemaNode>;
  $ref?: string;
  enum?: unknown[];
  [k: string]: unknown;
}

export function loadChartSchema(): SchemaNode & { $defs: Record<string, SchemaNode> } {
  return JSON.parse(readFileSync(`${CHART}values.schema.json`, 'utf8'));
}

export function loadChartValues(): Record<string, unknown> {
  return parse(readFileSync(`${CHART}values.yaml`, 'utf8')) as Record<string, unknown>;
}

export interface ValueRow {
  key: string;
  description: string;
  default: unknown;
  node: SchemaNode;
}

/** Leaves of the schema (objects with `properties` are walked; maps and lists are leaves). */
export function valueRows(
  schema = loadChartSchema(),
  values: Record<string, unknown> = loadChartValues(),
): ValueRow[] {
  const rows: ValueRow[] = [];
  const walk = (node: SchemaNode, prefix: string, defaults: unknown) => {
    for (const [name, child] of Object.entries(node.properties ?? {})) {
      const key = prefix ? `${prefix}.${name}` : name;
      const def = (defaults as Record<string, unknown> | undefined)?.[name];
      if (child.properties) walk(child, key, def);
      else rows.push({ key, description: child.description ?? '', default: def, node: child });
    }
  };
  walk(schema, '', values);
  return rows;
}

function allowed(node: SchemaNode, defs: Record<string, SchemaNode>): unknown[] | undefined {
  if (node.enum) return node.enum;
  const ref = node.$ref?.replace('#/$defs/', '');
  return ref ? defs[ref]?.enum : undefined;
}

const cell = (s: string) => s.replaceAll('|', '\\|').replaceAll('\n', ' ');

export function valuesReference(): string {
  const schema = loadChartSchema();
  const lines = ['| key | meaning | default |', '| --- | --- | --- |'];
  for (const row of valueRows(schema)) {
    const choices = allowed(row.node, schema.$defs);
    const meaning = choices
      ? `${row.description} (${choices.map((c) => `\`${c}\``).join(', ')})`
      : row.description;
    lines.push(`| \`${row.key}\` | ${cell(meaning)} | \`${cell(JSON.stringify(row.default ?? null))}\` |`);
  }
  return lines.join('\n');
}

/** The README with the section between the markers replaced by the generated table. */
export function readmeWithReference(readme: string): string {
  const begin = readme.indexOf(BEGIN);
  const end = readme.indexOf(END);
  if (begin < 0 || end < begin) throw new Error(`README.md has no ${BEGIN} ... ${END} section`);
  return `${readme.slice(0, begin + BEGIN.length)}\n${valuesReference()}\n${readme.slice(end)}`;
}

if (process.argv[1] === fileURLToPath(import.meta.url) && process.argv.includes('--write')) {
  writeFileSync(README, readmeWithReference(readFileSync(README, 'utf8')));
  console.log('README.md: chart values reference updated');
}
