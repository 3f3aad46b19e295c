import {
  type ApiKeyInfo,
  type CreatedKey,
  type KeyAdmin,
  KeyAdminError,
  type KeyChange,
  type KeyLookup,
  type KeyRecord,
  keyNotFound,
  keyStatus,
  type NewKey,
  newKeySchema,
} from '../core/keys/api-key.ts';
import { displayPrefix, generateKeyId, generateSecret, hashSecret } from '../core/keys/secret.ts';
import type { Database, Sql } from './database.ts';

/**
 * API keys in the database: management (KeyAdmin) and the request path's lookups (KeyLookup), in
 * plain SQL (db/database.ts), so neither the relay's auth nor its admin API loads Prisma.
 */

interface KeyRow {
  id: string;
  name: string;
  prefix: string;
  models: string[];
  labels: Record<string, string>;
  budget_amount: string | null;
  budget_period: string | null;
  created_at: Date;
  expires_at: Date | null;
  revoked_at: Date | null;
}

interface SecretRow {
  hash: string;
  key_id: string;
  prefix: string;
  created_at: Date;
  expires_at: Date | null;
}

const KEY_COLUMNS =
  'k.id, k.name, k.prefix, k.models, k.labels, k.budget_amount, k.budget_period, k.created_at, k.expires_at, k.revoked_at';

export class PrismaKeyStore implements KeyAdmin, KeyLookup {
  readonly #db: Database;
  readonly #now: () => number;

  constructor(db: Database, opts: { now?: () => number } = {}) {
    this.#db = db;
    this.#now = opts.now ?? Date.now;
  }

