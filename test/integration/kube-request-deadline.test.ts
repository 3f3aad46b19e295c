import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withSignal } from '../../kube/client.ts';

// An API server that accepts a request and never answers must not hold an operator call (and with
// it the reconcile loop, whose runs are never concurrent) for undici's 5-minute timeouts.
describe('Kubernetes calls are bounded on their own', () => {
  let received = 0;
  const server = createServer(() => void received++); // reads the request, never answers
  let core: CoreV1Api;
  beforeAll(async () => {
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [
        {
          name: 'c',
          server: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
          skipTLSVerify: true,
        },
      ],
      users: [{ name: 'u', token: 'x' }],
      contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
      currentContext: 'x',
    });
    core = kc.makeApiClient(CoreV1Api);
  });
  afterAll(() => {
    server.closeAllConnections();
    server.close();
  });

  it('a call with a signal that never fires still fails after its deadline', async () => {
    const never = new AbortController().signal;
    const t0 = performance.now();
    await expect(
      core.readNamespacedSecret({ namespace: 'n', name: 's' }, withSignal(never, undefined, 300)),
    ).rejects.toThrow();
    expect(performance.now() - t0).toBeLessThan(5000);
    expect(received).toBe(1); // it reached the server (and was not refused before being sent)
  });
});
