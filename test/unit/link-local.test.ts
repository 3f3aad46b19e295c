import { lookup } from 'node:dns';
import fc from 'fast-check';
import { request } from 'undici';
import { describe, expect, it } from 'vitest';
import { isLinkLocalAddress } from '../../core/config/link-local.ts';
import { parseObjects } from '../../core/config/load.ts';
import { renderRelayConfig } from '../../core/config/render.ts';
import { compileRuntime } from '../../relay/runtime.ts';
import { refusingLinkLocal } from '../../relay/upstream-connect.ts';

const docs = (baseURL: string, extra = '') => `apiVersion: v1
kind: Secret
metadata: { name: creds }
stringData: { apiKey: sk-test-123 }
---
apiVersion: kuberelay.io/v1alpha1
kind: Channel
metadata: { name: c }
spec:
  provider: openai-compatible
  baseURL: ${baseURL}
  apiKeySecretRef: { name: creds }
  models: [{ name: gpt-4o-mini }]
${extra}`;

const render = (baseURL: string, extra = '') =>
  renderRelayConfig(parseObjects(docs(baseURL, extra), 'test.yaml'), { generation: 1 });

describe('link-local and metadata upstreams', () => {
  const refused = [
    'http://169.254.169.254/latest/meta-data',
    'http://169.254.170.2/v2',
    'http://0xa9fea9fe/v1', // 169.254.169.254 spelled in hex
    'http://2852039166/v1', // ... and as one decimal number
    'http://[fe80::1]:8080/v1',
    'http://[fd00:ec2::254]/v1',
    'http://[::ffff:169.254.169.254]/v1',
    'http://100.100.100.200/v1',
    'http://metadata.google.internal/computeMetadata/v1',
    'http://METADATA.google.internal./v1',
    'http://metadata/v1',
  ];
  it.each(refused)('refuses %s at render: Accepted=False, reason LinkLocalAddress', (url) => {
    const { config, results } = render(url);
    expect(config.channels).toEqual([]);
    const accepted = results.find((r) => r.kind === 'Channel')!.conditions.find((c) => c.type === 'Accepted');
    expect(accepted).toMatchObject({ status: 'False', reason: 'LinkLocalAddress' });
    expect(accepted!.message).toMatch(/spec\.baseURL: .*(link-local|metadata).*spec\.allowLinkLocal: true/);
  });

  it('serves it when the Channel opts in with spec.allowLinkLocal', () => {
    const { config } = render('http://169.254.169.254/v1', '  allowLinkLocal: true\n');
    expect(config.channels).toHaveLength(1);
    expect(config.channels[0]!.allowLinkLocal).toBe(true);
  });

  it.each([
    'https://api.openai.com/v1',
    'http://127.0.0.1:9100/v1',
    'http://10.0.0.7/v1',
    'http://[fd00::1]/v1',
    'http://169.255.0.1/v1',
    'http://metadata.example.com/v1',
  ])('accepts %s, and leaves the field out of the snapshot', (url) => {
    const { config } = render(url);
    expect(config.channels).toHaveLength(1);
    expect('allowLinkLocal' in config.channels[0]!).toBe(false);
  });

  it('an IPv4 address is refused exactly when it is in 169.254.0.0/16 or the Alibaba metadata address, in any spelling', () => {
    fc.assert(
      fc.property(fc.ipV4(), (ip) => {
        const expected = ip.startsWith('169.254.') || ip === '100.100.100.200';
        expect(isLinkLocalAddress(ip)).toBe(expected);
        expect(isLinkLocalAddress(`::ffff:${ip}`)).toBe(expected);
        expect(render(`http://${ip}/v1`).config.channels.length).toBe(expected ? 0 : 1);
      }),
    );
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 65535 }), (n) => {
        expect(isLinkLocalAddress(`169.254.${n >> 8}.${n & 255}`)).toBe(true);
        expect(isLinkLocalAddress(`fe80::${n.toString(16)}`)).toBe(true);
        expect(isLinkLocalAddress(`febf:${n.toString(16)}::1`)).toBe(true);
        expect(isLinkLocalAddress(`fec0:${n.toString(16)}::1`)).toBe(false);
      }),
    );
  });
});

describe('link-local upstreams at connect time', () => {
  const resolve = (host: string, all: boolean) =>
    new Promise<unknown>((ok, fail) =>
      refusingLinkLocal(lookup, 'default/c')(host, { all }, (err, address) =>
        err ? fail(err) : ok(address),
      ),
    );

  it('a name is checked as resolved, one address or all of them', async () => {
    // getaddrinfo answers a numeric host with itself: the real resolver, no DNS server needed.
    await expect(resolve('169.254.169.254', false)).rejects.toThrow(
      /default\/c: refusing to connect to 169\.254\.169\.254.*spec\.allowLinkLocal: true/,
    );
    await expect(resolve('169.254.169.254', true)).rejects.toThrow(/link-local/);
    expect(await resolve('localhost', false)).toMatch(/^(127\.0\.0\.1|::1)$/);
    expect(await resolve('localhost', true)).toEqual(
      expect.arrayContaining([expect.objectContaining({ address: expect.any(String) })]),
    );
  });

  it("a channel's pool refuses a link-local address without connecting, unless the Channel opted in", async () => {
    const { config } = render('http://127.0.0.1:9/v1');
    // A snapshot not made by render (a hand-written config Secret) gets no further.
    const rogue = { ...config, channels: [{ ...config.channels[0]!, baseURL: 'http://169.254.169.254/v1' }] };
    const { runtime } = compileRuntime(rogue);
    const ch = runtime.channels.get('default/c')!;
    await expect(
      request('http://169.254.169.254/latest/meta-data', { dispatcher: ch.dispatcher }),
    ).rejects.toThrow(/refusing to connect to 169\.254\.169\.254/);
    await ch.dispatcher.close();
  });
});
