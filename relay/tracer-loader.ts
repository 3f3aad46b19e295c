import type { RequestTracer } from './tracing.ts';

// Whether this relay traces, and its tracer: OpenTelemetry's packages (relay/otel.ts) are loaded
// only when an OTLP endpoint is configured, so a relay without tracing never pays for them.

export function tracingEnabled(env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.OTEL_SDK_DISABLED === 'true' || env.OTEL_TRACES_EXPORTER === 'none') return false;
  return Boolean(env.OTEL_EXPORTER_OTLP_ENDPOINT || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT);
}

export async function loadTracer(env: NodeJS.ProcessEnv = process.env): Promise<RequestTracer | undefined> {
  if (!tracingEnabled(env)) return undefined;
  const { createOtelTracer } = await import('./otel.ts');
  return createOtelTracer({ recordContent: env.KUBERELAY_TRACE_CONTENT === 'true' });
}
