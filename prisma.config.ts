import { defineConfig } from 'prisma/config';

// Only `prisma generate` uses this file: migrations are applied by `kuberelay migrate`
// (db/migrate.ts), because Prisma's schema engine cannot be downloaded everywhere we build.
export default defineConfig({
  schema: 'prisma/schema.prisma',
  migrations: { path: 'prisma/migrations' },
});