  async create(input: NewKey): Promise<CreatedKey> {
    const parsed = newKeySchema.safeParse(input);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      throw new KeyAdminError(400, 'invalid_key', `${issue.path.join('.') || 'key'}: ${issue.message}`);
    }
    const k = parsed.data;
    if (k.expiresAt && Date.parse(k.expiresAt) <= this.#now()) {
      throw new KeyAdminError(400, 'invalid_key', 'expiresAt is in the past');
    }
    const secret = generateSecret();
    const prefix = displayPrefix(secret);
    const id = generateKeyId();
    await this.#db.transaction(async (tx) => {
      await tx.query(
        `INSERT INTO api_keys (id, name, prefix, models, labels, budget_amount, budget_period, expires_at, updated_at)
         VALUES ($1, $2, $3, $4::text[], $5::jsonb, $6::numeric, $7, $8::timestamptz, now())`,
        [
          id,
          k.name,
          prefix,
          k.models,
          JSON.stringify(k.labels),
          k.budget?.amount ?? null,
          k.budget?.period ?? null,
          k.expiresAt ? new Date(k.expiresAt) : null,
        ],
      );
      await tx.query('INSERT INTO api_key_secrets (hash, key_id, prefix) VALUES ($1, $2, $3)', [
        hashSecret(secret),
        id,
        prefix,
      ]);
    });
    return { key: await this.get(id), secret };
  }

  async list(opts: { includeRevoked?: boolean } = {}): Promise<ApiKeyInfo[]> {
    const keys = await this.#db.query<KeyRow>(
      `SELECT ${KEY_COLUMNS} FROM api_keys k ${opts.includeRevoked ? '' : 'WHERE k.revoked_at IS NULL'}
       ORDER BY k.created_at`,
    );
    const secrets = await this.#db.query<SecretRow>(
      `SELECT s.hash, s.key_id, s.prefix, s.created_at, s.expires_at FROM api_key_secrets s
       WHERE s.key_id = ANY($1::text[])`,
      [keys.map((r) => r.id)],
    );
    return keys.map((r) => this.#info(r, secrets));
  }

  async get(id: string): Promise<ApiKeyInfo> {
    return this.#get(this.#db, id);
  }

  async #get(db: Sql, id: string): Promise<ApiKeyInfo> {
    const [row] = await db.query<KeyRow>(`SELECT ${KEY_COLUMNS} FROM api_keys k WHERE k.id = $1`, [id]);
    if (!row) throw keyNotFound(id);
    const secrets = await db.query<SecretRow>(
      'SELECT hash, key_id, prefix, created_at, expires_at FROM api_key_secrets WHERE key_id = $1',
      [id],
    );
    return this.#info(row, secrets);
  }

  async revoke(id: string): Promise<ApiKeyInfo> {
    // Revoking twice keeps the first time; get() answers 404 when the key does not exist.
    await this.#db.query('UPDATE api_keys SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL', [
      id,
      new Date(this.#now()),
    ]);
    return this.get(id);
  }

  async rotate(id: string, gracePeriodMs: number): Promise<CreatedKey> {
    if (!Number.isFinite(gracePeriodMs) || gracePeriodMs < 0) {
      throw new KeyAdminError(400, 'invalid_grace_period', 'the grace period must be a duration >= 0');
    }
    const secret = generateSecret();
    const prefix = displayPrefix(secret);
    const now = this.#now();
    const graceEnd = new Date(now + gracePeriodMs);
    const key = await this.#db.transaction(async (tx) => {
      const [k] = await tx.query<KeyRow>(`SELECT ${KEY_COLUMNS} FROM api_keys k WHERE k.id = $1 FOR UPDATE`, [
        id,
      ]);
      if (!k) throw keyNotFound(id);
      const status = keyStatus({ revokedAt: k.revoked_at, expiresAt: k.expires_at }, now);
      if (status !== 'active') {
        throw new KeyAdminError(409, `key_${status}`, `API key ${id} is ${status} and cannot be rotated`);
      }
      // Current secrets (and older ones whose grace would outlast this one) end with the grace.
      await tx.query(
        'UPDATE api_key_secrets SET expires_at = $2 WHERE key_id = $1 AND (expires_at IS NULL OR expires_at > $2)',
        [id, graceEnd],
      );
      await tx.query('INSERT INTO api_key_secrets (hash, key_id, prefix) VALUES ($1, $2, $3)', [
        hashSecret(secret),
        id,
        prefix,
      ]);
      await tx.query('UPDATE api_keys SET prefix = $2 WHERE id = $1', [id, prefix]);
      return this.#get(tx, id);
    });
    return { key, secret };
  }

  async findBySecretHash(hash: string): Promise<KeyRecord | null> {
    const [r] = await this.#db.query<KeyRow & { secret_expires_at: Date | null }>(
      `SELECT ${KEY_COLUMNS}, s.expires_at AS secret_expires_at
       FROM api_key_secrets s JOIN api_keys k ON k.id = s.key_id WHERE s.hash = $1`,
      [hash],
    );
    if (!r) return null;
    return {
      id: r.id,
      name: r.name,
      models: r.models,
      labels: r.labels,
      budget: budgetOf(r),
      expiresAt: r.expires_at?.getTime() ?? null,
      revokedAt: r.revoked_at?.getTime() ?? null,
      secretHash: hash,
      secretExpiresAt: r.secret_expires_at?.getTime() ?? null,
    };
  }

  async changedSince(since: number | null): Promise<{ now: number; changed: KeyChange[] }> {
    const [{ now }] = (await this.#db.query<{ now: Date }>('SELECT clock_timestamp() AS now')) as [
      { now: Date },
    ];
    if (since === null) return { now: now.getTime(), changed: [] };
    const rows = await this.#db.query<{ id: string; updated_at: Date; hashes: string[] }>(
      `SELECT k.id, k.updated_at, coalesce(array_agg(s.hash) FILTER (WHERE s.hash IS NOT NULL), '{}') AS hashes
       FROM api_keys k LEFT JOIN api_key_secrets s ON s.key_id = k.id
       WHERE k.updated_at > $1 GROUP BY k.id, k.updated_at`,
      [new Date(since)],
    );
    return {
      now: now.getTime(),
      changed: rows.map((r) => ({ id: r.id, updatedAt: r.updated_at.getTime(), hashes: r.hashes })),
    };
  }

  #info(row: KeyRow, secrets: readonly SecretRow[]): ApiKeyInfo {
    const now = this.#now();
    const iso = (d: Date | null) => d?.toISOString() ?? null;
    return {
      id: row.id,
      name: row.name,
      prefix: row.prefix,
      status: keyStatus({ revokedAt: row.revoked_at, expiresAt: row.expires_at }, now),
      models: row.models,
      labels: row.labels,
      budget: budgetOf(row),
      createdAt: row.created_at.toISOString(),
      expiresAt: iso(row.expires_at),
      revokedAt: iso(row.revoked_at),
      secrets: secrets
        .filter((s) => s.key_id === row.id && (s.expires_at === null || s.expires_at.getTime() > now))
        .sort((a, b) => b.created_at.getTime() - a.created_at.getTime())
        .map((s) => ({
          prefix: s.prefix,
          createdAt: s.created_at.toISOString(),
          expiresAt: iso(s.expires_at),
        })),
    };
  }
}

function budgetOf(r: Pick<KeyRow, 'budget_amount' | 'budget_period'>): KeyRecord['budget'] {
  return r.budget_amount !== null && r.budget_period !== null
    ? { amount: Number(r.budget_amount), period: r.budget_period as 'day' | 'month' }
    : null;
}
