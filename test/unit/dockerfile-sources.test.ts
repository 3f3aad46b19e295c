import { readdirSync, readFileSync } from 'node:fs';
import { expect, it } from 'vitest';

// The image builds dist/ from the folders its Dockerfile copies. A new top-level source folder
// the Dockerfile does not copy breaks `npm run build` inside the image only (jobs/ did), which
// nothing but the slow node tier would see.
const root = new URL('../../', import.meta.url);
const NOT_SHIPPED = new Set(['test', 'bench', 'node_modules', 'dist', 'db/generated']);

function sourceFolders(): string[] {
  return readdirSync(root, { withFileTypes: true })
    .filter((d) => d.isDirectory() && !d.name.startsWith('.') && !NOT_SHIPPED.has(d.name))
    .filter((d) =>
      readdirSync(new URL(`${d.name}/`, root), { recursive: true }).some((f) => String(f).endsWith('.ts')),
    )
    .map((d) => d.name)
    .sort();
}

it('the Dockerfile copies, and tsconfig.json builds, every top-level source folder', () => {
  const dockerfile = readFileSync(new URL('Dockerfile', root), 'utf8');
  const copied = [...dockerfile.matchAll(/^COPY (\S+) \.\/\1$/gm)].map((m) => m[1]);
  const included = (JSON.parse(readFileSync(new URL('tsconfig.json', root), 'utf8')) as { include: string[] })
    .include;
  for (const folder of sourceFolders()) {
    expect(copied, `Dockerfile: COPY ${folder} ./${folder}`).toContain(folder);
    expect(included, `tsconfig.json include: ${folder}`).toContain(folder);
  }
});
