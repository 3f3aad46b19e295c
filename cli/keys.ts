import { tryParseDuration } from '../core/config/duration.ts';
import {
  type ApiKeyInfo,
  type CreatedKey,
  type KeyAdmin,
  KeyAdminError,
  type NewKey,
  parseBudget,
  parseLabel,
} from '../core/keys/api-key.ts';
import { PrismaKeyStore } from '../db/keys.ts';
import { applyMigrations, migrationStatus } from '../db/migrate.ts';
import { AdminApiKeyAdmin } from './admin-client.ts';
import { openForCli } from './db-access.ts';

/**
 * `kuberelay keys …`: the same operations directly on the database or through a relay's admin
 * API. Which one: `--admin-url` (with ADMIN_TOKEN) always means the API; otherwise PostgreSQL
 * (DATABASE_URL) is used directly, and so is the embedded data directory unless a relay holds it —
 * then its admin API, found through the data directory's lock file.
 */

export class CliError extends Error {
  override name = 'CliError';
}

interface Conn {
  admin: KeyAdmin;
  close(): Promise<void>;
}

export interface KeysCommonOptions {
  adminUrl?: string;
  json?: boolean;
}

async function connect(o: KeysCommonOptions, env = process.env): Promise<Conn> {
  if (o.adminUrl) {
    if (!env.ADMIN_TOKEN)
      throw new CliError('--admin-url needs the admin token in the ADMIN_TOKEN environment variable');
    return { admin: new AdminApiKeyAdmin(o.adminUrl, env.ADMIN_TOKEN), close: async () => {} };
  }
  const access = await openForCli('keys', env);
  if (access.kind === 'busy') {
    const { holder, dataDir } = access;
    const token = holder.adminToken ?? env.ADMIN_TOKEN;
    if (holder.adminUrl && token) {
      process.stderr.write(
        `kuberelay: the relay (pid ${holder.pid}) holds ${dataDir}; going through its admin API at ${holder.adminUrl}\n`,
      );
      return { admin: new AdminApiKeyAdmin(holder.adminUrl, token), close: async () => {} };
    }
    throw new CliError(
      `the data directory ${dataDir} is held by \`kuberelay ${holder.command}\` (pid ${holder.pid}), and embedded PGlite is single-process: ` +
        (holder.adminUrl
          ? `manage keys through its admin API: ADMIN_TOKEN=<the relay's ADMIN_TOKEN> kuberelay keys … --admin-url ${holder.adminUrl}`
          : 'wait for it to finish, or stop it and run this again'),
    );
  }
  const { db } = access;
  if (db.kind === 'pglite') {
    await applyMigrations(db);
  } else {
    const { pending } = await migrationStatus(db);
    if (pending.length > 0) {
      await access.close();
      throw new CliError(
        `the database at ${db.location} needs migrations (${pending.join(', ')}): run \`kuberelay migrate\``,
      );
    }
  }
  return { admin: new PrismaKeyStore(db), close: access.close };
}

async function withAdmin<T>(o: KeysCommonOptions, fn: (a: KeyAdmin) => Promise<T>): Promise<T> {
  const conn = await connect(o);
  try {
    return await fn(conn.admin);
  } catch (err) {
    if (err instanceof KeyAdminError) throw new CliError(err.message);
    throw err;
  } finally {
    await conn.close();
  }
}

export async function keysCreate(
  o: KeysCommonOptions & {
    name: string;
    expiresAt?: string;
    models?: string;
    label?: string[];
    budget?: string;
  },
) {
  const input: NewKey = {
    name: o.name,
    expiresAt: o.expiresAt ? parseExpiry(o.expiresAt) : undefined,
    models: o.models
      ? o.models
          .split(',')
          .map((m) => m.trim())
          .filter(Boolean)
      : [],
    labels: Object.fromEntries((o.label ?? []).map(parseLabelOrFail)),
    budget: o.budget ? parseBudgetOrFail(o.budget) : undefined,
  };
  const created = await withAdmin(o, (a) => a.create(input));
  print(o, created, () => showCreated(created, 'created'));
}

