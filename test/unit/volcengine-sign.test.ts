// Volcengine's HMAC-SHA256 request signature, against the provider's own documented example and by
// its invariants.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { ChannelTarget } from '../../providers/contract.ts';
import { signRequest } from '../../providers/volcengine/index.ts';
import { canonicalQuery, parseAuthorization, sign, signingKey } from '../../providers/volcengine/sign.ts';

// Volcengine's "签名过程Demo" (signature walk-through) page of its API signing docs
// (volcengine.com/docs/6369, "签名方法"; the same page is mirrored in public repositories):
// access key, secret key, request and every intermediate value below are copied from it.
const DOC = {
  accessKeyId: 'AKLTYWViMTVmZGYzM2E0NDI5Mzk2MDZjNjFmMjc2MjRjMzg',
  secretAccessKey: 'WkRZeE1EQmxPVGhsWWpWak5HVmtNbUUxTXpZeU9UVXlOMlE1TmpZeVlqTQ==',
  region: 'cn-beijing',
  service: 'iam',
  url: 'https://iam.volcengineapi.com/?Action=ListUsers&Version=2018-01-01&Limit=10&Offset=0',
  xDate: '20240619T071306Z',
  canonicalRequest: [
    'GET',
    '/',
    'Action=ListUsers&Limit=10&Offset=0&Version=2018-01-01',
    'host:iam.volcengineapi.com',
    'x-date:20240619T071306Z',
    '',
    'host;x-date',
    'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
  ].join('\n'),
  stringToSign: [
    'HMAC-SHA256',
    '20240619T071306Z',
    '20240619/cn-beijing/iam/request',
    '5ed5bca3905e1fcbf789abb56a17c2d819674a3bcfa468ae476bd1ea80d135cb',
  ].join('\n'),
  signingKey: 'abee62e533a58934c49954459a3c3237d2fccea517c9a7c8a2651d8ea7779826',
  authorization:
    'HMAC-SHA256 Credential=AKLTYWViMTVmZGYzM2E0NDI5Mzk2MDZjNjFmMjc2MjRjMzg/20240619/cn-beijing/iam/request, SignedHeaders=host;x-date, Signature=e31c4558bcfe08a286001f59cedbf0791ffd0b2362f10e55ee2627467bcdde93',
};

const docKey = {
  accessKeyId: DOC.accessKeyId,
  secretAccessKey: DOC.secretAccessKey,
  region: DOC.region,
  service: DOC.service,
};

describe('Volcengine signature', () => {
  it('reproduces the documented example: canonical request, string to sign, signing key, Authorization', () => {
    const s = sign(
      {
        method: 'GET',
        url: DOC.url,
        headers: { Host: 'iam.volcengineapi.com', 'X-Date': DOC.xDate },
        body: '',
      },
      docKey,
      DOC.xDate,
    );
    expect(s.canonicalRequest).toBe(DOC.canonicalRequest);
    expect(s.stringToSign).toBe(DOC.stringToSign);
    expect(signingKey(DOC.secretAccessKey, '20240619', DOC.region, DOC.service).toString('hex')).toBe(
      DOC.signingKey,
    );
    expect(s.authorization).toBe(DOC.authorization);
    expect(parseAuthorization(s.authorization)).toEqual({
      accessKeyId: DOC.accessKeyId,
      date: '20240619',
      region: 'cn-beijing',
      service: 'iam',
      signedHeaders: ['host', 'x-date'],
      signature: 'e31c4558bcfe08a286001f59cedbf0791ffd0b2362f10e55ee2627467bcdde93',
    });
  });

  it('the query order, header-name case and header whitespace of the request do not change the signature', () => {
    const param = fc.tuple(fc.string({ minLength: 1, maxLength: 8 }), fc.string({ maxLength: 12 }));
    fc.assert(
      fc.property(
        fc.uniqueArray(param, { selector: ([k]) => k, maxLength: 6 }),
        fc.boolean(),
        (params, upper) => {
          const url = (ps: typeof params) => {
            const u = new URL('https://visual.volcengineapi.com/');
            for (const [k, v] of ps) u.searchParams.append(k, v);
            return u.toString();
          };
          const headers = (up: boolean) => ({
            [up ? 'Host' : 'host']: 'visual.volcengineapi.com',
            [up ? 'X-Date' : 'x-date']: up ? `  ${DOC.xDate} ` : DOC.xDate,
          });
          const a = sign(
            { method: 'POST', url: url(params), headers: headers(false), body: '{}' },
            docKey,
            DOC.xDate,
          );
          const b = sign(
            { method: 'post', url: url([...params].reverse()), headers: headers(upper), body: '{}' },
            docKey,
            DOC.xDate,
          );
          expect(b.authorization).toBe(a.authorization);
        },
      ),
    );
  });

  it('encodes the canonical query by RFC 3986 (space %20, reserved characters escaped)', () => {
    expect(canonicalQuery(new URLSearchParams('b=a b&a=x*y&c=~._-&d=(!)'))).toBe(
      'a=x%2Ay&b=a%20b&c=~._-&d=%28%21%29',
    );
  });

  it('any change to the body, path, query or a signed header changes the signature', () => {
    const base = {
      method: 'POST',
      url: 'https://visual.volcengineapi.com/?Action=A&Version=V',
      body: '{"a":1}',
    };
    const headers = { host: 'visual.volcengineapi.com', 'x-date': DOC.xDate };
    const ref = sign({ ...base, headers }, docKey, DOC.xDate).signature;
    fc.assert(
      fc.property(fc.string({ minLength: 1 }), (extra) => {
        const variants = [
          sign({ ...base, headers, body: base.body + extra }, docKey, DOC.xDate),
          sign({ ...base, headers, url: `${base.url}&Z=${encodeURIComponent(extra)}` }, docKey, DOC.xDate),
          sign({ ...base, headers: { ...headers, 'x-extra': extra.trim() || 'x' } }, docKey, DOC.xDate),
        ];
        for (const v of variants) expect(v.signature).not.toBe(ref);
      }),
    );
  });
});

