import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/**
 * A small reader of prisma/schema.prisma — enough of it to say which tables, columns, types,
 * keys and indexes the generated client expects, so a test can hold the hand-written migration
 * SQL against it (Prisma Migrate, which would diff them, cannot run on these machines).
 */

export interface Column {
  field: string;
  column: string;
  type: string;
  list: boolean;
  optional: boolean;
  hasDefault: boolean;
  /** `@db.Timestamptz(3)` -> `Timestamptz(3)`. */
  native: string | undefined;
}

export interface Model {
  name: string;
  table: string;
  columns: Column[];
  primaryKey: string[];
  uniques: string[][];
  indexes: string[][];
  foreignKeys: { columns: string[]; table: string; references: string[]; onDelete: string }[];
}

interface Relation {
  fields: string[];
  model: string;
  references: string[];
  onDelete: string;
}

const SCALARS = new Set([
  'String',
  'Int',
  'BigInt',
  'Boolean',
  'DateTime',
  'Decimal',
  'Json',
  'Float',
  'Bytes',
]);

export function readSchema(
  path = fileURLToPath(new URL('../../prisma/schema.prisma', import.meta.url)),
): Model[] {
  const text = readFileSync(path, 'utf8');
  const models: Model[] = [];
  const relationsOf = new Map<Model, Relation[]>();
  for (const m of text.matchAll(/^model (\w+) \{\n([\s\S]*?)\n\}/gm)) {
    const body = m[2]!.split('\n').map((l) => l.replace(/\/\/.*$/, '').trim());
    const fields = new Map<string, Column>();
    const model: Model = {
      name: m[1]!,
      table: m[1]!,
      columns: [],
      primaryKey: [],
      uniques: [],
      indexes: [],
      foreignKeys: [],
    };
    const relations: Relation[] = [];
    for (const line of body) {
      if (!line) continue;
      const list = (s: string) => s.split(',').map((x) => x.trim());
      if (line.startsWith('@@')) {
        const args = /\[([^\]]*)\]/.exec(line)?.[1];
        if (line.startsWith('@@map')) model.table = /"([^"]+)"/.exec(line)![1]!;
        else if (line.startsWith('@@id')) model.primaryKey = list(args!);
        else if (line.startsWith('@@unique')) model.uniques.push(list(args!));
        else if (line.startsWith('@@index')) model.indexes.push(list(args!));
        continue;
      }
      const f = /^(\w+)\s+(\w+)(\[\])?(\?)?\s*(.*)$/.exec(line);
      if (!f) throw new Error(`cannot read schema line: ${line}`);
      const [, name, type, isList, opt, attrs] = f as unknown as string[];
      if (!SCALARS.has(type!)) {
        const rel = /@relation\(fields: \[([^\]]*)\], references: \[([^\]]*)\](?:, onDelete: (\w+))?/.exec(
          attrs!,
        );
        if (rel) {
          relations.push({
            fields: list(rel[1]!),
            model: type!,
            references: list(rel[2]!),
            onDelete: rel[3] ?? '',
          });
        }
        continue;
      }
      const col: Column = {
        field: name!,
        column: /@map\("([^"]+)"\)/.exec(attrs!)?.[1] ?? name!,
        type: type!,
        list: !!isList,
        optional: !!opt,
        hasDefault: /@default\(/.test(attrs!),
        native: /@db\.(\w+(?:\([^)]*\))?)/.exec(attrs!)?.[1],
      };
      if (/@id\b/.test(attrs!)) model.primaryKey = [name!];
      fields.set(name!, col);
      model.columns.push(col);
    }
    const colOf = (field: string) => fields.get(field)?.column ?? field;
    model.primaryKey = model.primaryKey.map(colOf);
    model.uniques = model.uniques.map((u) => u.map(colOf));
    model.indexes = model.indexes.map((u) => u.map(colOf));
    relationsOf.set(model, relations);
    models.push(model);
  }
  // Foreign keys reference the other model's table and columns.
  for (const model of models) {
    const colOf = (mm: Model, field: string) => mm.columns.find((c) => c.field === field)?.column ?? field;
    for (const r of relationsOf.get(model)!) {
      const target = models.find((x) => x.name === r.model)!;
      model.foreignKeys.push({
        columns: r.fields.map((f) => colOf(model, f)),
        table: target.table,
        references: r.references.map((f) => colOf(target, f)),
        onDelete: r.onDelete,
      });
    }
  }
  return models;
}

/** The PostgreSQL type Prisma maps a scalar to (information_schema `udt_name`, plus precision). */
export function expectedPgType(c: Column): { udt: string; precision?: [number, number] } {
  const native = c.native ?? '';
  const base = (() => {
    switch (c.type) {
      case 'String':
        return { udt: 'text' };
      case 'Int':
        return { udt: 'int4' };
      case 'BigInt':
        return { udt: 'int8' };
      case 'Boolean':
        return { udt: 'bool' };
      case 'Float':
        return { udt: 'float8' };
      case 'Json':
        return { udt: 'jsonb' };
      case 'Bytes':
        return { udt: 'bytea' };
      case 'DateTime':
        return {
          udt: native.startsWith('Timestamptz') ? 'timestamptz' : native === 'Date' ? 'date' : 'timestamp',
        };
      case 'Decimal': {
        const p = /Decimal\((\d+),\s*(\d+)\)/.exec(native);
        return {
          udt: 'numeric',
          precision: (p ? [Number(p[1]), Number(p[2])] : [65, 30]) as [number, number],
        };
      }
      default:
        throw new Error(`unmapped type ${c.type}`);
    }
  })();
  return c.list ? { ...base, udt: `_${base.udt}` } : base;
}
