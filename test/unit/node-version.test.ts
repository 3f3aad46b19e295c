import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { REQUIRED_NODE_MAJOR } from '../../cli/require-node.ts';

describe('the Node the CLI needs', () => {
  it("is the one package.json's engines names (bin/kuberelay.cjs reads it from there)", () => {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8'));
    expect(pkg.engines.node).toBe(`>=${REQUIRED_NODE_MAJOR}`);
    // The Node that `npm install` brings satisfies it.
    expect(Number(pkg.devDependencies.node.replace(/^\D*/, '').split('.')[0])).toBe(REQUIRED_NODE_MAJOR);
  });
});
