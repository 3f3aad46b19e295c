import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import type { RequestRecord } from '../../core/accounting.ts';
import { hashSecret } from '../../core/keys/secret.ts';
import { PrismaAccounting } from '../../db/accounting.ts';
import { type Database, openDatabase } from '../../db/database.ts';
import { PrismaKeyStore } from '../../db/keys.ts';
import { applyMigrations, loadMigrations, MigrationError, migrationStatus } from '../../db/migrate.ts';
import { BACKENDS, type Backend, startBackend } from '../helpers/backends.ts';
import { expectedPgType, readSchema } from '../helpers/prisma-schema.ts';

describe.each(BACKENDS)('database on %s', (backendName) => {
  let backend: Backend;
  let db: Database;

  beforeAll(async () => {
    backend = await startBackend(backendName);
    const { url, dataDir } = await backend.fresh();
    db = await openDatabase({ url, dataDir });
    await applyMigrations(db);
  });
  afterAll(async () => {
    await db?.close();
    await backend?.close();
  });

  it('migrations apply once, are recorded like Prisma records them, and re-running is a no-op', async () => {
    const { url, dataDir } = await backend.fresh();
    const db = await openDatabase({ url, dataDir });
    onTestFinished(() => db.close());
    const all = await loadMigrations();
    expect(all.length).toBeGreaterThan(0);
    expect(await migrationStatus(db)).toEqual({ applied: [], pending: all.map((m) => m.name), unknown: [] });
    expect(await applyMigrations(db)).toEqual(all.map((m) => m.name));
    expect(await applyMigrations(db)).toEqual([]);
    const rows = await db.session((s) =>
      s.query<{
        migration_name: string;
        checksum: string;
        finished_at: Date | null;
        applied_steps_count: number;
      }>('SELECT migration_name, checksum, finished_at, applied_steps_count FROM "_prisma_migrations"'),
    );
    expect(rows.map((r) => [r.migration_name, r.checksum, r.applied_steps_count])).toEqual(
      all.map((m) => [m.name, m.checksum, 1]),
    );
    expect(rows.every((r) => r.finished_at !== null)).toBe(true);
  });

  it('refuses a migration that was edited after it was applied, and records a failing one', async () => {
    const all = await loadMigrations();
    const edited = all.map((m, i) => (i === 0 ? { ...m, checksum: 'x'.repeat(64) } : m));
    await expect(migrationStatus(db, edited)).rejects.toThrow(/changed after it was applied/);

    const dir = await mkdtemp(join(tmpdir(), 'kuberelay-mig-'));
    onTestFinished(() => rm(dir, { recursive: true, force: true }));
    await mkdir(join(dir, '29990101000000_broken'));
    await writeFile(
      join(dir, '29990101000000_broken', 'migration.sql'),
      'CREATE TABLE "half" (id int);\nSELECT nope;',
    );
    const broken = [...all, ...(await loadMigrations(dir))];
    await expect(applyMigrations(db, broken)).rejects.toThrow(MigrationError);
    // One transaction: the table of the failed script does not exist.
    const half = await db.session((s) =>
      s.query<{ t: string | null }>(`SELECT to_regclass('"half"')::text AS t`),
    );
    expect(half[0]!.t).toBeNull();
    await expect(migrationStatus(db, broken)).rejects.toThrow(/failed earlier and was not rolled back/);
    // What the error message tells the operator to do, then the database is usable again.
    await db.session((s) =>
      s.query(
        `UPDATE "_prisma_migrations" SET rolled_back_at = now() WHERE migration_name = '29990101000000_broken'`,
      ),
    );
    expect((await migrationStatus(db)).pending).toEqual([]);
  });

  it('the migrated schema is the one prisma/schema.prisma describes', async () => {
    const models = readSchema();
    const q = <T>(sql: string, params: unknown[] = []) => db.session((s) => s.query<T>(sql, params));
    const tables = await q<{ table_name: string }>(
      `SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_name <> '_prisma_migrations' ORDER BY 1`,
    );
    expect(tables.map((t) => t.table_name)).toEqual(models.map((m) => m.table).sort());

    for (const m of models) {
      const cols = await q<{
        column_name: string;
        udt_name: string;
        is_nullable: string;
        column_default: string | null;
        numeric_precision: number | null;
        numeric_scale: number | null;
      }>(
        `SELECT column_name, udt_name, is_nullable, column_default, numeric_precision, numeric_scale
           FROM information_schema.columns WHERE table_schema = 'public' AND table_name = $1 ORDER BY ordinal_position`,
        [m.table],
      );
      expect(cols.map((c) => c.column_name).sort(), m.table).toEqual(m.columns.map((c) => c.column).sort());
      for (const c of m.columns) {
        const db = cols.find((x) => x.column_name === c.column)!;
        const want = expectedPgType(c);
        const where = `${m.table}.${c.column}`;
        expect(db.udt_name, where).toBe(want.udt);
        if (want.precision) expect([db.numeric_precision, db.numeric_scale], where).toEqual(want.precision);
        // Prisma lists are nullable columns; everything else follows `?`.
        if (!c.list) expect(db.is_nullable, where).toBe(c.optional ? 'YES' : 'NO');
        if (c.hasDefault) expect(db.column_default, `${where} default`).not.toBeNull();
      }

      const indexes = await q<{
        name: string;
        unique: boolean;
        primary: boolean;
        columns: string[] | string;
      }>(
        `SELECT i.relname AS name, x.indisunique AS unique, x.indisprimary AS primary,
                array_agg(a.attname ORDER BY k.ord) AS columns
           FROM pg_index x
           JOIN pg_class i ON i.oid = x.indexrelid
           JOIN pg_class t ON t.oid = x.indrelid
           CROSS JOIN LATERAL unnest(x.indkey) WITH ORDINALITY AS k(attnum, ord)
           JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum
          WHERE t.relname = $1
          GROUP BY i.relname, x.indisunique, x.indisprimary`,
        [m.table],
      );
      const cols2 = (v: string[] | string) => (Array.isArray(v) ? v : v.replace(/[{}]/g, '').split(','));
      const pk = indexes.find((i) => i.primary);
      expect(pk && cols2(pk.columns), `${m.table} primary key`).toEqual(m.primaryKey);
      for (const u of m.uniques) {
        expect(
          indexes.some((i) => i.unique && !i.primary && cols2(i.columns).join() === u.join()),
          `${m.table} unique ${u}`,
        ).toBe(true);
      }
      for (const ix of m.indexes) {
        expect(
          indexes.some((i) => !i.primary && cols2(i.columns).join() === ix.join()),
          `${m.table} index ${ix}`,
        ).toBe(true);
      }
      expect(indexes.length, `${m.table}: no index the schema does not declare`).toBe(
        1 + m.uniques.length + m.indexes.length,
      );

      const fks = await q<{ columns: string; ref_table: string; ref_columns: string; on_delete: string }>(
        `SELECT (SELECT string_agg(attname, ',') FROM pg_attribute WHERE attrelid = c.conrelid AND attnum = ANY (c.conkey)) AS columns,
                r.relname AS ref_table,
                (SELECT string_agg(attname, ',') FROM pg_attribute WHERE attrelid = c.confrelid AND attnum = ANY (c.confkey)) AS ref_columns,
                c.confdeltype AS on_delete
           FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid JOIN pg_class r ON r.oid = c.confrelid
          WHERE c.contype = 'f' AND t.relname = $1`,
        [m.table],
      );
      expect(
        fks.map((f) => ({
          columns: f.columns.split(','),
          table: f.ref_table,
          references: f.ref_columns.split(','),
          onDelete: { c: 'Cascade', a: '', r: 'Restrict', n: 'SetNull', d: 'SetDefault' }[f.on_delete],
        })),
        `${m.table} foreign keys`,
      ).toEqual(m.foreignKeys);
    }
  });

  it('every model takes every client operation, with every field set and read back', async () => {
    const p = await db.prisma();
    const now = new Date('2026-03-04T05:06:07.089Z');
    const key = await p.apiKey.create({
      data: {
        id: 'key_ops',
        name: 'ops',
        prefix: 'sk-kr-ops',
        models: ['a', 'b'],
        labels: { team: 'x' },
        budgetAmount: 12.5,
        budgetPeriod: 'month',
        expiresAt: now,
        revokedAt: now,
        secrets: {
          create: [
            { hash: 'h1', prefix: 'sk-kr-1', expiresAt: now },
            { hash: 'h2', prefix: 'sk-kr-2' },
          ],
        },
      },
      include: { secrets: { orderBy: { hash: 'asc' } } },
    });
    expect(key).toMatchObject({
      models: ['a', 'b'],
      labels: { team: 'x' },
      budgetPeriod: 'month',
      expiresAt: now,
    });
    expect(Number(key.budgetAmount)).toBe(12.5);
    expect(key.secrets.map((s) => [s.hash, s.keyId, s.expiresAt])).toEqual([
      ['h1', 'key_ops', now],
      ['h2', 'key_ops', null],
    ]);
    const defaults = await p.apiKey.create({ data: { id: 'key_min', name: 'min', prefix: 'p' } });
    expect(defaults).toMatchObject({
      models: [],
      labels: {},
      budgetAmount: null,
      expiresAt: null,
      revokedAt: null,
    });
    expect(defaults.createdAt).toBeInstanceOf(Date);
    await p.apiKey.update({ where: { id: 'key_min' }, data: { name: 'renamed', models: { push: 'c' } } });
    expect((await p.apiKey.findUniqueOrThrow({ where: { id: 'key_min' } })).models).toEqual(['c']);
    expect(await p.apiKey.count()).toBe(2);
    await p.apiKey.delete({ where: { id: 'key_ops' } });
    expect(await p.apiKeySecret.count()).toBe(0); // cascaded

    const log = await p.requestLog.create({
      data: {
        requestId: 'r1',
        at: now,
        keyId: 'k',
        route: '/v1/chat/completions',
        model: 'm',
        channel: 'default/c',
        status: 502,
        durationMs: 1234,
        attempts: 3,
        stream: true,
        promptTokens: 1,
        completionTokens: 2,
        cachedTokens: 3,
        cost: 0.0000001234,
        errorCode: 'upstream_error',
      },
    });
    expect(typeof log.id).toBe('bigint');
    expect(Number(log.cost)).toBeCloseTo(0.0000001234, 12);
    await p.requestLog.createMany({
      data: [{ ...log, id: undefined, requestId: 'r2', keyId: null, channel: null, errorCode: null }],
    });
    expect(await p.requestLog.count({ where: { status: { gte: 500 } } })).toBe(2);
    expect((await p.requestLog.deleteMany({ where: { at: { lt: new Date() } } })).count).toBe(2);

    const day = new Date('2026-03-04T00:00:00Z');
    const id = { day, keyId: '', channel: 'default/c', model: 'm' };
    await p.usageDaily.upsert({
      where: { day_keyId_channel_model: id },
      create: {
        ...id,
        requests: 1n,
        errors: 1n,
        promptTokens: 5n,
        completionTokens: 6n,
        cachedTokens: 7n,
        cost: 0.5,
      },
      update: {},
    });
    await p.usageDaily.update({
      where: { day_keyId_channel_model: id },
      data: { requests: { increment: 2 } },
    });
    const agg = await p.usageDaily.aggregate({ _sum: { requests: true, cost: true } });
    expect(agg._sum.requests).toBe(3n);
    expect(Number(agg._sum.cost)).toBe(0.5);
    expect((await p.usageDaily.findFirstOrThrow()).day).toEqual(day);

    const task = await p.mediaTask.create({
      data: {
        id: 'task_1',
        channel: 'default/video',
        upstreamTaskId: 'up-1',
        keyId: 'k',
        model: 'sora',
        kind: 'video',
        status: 'queued',
        progress: 10,
        result: { url: 'x' },
        error: { code: 'none' },
        nextPollAt: now,
        completedAt: now,
      },
    });
    expect(task).toMatchObject({ pollAttempts: 0, result: { url: 'x' }, nextPollAt: now });
    await expect(
      p.mediaTask.create({
        data: {
          id: 'task_2',
          channel: 'default/video',
          upstreamTaskId: 'up-1',
          model: 'sora',
          kind: 'video',
          status: 'queued',
        },
      }),
    ).rejects.toThrow(); // (channel, upstreamTaskId) is unique
    const found = await p.mediaTask.findUniqueOrThrow({
      where: { channel_upstreamTaskId: { channel: 'default/video', upstreamTaskId: 'up-1' } },
    });
    expect(found.id).toBe('task_1');
    await p.mediaTask.update({
      where: { id: 'task_1' },
      data: { status: 'completed', pollAttempts: { increment: 1 } },
    });
    expect((await p.mediaTask.findFirstOrThrow({ where: { status: 'completed' } })).pollAttempts).toBe(1);
  });

  it('keys: create, look up by secret hash, rotate with a grace period, revoke; changes are visible to pollers', async () => {
    const store = new PrismaKeyStore(db);
    const { now: t0 } = await store.changedSince(null);
    const created = await store.create({
      name: 'app',
      models: ['gpt-4o-mini'],
      labels: { team: 'search', 'example.com/tier': 'gold' },
      budget: { amount: 5, period: 'day' },
    });
    expect(created.secret).toMatch(/^sk-kr-[0-9A-Za-z]{43}$/);
    expect(created.key).toMatchObject({
      name: 'app',
      status: 'active',
      prefix: created.secret.slice(0, 14),
      budget: { amount: 5, period: 'day' },
    });
    expect(JSON.stringify(created.key)).not.toContain(created.secret);
    const stored = await (await db.prisma()).apiKeySecret.findMany({ where: { keyId: created.key.id } });
    expect(stored.map((s) => s.hash)).toEqual([hashSecret(created.secret)]);

    const rec = await store.findBySecretHash(hashSecret(created.secret));
    expect(rec).toMatchObject({
      id: created.key.id,
      models: ['gpt-4o-mini'],
      budget: { amount: 5, period: 'day' },
    });
    expect(await store.findBySecretHash(hashSecret('sk-kr-unknown'))).toBeNull();

    const changed1 = await store.changedSince(t0);
    expect(changed1.changed.map((c) => c.id)).toContain(created.key.id);
    expect(changed1.changed.find((c) => c.id === created.key.id)!.hashes).toEqual([
      hashSecret(created.secret),
    ]);

    const rotated = await store.rotate(created.key.id, 60_000);
    expect(rotated.key.id).toBe(created.key.id);
    expect(rotated.secret).not.toBe(created.secret);
    expect(rotated.key.secrets).toHaveLength(2);
    const oldRec = await store.findBySecretHash(hashSecret(created.secret));
    expect(oldRec!.secretExpiresAt).toBeGreaterThan(Date.now() + 50_000);
    expect((await store.findBySecretHash(hashSecret(rotated.secret)))!.secretExpiresAt).toBeNull();
    const changed2 = await store.changedSince(changed1.now);
    expect(changed2.changed.find((c) => c.id === created.key.id)!.hashes.sort()).toEqual(
      [hashSecret(created.secret), hashSecret(rotated.secret)].sort(),
    );

    const revoked = await store.revoke(created.key.id);
    expect(revoked.status).toBe('revoked');
    expect((await store.revoke(created.key.id)).revokedAt).toBe(revoked.revokedAt);
    await expect(store.rotate(created.key.id, 0)).rejects.toMatchObject({ status: 409, code: 'key_revoked' });
    expect((await store.list()).map((k) => k.id)).not.toContain(created.key.id);
    expect((await store.list({ includeRevoked: true })).map((k) => k.id)).toContain(created.key.id);
    await expect(store.revoke('key_nope')).rejects.toMatchObject({ status: 404 });
    await expect(store.create({ name: '', labels: {} })).rejects.toMatchObject({ status: 400 });
    await expect(store.create({ name: 'x', labels: { 'bad key!': 'v' } })).rejects.toMatchObject({
      status: 400,
    });
    await expect(store.create({ name: 'x', expiresAt: '2001-01-01T00:00:00Z' })).rejects.toMatchObject({
      status: 400,
    });
  });

  it('usage rollups: concurrent batches add up exactly; logs and usage are queryable', async () => {
    const acc = new PrismaAccounting(db);
    const inc = (keyId: string, channel: string, cost: number) => ({
      day: '2026-05-01',
      keyId,
      channel,
      model: 'gpt-4o-mini',
      requests: 1,
      errors: 0,
      promptTokens: 10,
      completionTokens: 20,
      cachedTokens: 0,
      cacheWriteTokens: 1,
      reasoningTokens: 2,
      cost,
    });
    // 40 concurrent batches racing on the same rows: each increment lands once.
    await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        acc.addUsage([inc('k1', 'default/a', 0.25), inc(`k${i % 2}`, 'default/b', 1)]),
      ),
    );
    const detail = await (await db.prisma()).usageDaily.aggregate({
      where: { day: new Date('2026-05-01') },
      _sum: { cacheWriteTokens: true, reasoningTokens: true },
    });
    expect(detail._sum).toEqual({ cacheWriteTokens: 80n, reasoningTokens: 160n });
    const byKey = await acc.usage({ from: '2026-05-01', to: '2026-05-01', groupBy: ['keyId'] });
    expect(byKey).toEqual([
      {
        keyId: 'k0',
        requests: 20,
        errors: 0,
        promptTokens: 200,
        completionTokens: 400,
        cachedTokens: 0,
        cost: 20,
      },
      {
        keyId: 'k1',
        requests: 60,
        errors: 0,
        promptTokens: 600,
        completionTokens: 1200,
        cachedTokens: 0,
        cost: 30,
      },
    ]);
    const byDayChannel = await acc.usage({ keyId: 'k1', groupBy: ['day', 'channel'] });
    expect(byDayChannel.map((r) => [r.day, r.channel, r.requests, r.cost])).toEqual([
      ['2026-05-01', 'default/a', 40, 10],
      ['2026-05-01', 'default/b', 20, 20],
    ]);
    expect(await acc.keySpendSince('k1', new Date('2026-05-01'))).toBe(30);
    expect(await acc.keySpendSince('k1', new Date('2026-05-02'))).toBe(0);

    const at0 = Date.now() - 0.25; // not on a millisecond: the relay's clock is not
    const rec = (i: number): RequestRecord => ({
      requestId: `req-${i}`,
      at: at0 + i,
      keyId: 'k1',
      route: '/v1/chat/completions',
      model: 'gpt-4o-mini',
      channel: 'default/a',
      status: i % 2 ? 200 : 429,
      durationMs: 12.6,
      attempts: 1,
      stream: false,
      promptTokens: 1,
      completionTokens: 2,
      cachedTokens: 0,
      cacheWriteTokens: 4,
      reasoningTokens: 3,
      usageSource: i % 2 ? 'reported' : undefined,
      cost: 0.001,
      errorCode: i % 2 ? undefined : 'upstream_rate_limited',
    });
    await acc.writeLogs(Array.from({ length: 6 }, (_, i) => rec(i)));
    const logged = await (await db.prisma()).requestLog.findFirst({ where: { requestId: 'req-1' } });
    expect(Math.abs(logged!.at.getTime() - (at0 + 1))).toBeLessThanOrEqual(0.5);
    expect(logged).toMatchObject({
      keyId: 'k1',
      channel: 'default/a',
      status: 200,
      durationMs: 13,
      stream: false,
      promptTokens: 1,
      completionTokens: 2,
      errorCode: null,
      cacheWriteTokens: 4,
      reasoningTokens: 3,
      usageSource: 'reported',
    });
    expect(
      (await (await db.prisma()).requestLog.findFirst({ where: { requestId: 'req-0' } }))?.usageSource,
    ).toBeNull();
    const errors = await acc.recentLogs({ keyId: 'k1', errors: true, limit: 10 });
    expect(errors.map((e) => e.requestId)).toEqual(['req-4', 'req-2', 'req-0']);
    expect(errors[0]).toMatchObject({ durationMs: 13, errorCode: 'upstream_rate_limited', cost: 0.001 });
    expect(await acc.pruneLogs(new Date(Date.now() + 1000))).toBe(6);
  });
});
