import { execFile } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { freePort, type Proc, spawnProc } from './process.ts';

/**
 * A real OpenTelemetry Collector (built from Go modules by test/otel/build-collector.sh, cached):
 * OTLP/HTTP in, the debug exporter's detailed text out, parsed back into spans.
 */

const BUILD = fileURLToPath(new URL('../otel/build-collector.sh', import.meta.url));

export interface CollectedSpan {
  traceId: string;
  parentId: string;
  id: string;
  name: string;
  kind: string;
  status: string;
  statusMessage: string;
  attributes: Record<string, string | number | boolean>;
  events: string[];
}

export interface Collector {
  /** For OTEL_EXPORTER_OTLP_ENDPOINT. */
  endpoint: string;
  proc: Proc;
  spans(): CollectedSpan[];
  close(): Promise<void>;
}

export async function startCollector(): Promise<Collector> {
  const { stdout } = await promisify(execFile)(BUILD, [], { timeout: 1_800_000, maxBuffer: 1 << 24 });
  const bin = stdout.trim().split('\n').at(-1)!;
  const port = await freePort();
  const dir = await mkdtemp(join(tmpdir(), 'kuberelay-otelcol-'));
  const config = join(dir, 'config.yaml');
  await writeFile(
    config,
    `receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:${port}
exporters:
  debug:
    verbosity: detailed
service:
  telemetry:
    metrics:
      level: none
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [debug]
`,
  );
  const proc = spawnProc(bin, ['--config', config]);
  await proc.waitFor(/Everything is ready|Starting HTTP server/, 30_000);
  return {
    endpoint: `http://127.0.0.1:${port}`,
    proc,
    spans: () => parseDebugSpans(proc.output()),
    async close() {
      proc.child.kill('SIGTERM');
      await proc.exited();
    },
  };
}

/** Spans out of the debug exporter's `verbosity: detailed` text. */
export function parseDebugSpans(text: string): CollectedSpan[] {
  const chunks = text.split(/^Span #\d+\s*$/m).slice(1);
  return chunks.map((chunk) => {
    const field = (name: string) =>
      new RegExp(`^\\s*${name}\\s*: ?(.*)$`, 'm').exec(chunk)?.[1]?.trim() ?? '';
    const attributes: CollectedSpan['attributes'] = {};
    const attrBlock = /^Attributes:\n((?:\s+-> .*\n?)*)/m.exec(chunk)?.[1] ?? '';
    for (const [, key, type, value] of attrBlock.matchAll(/-> ([^:]+): (\w+)\((.*)\)$/gm)) {
      attributes[key!] =
        type === 'Int' || type === 'Double' ? Number(value) : type === 'Bool' ? value === 'true' : value!;
    }
    const events = [...chunk.matchAll(/^SpanEvent #\d+\s*\n\s+-> Name: (.*)$/gm)].map((m) => m[1]!.trim());
    return {
      traceId: field('Trace ID'),
      parentId: field('Parent ID'),
      id: field('ID'),
      name: field('Name'),
      kind: field('Kind'),
      status: field('Status code'),
      statusMessage: field('Status message'),
      attributes,
      events,
    };
  });
}
