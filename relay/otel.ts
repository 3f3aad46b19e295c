import {
  type Attributes,
  type Context,
  defaultTextMapGetter,
  defaultTextMapSetter,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  trace,
} from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import {
  defaultResource,
  detectResources,
  envDetector,
  resourceFromAttributes,
} from '@opentelemetry/resources';
import { BasicTracerProvider, BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { ATTR_SERVICE_NAME } from '@opentelemetry/semantic-conventions';
import type { FastifyRequest } from 'fastify';
import type { RequestRecord } from '../core/accounting.ts';
import { CompletionRecorder } from './trace-content.ts';
import type { AttemptInfo, RequestTrace, RequestTracer } from './tracing.ts';

/**
 * The OpenTelemetry implementation, loaded only when tracing is on. The SDK reads the standard
 * variables itself: OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT/HEADERS/TIMEOUT/COMPRESSION, OTEL_BSP_*,
 * OTEL_TRACES_SAMPLER(_ARG), OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES. Attributes follow the
 * GenAI semantic conventions (gen_ai.*) plus kuberelay.*; prompts and completions are recorded only with
 * KUBERELAY_TRACE_CONTENT=true.
 */

const propagator = new W3CTraceContextPropagator();
// How long an ended attempt span waits for the state store's cooldown answer.
const COOLDOWN_WAIT_MS = 2_000;
const RESPONSE_MODEL = /"model"\s*:\s*"([^"\\]{1,200})"/;

export function createOtelTracer(o: { recordContent: boolean }): RequestTracer {
  const resource = defaultResource()
    .merge(resourceFromAttributes({ [ATTR_SERVICE_NAME]: 'kuberelay-relay' }))
    .merge(detectResources({ detectors: [envDetector] }));
  const provider = new BasicTracerProvider({
    resource,
    spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter())],
  });
  const tracer = provider.getTracer('kuberelay');

  return {
    start(req: FastifyRequest, route: string): RequestTrace {
      const parent = propagator.extract(ROOT_CONTEXT, req.headers, defaultTextMapGetter);
      const body = req.body as { model?: unknown; stream?: unknown; messages?: unknown } | undefined;
      const model = typeof body?.model === 'string' ? body.model : undefined;
      const operation = operationOf(route);
      const attrs: Attributes = {
        'http.request.method': 'POST',
        'http.route': route,
        'gen_ai.operation.name': operation,
        'kuberelay.request_id': String(req.id),
      };
      if (model) attrs['gen_ai.request.model'] = model;
      if (req.client?.keyId) attrs['kuberelay.key_id'] = req.client.keyId;
      const span = tracer.startSpan(`POST ${route}`, { kind: SpanKind.SERVER, attributes: attrs }, parent);
      const ctx = trace.setSpan(parent, span);
      const started = performance.now();
      let firstTokenAt: number | undefined;
      let current: Span | undefined;
      let peeked = 0;
      const skipped: string[] = [];
      const policies: string[] = [];
      const decisions: string[] = [];
      const completion = o.recordContent ? new CompletionRecorder(body?.stream === true) : undefined;
      return {
        traceId: span.spanContext().traceId,
        attempt: (a) => {
          const at = attemptSpan(
            tracer,
            ctx,
            operation,
            model,
            a,
            o.recordContent ? body?.messages : undefined,
          );
          current = at.span;
          peeked = 0;
          return at;
        },
        peek(chunk: Buffer) {
          // The first chunks only: OpenAI-style answers name the model near the start.
          if (peeked++ >= 2) return;
          const m = RESPONSE_MODEL.exec(chunk.toString('latin1', 0, Math.min(chunk.length, 8192)))?.[1];
          if (m === undefined) return;
          peeked = 2;
          span.setAttribute('gen_ai.response.model', m);
          current?.setAttribute('gen_ai.response.model', m);
        },
        skippedForCooldown(channel: string) {
          if (!skipped.includes(channel)) skipped.push(channel);
        },
        rateLimit(policy: string, decision: string) {
          policies.push(policy);
          decisions.push(decision);
        },
        firstToken() {
          if (firstTokenAt !== undefined) return;
          firstTokenAt = performance.now();
          span.addEvent('gen_ai.first_token');
        },
        output(chunk: string | Buffer) {
          completion?.push(chunk);
        },
        finish(r: RequestRecord) {
          const messages = completion?.messages();
          if (messages) current?.setAttribute('gen_ai.output.messages', JSON.stringify(messages));
          span.setAttributes(usageAttributes(r));
          if (skipped.length > 0) span.setAttribute('kuberelay.channels.skipped_cooldown', skipped);
          if (policies.length > 0) {
            span.setAttribute('kuberelay.ratelimit.policy', policies);
            span.setAttribute('kuberelay.ratelimit.decision', decisions);
          }
          if (firstTokenAt !== undefined)
            span.setAttribute('gen_ai.server.time_to_first_token', (firstTokenAt - started) / 1000);
          span.setAttribute('http.response.status_code', r.status);
          if (r.status >= 500 || r.errorCode !== undefined) {
            span.setStatus({ code: SpanStatusCode.ERROR, message: r.errorCode ?? `status ${r.status}` });
            if (r.errorCode) span.setAttribute('error.type', r.errorCode);
          }
          span.end();
        },
      };
    },
    async shutdown() {
      await provider.shutdown();
    },
  };
}

