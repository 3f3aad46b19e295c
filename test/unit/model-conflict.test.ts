import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { renderRelayConfig, type SourcedObject } from '../../core/config/render.ts';

// DESIGN.md, "Safety defaults": with more than one watched namespace, Channels of two namespaces
// never pool one model name; the newer one reports Accepted=False, reason ModelConflict.

const secret = (ns: string): SourcedObject => ({
  object: {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: 'creds', namespace: ns },
    data: { apiKey: 'c2stMQ==' },
  },
});
const channel = (ns: string, name: string, models: string[], created: string): SourcedObject => ({
  object: {
    apiVersion: 'kuberelay.io/v1alpha1',
    kind: 'Channel',
    metadata: { name, namespace: ns, generation: 1, creationTimestamp: created },
    spec: {
      provider: 'openai',
      baseURL: 'https://api.openai.com/v1',
      apiKeySecretRef: { name: 'creds' },
      models: models.map((m) => ({ name: m })),
    },
  },
});
const accepted = (r: ReturnType<typeof renderRelayConfig>, ns: string, name: string) =>
  r.results
    .find((x) => x.kind === 'Channel' && x.namespace === ns && x.name === name)!
    .conditions.find((c) => c.type === 'Accepted')!;

describe('render: model names across namespaces', () => {
  it('the newer Channel of another namespace is refused with ModelConflict naming the other', () => {
    const r = renderRelayConfig(
      [
        secret('team-a'),
        secret('team-b'),
        // Listed newest first: age decides, not order.
        channel('team-b', 'thief', ['gpt-4o', 'own-model'], '2026-11-02T00:00:00Z'),
        channel('team-a', 'openai', ['gpt-4o'], '2026-11-01T00:00:00Z'),
      ],
      { generation: 1 },
    );
    expect(accepted(r, 'team-a', 'openai')).toMatchObject({ status: 'True' });
    const refused = accepted(r, 'team-b', 'thief');
    expect(refused).toMatchObject({ status: 'False', reason: 'ModelConflict' });
    expect(refused.message).toContain(
      '"gpt-4o" is already served by Channel team-a/openai in namespace team-a',
    );
    expect(r.config.channels.map((c) => c.id)).toEqual(['team-a/openai']);
  });

  it('Channels of one namespace still pool a model (priorities, weights, failover)', () => {
    const r = renderRelayConfig(
      [
        secret('team-a'),
        channel('team-a', 'one', ['gpt-4o'], '2026-11-01T00:00:00Z'),
        channel('team-a', 'two', ['gpt-4o'], '2026-11-02T00:00:00Z'),
      ],
      { generation: 1 },
    );
    expect(r.config.channels.map((c) => c.id)).toEqual(['team-a/one', 'team-a/two']);
  });

  it('invariant: every served model name comes from exactly one namespace, and the oldest claimant keeps it', () => {
    const arb = fc.array(
      fc.record({
        ns: fc.constantFrom('a', 'b', 'c'),
        models: fc.uniqueArray(fc.constantFrom('m1', 'm2', 'm3', 'm4'), { minLength: 1, maxLength: 3 }),
        day: fc.integer({ min: 1, max: 28 }),
      }),
      { maxLength: 12 },
    );
    fc.assert(
      fc.property(arb, (specs) => {
        const objects = [
          secret('a'),
          secret('b'),
          secret('c'),
          ...specs.map((s, i) =>
            channel(s.ns, `ch${i}`, s.models, `2026-11-${String(s.day).padStart(2, '0')}T00:00:0${i % 10}Z`),
          ),
        ];
        const { config } = renderRelayConfig(objects, { generation: 1 });
        const owners = new Map<string, Set<string>>();
        for (const c of config.channels)
          for (const m of c.models) owners.set(m.name, (owners.get(m.name) ?? new Set()).add(c.namespace));
        for (const set of owners.values()) expect(set.size).toBe(1);
        // The oldest Channel is always accepted.
        if (specs.length > 0) {
          const created = (i: number) =>
            Date.parse(`2026-11-${String(specs[i]!.day).padStart(2, '0')}T00:00:0${i % 10}Z`);
          const oldest = specs
            .map((_, i) => i)
            .sort(
              (x, y) =>
                created(x) - created(y) || `${specs[x]!.ns}/ch${x}`.localeCompare(`${specs[y]!.ns}/ch${y}`),
            )[0]!;
          expect(config.channels.some((c) => c.name === `ch${oldest}`)).toBe(true);
        }
      }),
    );
  });
});
