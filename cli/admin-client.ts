import type { ApiKeyInfo, CreatedKey, KeyAdmin, NewKey } from '../core/keys/api-key.ts';

/** KeyAdmin over a running relay's admin API (relay/admin.ts). */
export class AdminApiKeyAdmin implements KeyAdmin {
  readonly #url: string;
  readonly #token: string;

  constructor(url: string, token: string) {
    this.#url = url.replace(/\/+$/, '');
    this.#token = token;
  }

  create(input: NewKey): Promise<CreatedKey> {
    return this.#call('POST', '/admin/keys', input);
  }

  async list(opts: { includeRevoked?: boolean } = {}): Promise<ApiKeyInfo[]> {
    const q = opts.includeRevoked ? '?includeRevoked=true' : '';
    return (await this.#call<{ data: ApiKeyInfo[] }>('GET', `/admin/keys${q}`)).data;
  }

  get(id: string): Promise<ApiKeyInfo> {
    return this.#call('GET', `/admin/keys/${encodeURIComponent(id)}`);
  }

  revoke(id: string): Promise<ApiKeyInfo> {
    return this.#call('POST', `/admin/keys/${encodeURIComponent(id)}/revoke`, {});
  }

  rotate(id: string, gracePeriodMs: number): Promise<CreatedKey> {
    return this.#call('POST', `/admin/keys/${encodeURIComponent(id)}/rotate`, {
      gracePeriod: `${Math.round(gracePeriodMs)}ms`,
    });
  }

  async #call<T>(method: string, path: string, body?: unknown): Promise<T> {
    let res: Response;
    try {
      res = await fetch(this.#url + path, {
        method,
        headers: {
          authorization: `Bearer ${this.#token}`,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (err) {
      throw new Error(
        `cannot reach the admin API at ${this.#url}: ${(err as Error).cause ?? (err as Error).message}`,
      );
    }
    const json = (await res.json().catch(() => undefined)) as { error?: { message?: string } } | undefined;
    if (!res.ok) {
      const why = json?.error?.message ?? `HTTP ${res.status}`;
      throw new Error(
        res.status === 401
          ? `the admin API at ${this.#url} refused the token: check ADMIN_TOKEN (${why})`
          : why,
      );
    }
    return json as T;
  }
}
