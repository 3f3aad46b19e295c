// Veo video generation on the Gemini API, through long-running operations:
// `POST {root}/models/{model}:predictLongRunning` answers `{"name": "models/{model}/operations/{id}"}`;
// `GET {root}/{name}` answers the operation, `done` once finished, with either `error` (a
// google.rpc.Status) or `response.generateVideoResponse.generatedSamples[].video.uri`, a
// `files/{id}:download` URL on the same API that needs the key (resultAuth). Samples filtered by
// Google's safety filters come back as `raiMediaFilteredCount` / `raiMediaFilteredReasons`.
// Spec: ai.google.dev/gemini-api/docs/video (REST examples).
import { type CanonicalError, type ChannelTarget, UntranslatableError } from '../contract.ts';
import type { JobOperations, JobRequest, JobSnapshot } from '../jobs.ts';
import { geminiPath, geminiRoot } from './endpoint.ts';

type Json = Record<string, unknown>;
const obj = (v: unknown): Json | undefined =>
  typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Json) : undefined;

/** Veo 3's default clip length (it renders 4, 6 or 8 s; Veo 2 5 to 8 s). */
const DEFAULT_SECONDS = 8;
/** `size` -> Veo's aspectRatio and resolution (what its parameters can express). */
const SIZES: Readonly<Record<string, { aspectRatio: string; resolution: string }>> = {
  '1280x720': { aspectRatio: '16:9', resolution: '720p' },
  '720x1280': { aspectRatio: '9:16', resolution: '720p' },
  '1920x1080': { aspectRatio: '16:9', resolution: '1080p' },
  '1080x1920': { aspectRatio: '9:16', resolution: '1080p' },
};
const IMAGE_TYPES = new Set(['image/jpeg', 'image/png', 'image/webp']);
/** An operation name as the API writes it (no `..`, no query). */
const OPERATION = /^(models\/[A-Za-z0-9._-]+\/)?operations\/[A-Za-z0-9._-]+$/;

/** google.rpc.Code -> OpenAI error type. */
function rpcType(code: unknown): string {
  if (code === 3 || code === 9 || code === 11) return 'invalid_request_error';
  if (code === 7) return 'permission_error';
  if (code === 16) return 'authentication_error';
  if (code === 8) return 'rate_limit_error';
  if (code === 5) return 'not_found_error';
  return 'server_error';
}

const RPC_NAMES: Readonly<Record<number, string>> = {
  3: 'invalid_argument',
  4: 'deadline_exceeded',
  5: 'not_found',
  7: 'permission_denied',
  8: 'resource_exhausted',
  9: 'failed_precondition',
  13: 'internal',
  14: 'unavailable',
  16: 'unauthenticated',
};

export function operationError(status: unknown): CanonicalError {
  const s = obj(status);
  const code = s?.['code'];
  const message =
    typeof s?.['message'] === 'string' && s['message'] !== ''
      ? s['message']
      : 'Veo failed to generate the video.';
  return {
    message,
    type: rpcType(code),
    code: typeof code === 'number' ? (RPC_NAMES[code] ?? `rpc_${code}`) : null,
  };
}

export function predictBody(req: JobRequest): Json {
  if (req.remixOf !== undefined)
    throw new UntranslatableError('remix', 'Veo has no remix of a finished video');
  const instance: Json = { prompt: req.prompt };
  const ref = req.inputReference;
  if (ref) {
    const type = ref.contentType.split(';')[0]!.trim().toLowerCase();
    if (!IMAGE_TYPES.has(type)) {
      throw new UntranslatableError(
        'input_reference',
        `Veo takes a JPEG, PNG or WebP first frame (got ${type})`,
      );
    }
    instance['image'] = { bytesBase64Encoded: Buffer.from(ref.data).toString('base64'), mimeType: type };
  }
  const parameters: Json = { ...req.extra };
  if (req.size !== undefined) {
    const s = SIZES[req.size];
    if (!s) {
      throw new UntranslatableError('size', `Veo renders ${Object.keys(SIZES).join(', ')} (got ${req.size})`);
    }
    parameters['aspectRatio'] = s.aspectRatio;
    parameters['resolution'] = s.resolution;
  }
  if (req.seconds !== undefined) {
    if (!Number.isInteger(req.seconds) || req.seconds < 1) {
      throw new UntranslatableError('seconds', `Veo takes whole seconds (got ${req.seconds})`);
    }
    parameters['durationSeconds'] = req.seconds;
  }
  return Object.keys(parameters).length > 0
    ? { instances: [instance], parameters }
    : { instances: [instance] };
}

/** A finished operation's answer -> a terminal snapshot. */
function finished(op: Json): JobSnapshot {
  if (op['error'] !== undefined) return { status: 'failed', error: operationError(op['error']) };
  const video = obj(obj(op['response'])?.['generateVideoResponse']);
  const samples = Array.isArray(video?.['generatedSamples']) ? video['generatedSamples'] : [];
  const uri = obj(obj(samples[0])?.['video'])?.['uri'];
  if (typeof uri === 'string' && uri !== '') {
    return { status: 'completed', progress: 100, resultURL: uri, resultAuth: true, meta: { uri } };
  }
  const reasons = Array.isArray(video?.['raiMediaFilteredReasons'])
    ? video['raiMediaFilteredReasons'].filter((r): r is string => typeof r === 'string')
    : [];
  if (reasons.length > 0 || Number(video?.['raiMediaFilteredCount'] ?? 0) > 0) {
    return {
      status: 'failed',
      error: {
        message: reasons.join(' ') || 'Veo filtered the generated video (safety).',
        type: 'invalid_request_error',
        code: 'content_policy_violation',
      },
    };
  }
  return {
    status: 'failed',
    error: { message: 'Veo finished without a video.', type: 'server_error', code: 'upstream_error' },
  };
}

function snapshotOf(op: Json): JobSnapshot {
  return op['done'] === true ? finished(op) : { status: 'in_progress' };
}

export const veoJobs: JobOperations = {
  supports: (kind) => kind === 'video',

  submit: (req, ch: ChannelTarget) => ({
    method: 'POST',
    path: geminiPath(ch.basePath, req.upstreamModel, 'predictLongRunning'),
    headers: { 'content-type': 'application/json' },
    body: predictBody(req),
  }),

  parseSubmit(body, req) {
    const op = obj(body) ?? {};
    const name = op['name'];
    const seconds = req.seconds ?? DEFAULT_SECONDS;
    if (typeof name !== 'string' || !OPERATION.test(name)) {
      const error: CanonicalError = {
        message: 'Veo answered without an operation name.',
        type: 'server_error',
        code: 'upstream_error',
      };
      return { upstreamId: typeof name === 'string' ? name : '', snapshot: { status: 'failed', error } };
    }
    const snapshot = op['done'] === true ? finished(op) : { status: 'queued' as const };
    return { upstreamId: name, snapshot: { ...snapshot, seconds } };
  },

  poll(upstreamId, ch) {
    if (!OPERATION.test(upstreamId)) throw new Error(`not a Veo operation name: ${upstreamId}`);
    return { method: 'GET', path: `${geminiRoot(ch.basePath)}/${upstreamId}` };
  },

  parsePoll(status, body) {
    if (status === 404) return 'gone';
    if (status < 200 || status >= 300) return 'retry';
    const op = obj(body);
    return op ? snapshotOf(op) : 'retry';
  },
};
