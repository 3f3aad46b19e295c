import { applyMigrations, migrationStatus } from '../db/migrate.ts';
import { openForCli } from './db-access.ts';
import { CliError } from './keys.ts';

/** `kuberelay migrate [--status]`: the database at DATABASE_URL, or the embedded data directory. */
export async function runMigrate(o: { status?: boolean }) {
  const access = await openForCli('migrate');
  if (access.kind === 'busy') {
    const h = access.holder;
    if (h.command === 'relay') {
      process.stdout.write(
        `the relay running on ${access.dataDir} (pid ${h.pid}) migrated the embedded database when it started; nothing to do\n`,
      );
      return;
    }
    throw new CliError(
      `the data directory ${access.dataDir} is in use by \`kuberelay ${h.command}\` (pid ${h.pid}); try again`,
    );
  }
  try {
    const where = access.db.location;
    if (o.status) {
      const s = await migrationStatus(access.db);
      process.stdout.write(
        `${where}: ${s.applied.length} applied, ${s.pending.length} pending${s.pending.length ? ` (${s.pending.join(', ')})` : ''}` +
          `${s.unknown.length ? `; applied by a newer kuberelay: ${s.unknown.join(', ')}` : ''}\n`,
      );
      if (s.pending.length > 0) process.exitCode = 2;
      return;
    }
    const applied = await applyMigrations(access.db);
    process.stdout.write(
      applied.length > 0 ? `${where}: applied ${applied.join(', ')}\n` : `${where}: already up to date\n`,
    );
  } finally {
    await access.close();
  }
}
