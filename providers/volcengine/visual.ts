// Jimeng / Seedance video and image generation on Volcengine's visual API
// (visual.volcengineapi.com), as async tasks: `CVSync2AsyncSubmitTask` creates one, and
// `CVSync2AsyncGetResult` reports it (`in_queue`, `generating`, `done`, `not_found`, `expired`).
// Both are `POST /?Action=...&Version=2022-08-31` with a JSON body naming the model's `req_key`
// (the channel's upstreamName, e.g. `jimeng_vgfm_t2v_l20`, `jimeng_t2v_v30`, `jimeng_t2i_v31`).
import { type CanonicalError, type ChannelTarget, UntranslatableError } from '../contract.ts';
import type { JobOperations, JobRequest, JobSnapshot, SubmitResult, UpstreamCall } from '../jobs.ts';
import { businessCode, errorOf, isTransientCode, SUCCESS } from './errors.ts';

export const VERSION = '2022-08-31';
/** Jimeng video renders 24 fps plus one frame: 121 frames is 5 s (the default), 241 is 10 s. */
const FPS = 24;
const DEFAULT_VIDEO_SECONDS = 5;
const VIDEO_SECONDS = new Set([5, 10]);
const ASPECT_RATIOS = new Set(['16:9', '4:3', '1:1', '3:4', '9:16', '21:9']);
const IMAGE_TYPES = new Set(['image/jpeg', 'image/png', 'image/webp', 'image/bmp']);

type Json = Record<string, unknown>;
const obj = (v: unknown): Json | undefined =>
  typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Json) : undefined;

const action = (ch: ChannelTarget, name: string): string =>
  `${ch.basePath}/?Action=${name}&Version=${VERSION}`;

function dimensions(size: string): [number, number] {
  const m = /^(\d{2,5})x(\d{2,5})$/.exec(size);
  if (!m) throw new UntranslatableError('size', `size must be WIDTHxHEIGHT, e.g. 1280x720 (got "${size}")`);
  return [Number(m[1]), Number(m[2])];
}

/**
 * The supported aspect ratio nearest to the size's, within 3% (sizes round: 2560x1080 is 21:9,
 * OpenAI's 1792x1024 is 16:9); farther than that is refused rather than silently reframed.
 */
function aspectRatio(size: string): string {
  const [w, h] = dimensions(size);
  let best = '';
  let distance = Number.POSITIVE_INFINITY;
  for (const r of ASPECT_RATIOS) {
    const [rw, rh] = r.split(':').map(Number) as [number, number];
    const d = Math.abs(Math.log(w / h / (rw / rh)));
    if (d < distance) [best, distance] = [r, d];
  }
  if (distance > Math.log(1.03)) {
    throw new UntranslatableError(
      'size',
      `Volcengine video takes the aspect ratios ${[...ASPECT_RATIOS].join(', ')}; size ${size} is none of them`,
    );
  }
  return best;
}

function videoSeconds(req: JobRequest): number | undefined {
  if (req.seconds === undefined) return undefined;
  if (!VIDEO_SECONDS.has(req.seconds)) {
    throw new UntranslatableError('seconds', `Volcengine video renders 5 or 10 seconds (got ${req.seconds})`);
  }
  return req.seconds;
}

function referenceImage(req: JobRequest): string | undefined {
  const ref = req.inputReference;
  if (!ref) return undefined;
  const type = ref.contentType.split(';')[0]!.trim().toLowerCase();
  if (!IMAGE_TYPES.has(type)) {
    throw new UntranslatableError(
      'input_reference',
      `Volcengine takes a JPEG, PNG, WebP or BMP image (got ${type})`,
    );
  }
  return Buffer.from(ref.data).toString('base64');
}

/** The native submit body. Fields of `extra` pass through; the ones this contract names win. */
export function submitBody(req: JobRequest): Json {
  if (req.remixOf !== undefined)
    throw new UntranslatableError('remix', 'Volcengine has no remix of a finished task');
  const body: Json = { ...req.extra, req_key: req.upstreamModel, prompt: req.prompt };
  const image = referenceImage(req);
  if (image !== undefined) body['binary_data_base64'] = [image];
  if (req.kind === 'video') {
    const seconds = videoSeconds(req);
    if (seconds !== undefined) body['frames'] = seconds * FPS + 1;
    if (req.size !== undefined) body['aspect_ratio'] = aspectRatio(req.size);
  } else if (req.size !== undefined) {
    const [width, height] = dimensions(req.size);
    body['width'] = width;
    body['height'] = height;
  }
  return body;
}

