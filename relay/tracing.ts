import type { FastifyRequest } from 'fastify';
import type { RequestRecord } from '../core/accounting.ts';

/**
 * Tracing as the request path sees it: a RequestTrace per request, an AttemptTrace per upstream
 * attempt. Off unless OTEL_EXPORTER_OTLP_ENDPOINT (or ..._TRACES_ENDPOINT) is set; then the
 * OpenTelemetry SDK is loaded (otel.ts) — when off, nothing of it is loaded and the request path
 * pays one `undefined` check per hook.
 */

export interface AttemptInfo {
  channel: string;
  provider: string;
  attempt: number;
  upstreamModel: string;
}

export interface AttemptFailure {
  reason: string;
  status?: number | undefined;
  message?: string | undefined;
}

export interface AttemptTrace {
  /** Sets `traceparent` (and `tracestate`) of this attempt's span on the upstream request. */
  inject(headers: Record<string, string | string[]>): void;
  fail(f: AttemptFailure): void;
  /** This attempt's failure is being counted: the span ends once it is known whether it started a cooldown. */
  cooldown(entered: Promise<boolean>): void;
  /** Ends the span; `status` is the upstream's HTTP status when it answered. */
  end(status?: number): void;
}

export interface RequestTrace {
  readonly traceId: string;
  attempt(a: AttemptInfo): AttemptTrace;
  firstToken(): void;
  /** A candidate channel left out because it is cooling down. */
  skippedForCooldown(channel: string): void;
  /** A RateLimitPolicy's decision on this request (or one of its attempts). */
  rateLimit(policy: string, decision: string): void;
  /** Sees the first chunks of the answer (JSON or SSE), for the model the upstream names. */
  peek(chunk: Buffer): void;
  /** Sees what the client receives (recorded only with KUBERELAY_TRACE_CONTENT=true). */
  output(chunk: string | Buffer): void;
  /** Ends the request span with what the request log records. */
  finish(r: RequestRecord): void;
}

export interface RequestTracer {
  start(req: FastifyRequest, route: string): RequestTrace;
  /** Exports what is buffered, then stops. */
  shutdown(): Promise<void>;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** Set on the relay routes when tracing is on. */
    trace: RequestTrace | undefined;
  }
}

const TRACEPARENT = /^[\da-f]{2}-([\da-f]{32})-[\da-f]{16}-[\da-f]{2}/;

/** The trace id of a W3C `traceparent`, if it is a valid one. */
export function traceIdOf(header: string | string[] | undefined): string | undefined {
  if (typeof header !== 'string') return undefined;
  const id = TRACEPARENT.exec(header)?.[1];
  return id && !/^0+$/.test(id) ? id : undefined;
}
