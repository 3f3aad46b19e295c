import type { CanonicalError, ChannelTarget } from './contract.ts';

/**
 * The job half of the provider contract: async media jobs (video, image tasks) that an upstream
 * runs for minutes. The job plane (jobs/) owns slots, the queue, leases, polling cadence, billing
 * and durability; an adapter only says how ONE call looks on the wire and what a native answer
 * means. Every function here is PURE over plain data (no undici, Redis or database): the plane
 * sends the `UpstreamCall` (through the adapter's `sign` hook when it has one) and hands the
 * status and parsed body back.
 *
 * A provider serves jobs by setting `ProviderAdapter.jobs` (providers/contract.ts); one module
 * per provider and kind, e.g. `providers/openai/videos.ts`, `providers/gemini/veo.ts`,
 * `providers/volcengine/visual.ts`.
 */

export type JobKind = 'video' | 'image';

/** kuberelay's job states: OpenAI Videos API statuses plus `cancelled`. */
export type JobStatus = 'queued' | 'in_progress' | 'completed' | 'failed' | 'cancelled';

/** What the client asked for, in the OpenAI Videos API's terms (the canonical job request). */
export interface JobRequest {
  kind: JobKind;
  /** The model as the upstream names it (the channel's `upstreamName`). */
  upstreamModel: string;
  prompt: string;
  /** Requested clip length in seconds (OpenAI sends it as a string: "4", "8", "12"). */
  seconds?: number;
  /** `WIDTHxHEIGHT`, e.g. `1280x720`. */
  size?: string;
  /** An input image (first frame / reference), when the client sent one. */
  inputReference?: { contentType: string; data: Uint8Array; filename?: string };
  /** For remix: the upstream id of the source job on the same channel. */
  remixOf?: string;
  /** Fields this contract has no name for, passed through where the native API has them. */
  extra?: Readonly<Record<string, unknown>>;
}

/**
 * One field of a multipart body (`UpstreamCall.multipart`): text, or a file. The plane encodes
 * `Record<string, MultipartPart>` as multipart/form-data.
 */
export type MultipartPart = string | { contentType: string; data: Uint8Array; filename?: string };

/** One HTTP call to the upstream, as the adapter wants it sent. */
export interface UpstreamCall {
  method: 'GET' | 'POST' | 'DELETE';
  /** Path and query under the channel's origin (basePath included). */
  path: string;
  /** Headers besides the channel's auth (lower-case names). */
  headers?: Record<string, string>;
  /** JSON-serialisable body, or multipart parts; absent for GET/DELETE. */
  body?: unknown;
  /** Send `body` as multipart/form-data instead of JSON (OpenAI's input_reference upload). */
  multipart?: boolean;
}

/** What an upstream answer says about a job (submit or poll). */
export interface JobSnapshot {
  status: JobStatus;
  /** 0..100 when the upstream reports it. */
  progress?: number;
  /** Seconds of media produced (billing: `perSecond` x seconds), once known. */
  seconds?: number;
  /** Why it failed, in OpenAI's error shape. */
  error?: CanonicalError;
  /**
   * Where the finished bytes are: an absolute URL the upstream returned (signed result URLs),
   * or absent when the content is fetched with `content()` from the upstream API.
   */
  resultURL?: string;
  /**
   * The resultURL is on the upstream's own API and needs the channel's credential (Veo's
   * `files/{id}:download`): send the adapter's `auth` headers with it, only while the URL's origin
   * is the channel's origin (never to a redirect's other host). Absent: fetch it bare.
   */
  resultAuth?: boolean;
  /** Native fields worth keeping for the client's video object (e.g. `size`, `expires_at`). */
  meta?: Readonly<Record<string, unknown>>;
}

export interface SubmitResult {
  /** The upstream's own id of the job (stored; kuberelay's id is its own). */
  upstreamId: string;
  snapshot: JobSnapshot;
}

export interface JobOperations {
  /** Kinds this provider can run. */
  supports(kind: JobKind): boolean;
  /** The submit call. Throws `UntranslatableError` (contract.ts) for a request it cannot express. */
  submit(req: JobRequest, channel: ChannelTarget): UpstreamCall;
  /** Reads a 2xx submit answer. */
  parseSubmit(body: unknown, req: JobRequest): SubmitResult;
  /** The status call for one job. */
  poll(upstreamId: string, channel: ChannelTarget, req: JobRequest): UpstreamCall;
  /**
   * Reads a poll answer. `status` is the HTTP status: a 404 means the upstream forgot the job
   * (the plane marks it failed with a clear error); other non-2xx are retried by the plane.
   */
  parsePoll(status: number, body: unknown): JobSnapshot | 'gone' | 'retry';
  /** The call that streams the finished bytes (Range is added by the plane), when no resultURL. */
  content?(upstreamId: string, variant: string | undefined, channel: ChannelTarget): UpstreamCall;
  /** Cancels or deletes the upstream job; absent when the upstream has no such call. */
  cancel?(upstreamId: string, channel: ChannelTarget): UpstreamCall;
}