function attemptSpan(
  tracer: ReturnType<BasicTracerProvider['getTracer']>,
  parent: Context,
  operation: string,
  model: string | undefined,
  a: AttemptInfo,
  messages: unknown,
) {
  const attrs: Attributes = {
    'gen_ai.operation.name': operation,
    'gen_ai.provider.name': providerName(a.provider),
    'gen_ai.request.model': a.upstreamModel,
    'kuberelay.channel': a.channel,
    'kuberelay.attempt': a.attempt,
    'kuberelay.failover': a.attempt > 1,
  };
  if (model && model !== a.upstreamModel) attrs['kuberelay.model'] = model;
  if (messages !== undefined) attrs['gen_ai.input.messages'] = JSON.stringify(messages);
  const span: Span = tracer.startSpan(
    `${operation} ${a.upstreamModel}`,
    { kind: SpanKind.CLIENT, attributes: attrs },
    parent,
  );
  let failed = false;
  let counted: Promise<void> | undefined;
  return {
    span,
    inject(headers: Record<string, string | string[]>) {
      propagator.inject(trace.setSpan(ROOT_CONTEXT, span), headers, defaultTextMapSetter);
    },
    fail(f: { reason: string; status?: number | undefined; message?: string | undefined }) {
      failed = true;
      span.setAttribute('error.type', f.reason);
      if (f.status !== undefined) span.setAttribute('http.response.status_code', f.status);
      span.setStatus({ code: SpanStatusCode.ERROR, message: f.message ?? f.reason });
    },
    cooldown(entered: Promise<boolean>) {
      counted = entered.then(
        (yes) => void span.setAttribute('kuberelay.channel.cooldown', yes),
        () => {},
      );
    },
    end(status?: number) {
      if (status !== undefined && !failed) span.setAttribute('http.response.status_code', status);
      if (!counted) return span.end();
      // The span ends now; it is handed to the exporter once the state store said whether this
      // failure started a cooldown (bounded: a store that does not answer in time leaves it out).
      const at = performance.timeOrigin + performance.now();
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<void>((r) => {
        timer = setTimeout(r, COOLDOWN_WAIT_MS);
      });
      void Promise.race([counted, late]).then(() => {
        clearTimeout(timer);
        span.end(at);
      });
    },
  };
}

/** gen_ai.provider.name values of the semantic conventions for kuberelay's providers. */
function providerName(provider: string): string {
  switch (provider) {
    case 'azure-openai':
      return 'azure.ai.openai';
    case 'gemini':
      return 'gcp.gemini';
    default:
      return provider;
  }
}

function usageAttributes(r: RequestRecord): Attributes {
  const a: Attributes = {
    'gen_ai.usage.input_tokens': r.promptTokens,
    'gen_ai.usage.output_tokens': r.completionTokens,
    'kuberelay.attempts': r.attempts,
    'kuberelay.cost_usd': r.cost,
  };
  if (r.channel) a['kuberelay.channel'] = r.channel;
  if (r.cachedTokens > 0) a['gen_ai.usage.cache_read.input_tokens'] = r.cachedTokens;
  if (r.usageSource) a['kuberelay.usage_source'] = r.usageSource;
  return a;
}

/** GenAI semantic conventions: the operation each relay route performs. */
export function operationOf(route: string): string {
  if (route.endsWith('/chat/completions') || route.endsWith('/v1/messages')) return 'chat';
  if (route.endsWith('/completions')) return 'text_completion';
  if (route.endsWith('/embeddings')) return 'embeddings';
  if (route.includes('/images/')) return 'image_generation';
  if (route.endsWith('/responses')) return 'chat'; // the Responses API creates a model response
  return route;
}
