import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { dataDirFromEnv } from '../../db/data-dir-lock.ts';
import { persistenceFromEnv } from '../../relay/persistence-config.ts';

describe('the embedded data directory', () => {
  it('defaults to one directory per user, not one per working directory', () => {
    expect(dataDirFromEnv({ HOME: '/home/ada' })).toBe('/home/ada/.local/share/kuberelay');
    expect(dataDirFromEnv({ HOME: '/home/ada', XDG_DATA_HOME: '/srv/ada-data' })).toBe(
      '/srv/ada-data/kuberelay',
    );
    expect(dataDirFromEnv({})).toBe(join(homedir(), '.local/share/kuberelay'));
  });

  it('ignores a relative XDG_DATA_HOME, as the XDG spec says', () => {
    expect(dataDirFromEnv({ HOME: '/home/ada', XDG_DATA_HOME: 'data' })).toBe(
      '/home/ada/.local/share/kuberelay',
    );
  });

  it('KUBERELAY_DATA_DIR wins, resolved against the working directory', () => {
    expect(dataDirFromEnv({ HOME: '/home/ada', KUBERELAY_DATA_DIR: '/data' })).toBe('/data');
    expect(dataDirFromEnv({ KUBERELAY_DATA_DIR: 'rel' })).toBe(resolve('rel'));
  });

  it('the relay and the CLI agree on it, whatever the environment', () => {
    const path = fc.stringMatching(/^\/[a-z0-9/]{0,12}$/);
    fc.assert(
      fc.property(
        fc.record({ HOME: path, XDG_DATA_HOME: path, KUBERELAY_DATA_DIR: path }, { requiredKeys: [] }),
        (env) => {
          const relay = persistenceFromEnv('keys', env);
          if (!relay) throw new Error('with client keys the relay persists');
          expect(relay.dataDir).toBe(dataDirFromEnv(env));
          expect(dataDirFromEnv(env)).toMatch(/^\//);
        },
      ),
    );
  });
});