export async function keysList(o: KeysCommonOptions & { all?: boolean }) {
  // Revoked keys are fetched either way: an empty listing says whether they are why.
  const all = await withAdmin(o, (a) => a.list({ includeRevoked: true }));
  const keys = o.all ? all : all.filter((k) => k.revokedAt === null);
  print(o, { data: keys }, () => (keys.length > 0 ? table(keys) : noKeys(all.length - keys.length)));
}

function noKeys(revoked: number): string {
  if (revoked === 0) return 'no API keys yet: create one with `kuberelay keys create --name NAME`\n';
  return `no active API keys (${revoked} revoked; \`kuberelay keys list --all\` shows them)\n`;
}

export async function keysRevoke(o: KeysCommonOptions & { id: string }) {
  const key = await withAdmin(o, (a) => a.revoke(o.id));
  print(o, key, () => `revoked ${key.id} (${key.name}) at ${key.revokedAt}\n`);
}

export async function keysRotate(o: KeysCommonOptions & { id: string; gracePeriod: string }) {
  const ms = tryParseDuration(o.gracePeriod);
  if (ms === undefined)
    throw new CliError(`--grace-period must be a duration like 0s, 10m or 24h, not "${o.gracePeriod}"`);
  const created = await withAdmin(o, (a) => a.rotate(o.id, ms));
  print(o, created, () => {
    const old = created.key.secrets.filter((s) => s.expiresAt !== null);
    const grace = old.length > 0 ? `the previous secret keeps working until ${old[0]!.expiresAt}\n` : '';
    return showCreated(created, 'rotated') + grace;
  });
}

function print(o: KeysCommonOptions, json: unknown, text: () => string) {
  process.stdout.write(o.json ? `${JSON.stringify(json, null, 2)}\n` : text());
}

function showCreated(c: CreatedKey, what: string): string {
  return (
    `${what} API key ${c.key.id} (${c.key.name})\n\n` +
    `  ${c.secret}\n\n` +
    'This secret is shown only now and cannot be recovered: store it where your client reads it.\n'
  );
}

function table(keys: ApiKeyInfo[]): string {
  const rows = keys.map((k) => [
    k.id,
    k.name,
    k.secrets.map((s) => `${s.prefix}…`).join(' '),
    k.status,
    k.models.length > 0 ? k.models.join(',') : '*',
    Object.entries(k.labels)
      .map(([l, v]) => `${l}=${v}`)
      .join(',') || '-',
    k.budget ? `${k.budget.amount}/${k.budget.period}` : '-',
    k.expiresAt ?? '-',
    k.createdAt,
  ]);
  const head = ['ID', 'NAME', 'PREFIX', 'STATUS', 'MODELS', 'LABELS', 'BUDGET', 'EXPIRES', 'CREATED'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  return [head, ...rows]
    .map(
      (r) =>
        `${r
          .map((c, i) => c.padEnd(widths[i]!))
          .join('  ')
          .trimEnd()}\n`,
    )
    .join('');
}

/** An ISO time, or a duration from now (`30d`, `12h`). */
function parseExpiry(v: string): string {
  const ms = tryParseDuration(v);
  if (ms !== undefined) return new Date(Date.now() + ms).toISOString();
  const t = Date.parse(v);
  if (/^\d{4}-\d{2}-\d{2}/.test(v) && Number.isFinite(t)) return new Date(t).toISOString();
  throw new CliError(
    `--expires-at must be a time like 2026-12-31T00:00:00Z or a duration like 30d, not "${v}"`,
  );
}

function parseLabelOrFail(v: string): [string, string] {
  try {
    return parseLabel(v);
  } catch (err) {
    throw new CliError((err as Error).message);
  }
}

function parseBudgetOrFail(v: string) {
  try {
    return parseBudget(v);
  } catch (err) {
    throw new CliError((err as Error).message);
  }
}