function failed(error: CanonicalError): JobSnapshot {
  return { status: 'failed', error };
}

/** A 2xx GetResult answer's `data` -> a snapshot. */
function snapshotOf(data: Json): JobSnapshot | 'gone' {
  const status = data['status'];
  if (status === 'in_queue') return { status: 'queued' };
  if (status === 'generating') return { status: 'in_progress' };
  if (status === 'not_found') return 'gone';
  if (status === 'expired') {
    return failed({
      message: 'The Volcengine task expired (results are kept 12 hours); submit it again.',
      type: 'invalid_request_error',
      code: 'expired',
    });
  }
  if (status !== 'done') {
    return failed({
      message: `Volcengine reported an unknown task status ${JSON.stringify(status)}.`,
      type: 'server_error',
      code: 'upstream_error',
    });
  }
  const video = typeof data['video_url'] === 'string' ? data['video_url'] : undefined;
  const urls = Array.isArray(data['image_urls'])
    ? data['image_urls'].filter((u): u is string => typeof u === 'string')
    : [];
  const b64 = Array.isArray(data['binary_data_base64'])
    ? data['binary_data_base64'].filter((u): u is string => typeof u === 'string')
    : [];
  if (video) return { status: 'completed', progress: 100, resultURL: video, meta: { video_url: video } };
  if (urls.length > 0 || b64.length > 0) {
    const meta: Json = {};
    if (urls.length > 0) meta['image_urls'] = urls;
    if (b64.length > 0) meta['b64_json'] = b64;
    const snap: JobSnapshot = { status: 'completed', progress: 100, meta };
    if (urls[0]) snap.resultURL = urls[0];
    return snap;
  }
  return failed({
    message: 'The Volcengine task finished without a video or image.',
    type: 'server_error',
    code: 'upstream_error',
  });
}

export const visualJobs: JobOperations = {
  supports: (kind) => kind === 'video' || kind === 'image',

  submit: (req, ch): UpstreamCall => ({
    method: 'POST',
    path: action(ch, 'CVSync2AsyncSubmitTask'),
    headers: { 'content-type': 'application/json' },
    body: submitBody(req),
  }),

  parseSubmit(body, req): SubmitResult {
    const b = obj(body);
    const code = businessCode(b);
    const data = obj(b?.['data']);
    const taskId = data?.['task_id'];
    if (code !== SUCCESS || typeof taskId !== 'string' || taskId === '') {
      // A 2xx that is no task: the job failed at submit (nothing runs upstream).
      const requestId = typeof b?.['request_id'] === 'string' ? b['request_id'] : '';
      const error =
        code !== undefined && code !== SUCCESS
          ? errorOf(200, b)
          : {
              message: 'Volcengine accepted the task but named no task_id.',
              type: 'server_error',
              code: 'upstream_error',
            };
      return { upstreamId: requestId, snapshot: failed(error) };
    }
    const snapshot: JobSnapshot = { status: 'queued' };
    if (req.kind === 'video') snapshot.seconds = req.seconds ?? DEFAULT_VIDEO_SECONDS;
    return { upstreamId: taskId, snapshot };
  },

  poll: (upstreamId, ch, req): UpstreamCall => {
    const body: Json = { req_key: req.upstreamModel, task_id: upstreamId };
    // Images: ask for URLs (valid 24 h) besides the base64 bytes, so the content can be streamed.
    if (req.kind === 'image') body['req_json'] = JSON.stringify({ return_url: true });
    return {
      method: 'POST',
      path: action(ch, 'CVSync2AsyncGetResult'),
      headers: { 'content-type': 'application/json' },
      body,
    };
  },

  parsePoll(status, body) {
    if (status === 404) return 'gone';
    const code = businessCode(body);
    if (status === 429 || status >= 500 || (code !== undefined && isTransientCode(code))) return 'retry';
    if (status >= 200 && status < 300 && code === SUCCESS) {
      const data = obj(obj(body)?.['data']);
      return data ? snapshotOf(data) : 'retry';
    }
    // A business error on a task (moderation of the output, bad parameters) is its end; a gateway
    // error (auth) or a body without a code is not the task's fault: ask again later.
    if (code !== undefined && code !== SUCCESS) return failed(errorOf(status, body));
    return 'retry';
  },
};
