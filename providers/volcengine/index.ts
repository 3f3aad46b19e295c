// The `volcengine` provider: Volcengine's visual API (Jimeng / Seedance video and images) as async
// jobs (visual.ts). No chat-style operation: every request is signed with the channel's AK/SK
// (sign.ts), credential scope `{date}/cn-north-1/cv/request`, through the `sign` hook.
import {
  type ChannelTarget,
  type OperationTranslator,
  type ProviderAdapter,
  type SignableRequest,
  UntranslatableError,
} from '../contract.ts';
import { errorOf } from './errors.ts';
import { sha256Hex, sign, xDateOf } from './sign.ts';
import { visualJobs } from './visual.ts';

/** The visual API's region and service (visual.volcengineapi.com). */
export const REGION = 'cn-north-1';
export const SERVICE = 'cv';

/**
 * Signs one request as sent: `host`, `x-date`, `x-content-sha256` and `content-type` (when set)
 * are signed; returns the headers to add. `at` is the signing time (default: now).
 */
export function signRequest(
  req: SignableRequest,
  ch: ChannelTarget,
  at = new Date(),
): Record<string, string> {
  const accessKeyId = ch.credentials?.['accessKeyId'];
  const secretAccessKey = ch.credentials?.['secretAccessKey'];
  if (!accessKeyId || !secretAccessKey) {
    throw new Error('volcengine channel without accessKeyId and secretAccessKey credentials');
  }
  const xDate = xDateOf(at);
  const contentSha = sha256Hex(req.body);
  const signed: Record<string, string> = {
    host: new URL(req.url).host,
    'x-date': xDate,
    'x-content-sha256': contentSha,
  };
  const contentType = req.headers['content-type'];
  if (contentType !== undefined) signed['content-type'] = contentType;
  const { authorization } = sign(
    { method: req.method, url: req.url, headers: signed, body: req.body },
    { accessKeyId, secretAccessKey, region: REGION, service: SERVICE },
    xDate,
  );
  return { 'x-date': xDate, 'x-content-sha256': contentSha, authorization };
}

/**
 * Chat, completions, embeddings and images requests are refused before anything is sent (400
 * unsupported_parameter on `model`): the visual API has no such operation, and sending one anyway
 * would count its error against the channel.
 */
const jobsOnly: OperationTranslator = {
  request: () => {
    throw new UntranslatableError(
      'model',
      'this model is served by Volcengine as async jobs only (POST /v1/videos)',
    );
  },
  response: (native) => native,
  usage: () => undefined,
};

export const volcengine: ProviderAdapter = {
  name: 'volcengine',
  supports: () => false,
  auth: () => ({}),
  sign: (req, ch) => signRequest(req, ch),
  url: (ch) => `${ch.basePath}/`,
  translator: () => jobsOnly,
  errorOf,
  jobs: visualJobs,
};