describe('volcengine sign hook', () => {
  const channel: ChannelTarget = {
    baseURL: 'https://visual.volcengineapi.com',
    basePath: '',
    apiKey: 'AKLT-id',
    credentials: { accessKeyId: 'AKLT-id', secretAccessKey: 'c2VjcmV0LWtleQ==' },
  };
  const body = '{"req_key":"jimeng_vgfm_t2v_l20","prompt":"a cat"}';
  const at = new Date('2026-12-01T16:08:43.512Z');

  it('signs host, x-date, x-content-sha256 and content-type in scope {date}/cn-north-1/cv/request', () => {
    const url = 'https://visual.volcengineapi.com/?Action=CVSync2AsyncSubmitTask&Version=2022-08-31';
    const out = signRequest(
      { method: 'POST', url, headers: { 'content-type': 'application/json', 'x-request-id': 'r1' }, body },
      channel,
      at,
    );
    expect(out['x-date']).toBe('20261201T160843Z');
    expect(out['x-content-sha256']).toMatch(/^[0-9a-f]{64}$/);
    const parsed = parseAuthorization(out['authorization']!)!;
    expect(parsed).toMatchObject({
      accessKeyId: 'AKLT-id',
      date: '20261201',
      region: 'cn-north-1',
      service: 'cv',
      signedHeaders: ['content-type', 'host', 'x-content-sha256', 'x-date'],
    });
    // The same signature the algorithm gives for exactly those headers: verifiable by the upstream.
    const again = sign(
      {
        method: 'POST',
        url,
        headers: {
          host: 'visual.volcengineapi.com',
          'x-date': out['x-date']!,
          'x-content-sha256': out['x-content-sha256']!,
          'content-type': 'application/json',
        },
        body,
      },
      { accessKeyId: 'AKLT-id', secretAccessKey: 'c2VjcmV0LWtleQ==', region: 'cn-north-1', service: 'cv' },
      out['x-date']!,
    );
    expect(out['authorization']).toBe(again.authorization);
    // the secret never leaves in a header
    expect(JSON.stringify(out)).not.toContain('c2VjcmV0LWtleQ==');
  });

  it('refuses a channel without both keys', () => {
    const { credentials: _, ...bare } = channel;
    expect(() =>
      signRequest(
        { method: 'POST', url: 'https://visual.volcengineapi.com/', headers: {}, body: '' },
        bare,
        at,
      ),
    ).toThrow(/accessKeyId and secretAccessKey/);
  });
});
