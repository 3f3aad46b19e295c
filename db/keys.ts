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
import type { ApiKey, ApiKeySecret, PrismaClient } from './generated/client.ts';

/** API keys in the database: management (KeyAdmin) and the request path's lookups (KeyLookup). */
export class PrismaKeyStore implements KeyAdmin, KeyLookup {
  readonly #db: PrismaClient;
  readonly #now: () => number;

  constructor(db: PrismaClient, opts: { now?: () => number } = {}) {
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
    const row = await this.#db.apiKey.create({
      data: {
        id: generateKeyId(),
        name: k.name,
        prefix,
        models: k.models,
        labels: k.labels,
        budgetAmount: k.budget?.amount ?? null,
        budgetPeriod: k.budget?.period ?? null,
        expiresAt: k.expiresAt ? new Date(k.expiresAt) : null,
        secrets: { create: { hash: hashSecret(secret), prefix } },
      },
      include: { secrets: true },
    });
    return { key: this.#info(row), secret };
  }

  async list(opts: { includeRevoked?: boolean } = {}): Promise<ApiKeyInfo[]> {
    const rows = await this.#db.apiKey.findMany({
      where: opts.includeRevoked ? {} : { revokedAt: null },
      include: { secrets: true },
      orderBy: { createdAt: 'asc' },
    });
    return rows.map((r) => this.#info(r));
  }

  async get(id: string): Promise<ApiKeyInfo> {
    const row = await this.#db.apiKey.findUnique({ where: { id }, include: { secrets: true } });
    if (!row) throw keyNotFound(id);
    return this.#info(row);
  }

  async revoke(id: string): Promise<ApiKeyInfo> {
    const now = new Date(this.#now());
    // Revoking twice keeps the first time.
    const n = await this.#db.apiKey.updateMany({ where: { id, revokedAt: null }, data: { revokedAt: now } });
    if (n.count === 0) await this.get(id); // 404 when it does not exist
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
    const row = await this.#db.$transaction(async (tx) => {
      const key = await tx.apiKey.findUnique({ where: { id } });
      if (!key) throw keyNotFound(id);
      const status = keyStatus(key, now);
      if (status !== 'active') {
        throw new KeyAdminError(409, `key_${status}`, `API key ${id} is ${status} and cannot be rotated`);
      }
      // Current secrets (and older ones whose grace would outlast this one) end with the grace.
      await tx.apiKeySecret.updateMany({
        where: { keyId: id, OR: [{ expiresAt: null }, { expiresAt: { gt: graceEnd } }] },
        data: { expiresAt: graceEnd },
      });
      await tx.apiKeySecret.create({ data: { hash: hashSecret(secret), prefix, keyId: id } });
      return tx.apiKey.update({ where: { id }, data: { prefix }, include: { secrets: true } });
    });
    return { key: this.#info(row), secret };
  }

  async findBySecretHash(hash: string): Promise<KeyRecord | null> {
    const s = await this.#db.apiKeySecret.findUnique({ where: { hash }, include: { key: true } });
    if (!s) return null;
    const k = s.key;
    return {
      id: k.id,
      name: k.name,
      models: k.models,
      labels: k.labels as Record<string, string>,
      budget:
        k.budgetAmount !== null && k.budgetPeriod !== null
          ? { amount: Number(k.budgetAmount), period: k.budgetPeriod as 'day' | 'month' }
          : null,
      expiresAt: k.expiresAt?.getTime() ?? null,
      revokedAt: k.revokedAt?.getTime() ?? null,
      secretHash: s.hash,
      secretExpiresAt: s.expiresAt?.getTime() ?? null,
    };
  }

  async changedSince(since: number | null): Promise<{ now: number; changed: KeyChange[] }> {
    const [{ now }] = await this.#db.$queryRaw<[{ now: Date }]>`SELECT clock_timestamp() AS now`;
    if (since === null) return { now: now.getTime(), changed: [] };
    const rows = await this.#db.apiKey.findMany({
      where: { updatedAt: { gt: new Date(since) } },
      select: { id: true, updatedAt: true, secrets: { select: { hash: true } } },
    });
    return {
      now: now.getTime(),
      changed: rows.map((r) => ({
        id: r.id,
        updatedAt: r.updatedAt.getTime(),
        hashes: r.secrets.map((s) => s.hash),
      })),
    };
  }

  #info(row: ApiKey & { secrets: ApiKeySecret[] }): ApiKeyInfo {
    const now = this.#now();
    const iso = (d: Date | null) => d?.toISOString() ?? null;
    return {
      id: row.id,
      name: row.name,
      prefix: row.prefix,
      status: keyStatus(row, now),
      models: row.models,
      labels: row.labels as Record<string, string>,
      budget:
        row.budgetAmount !== null && row.budgetPeriod !== null
          ? { amount: Number(row.budgetAmount), period: row.budgetPeriod as 'day' | 'month' }
          : null,
      createdAt: row.createdAt.toISOString(),
      expiresAt: iso(row.expiresAt),
      revokedAt: iso(row.revokedAt),
      secrets: row.secrets
        .filter((s) => s.expiresAt === null || s.expiresAt.getTime() > now)
        .sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime())
        .map((s) => ({
          prefix: s.prefix,
          createdAt: s.createdAt.toISOString(),
          expiresAt: iso(s.expiresAt),
        })),
    };
  }
}
