// The markdown report of bench/run.ts, and its targets (DESIGN.md) marked met or missed.

import { ci, fmt0, fmt1, fmt2, MB, ms, sms, table } from '../lib/render.ts';
import type { AddedLatency, LatencyStats } from '../lib/stats.ts';
import type { CpuShare } from './measure.ts';
import type { BenchResult, HeapFigures } from './result.ts';

export function targets(r: BenchResult): BenchResult['targets'] {
  const out: BenchResult['targets'] = [];
  if (r.chat) {
    out.push({
      name: 'added p50, concurrency 1',
      target: '<= 1 ms',
      measured: `${ms(r.chat.added.p50)} ms`,
      met: r.chat.added.p50 <= 1,
    });
    out.push({
      name: 'added p99, concurrency 1',
      target: '<= 3 ms',
      measured: `${ms(r.chat.added.p99)} ms`,
      met: r.chat.added.p99 <= 3,
    });
  }
  if (r.load.length > 0) {
    const best = r.load.reduce((a, b) => (b.relay.rps > a.relay.rps ? b : a));
    out.push({
      name: 'relay throughput (this machine, loader and mock sharing the 2 cores)',
      target: '>= 2,500 req/s',
      measured: `${fmt0(best.relay.rps)} req/s at concurrency ${best.concurrency}`,
      met: best.relay.rps >= 2500,
    });
    const proj = Math.min(...r.load.map((l) => l.relay.cpuBoundRpsPerCore));
    out.push({
      name: 'relay req/s per core of relay CPU (projection from CPU ms/request, lowest level)',
      target: '>= 2,500 req/s',
      measured: `${fmt0(proj)} req/s`,
      met: null,
    });
  }
  const peak = Math.max(r.memory.relay.hwmBytes || 0, r.memory.relay.peakSampledBytes);
  out.push({
    name: 'relay peak RSS',
    target: '<= 150 MB',
    measured: `${fmt1(peak / MB)} MB`,
    met: peak / MB <= 150,
  });
  return out;
}

export function renderMarkdown(r: BenchResult): string {
  const out: string[] = [];
  const m = r.meta;
  out.push(
    `## kuberelay relay benchmark — scenario \`${r.scenario.name}\`${r.params.quick ? ' (quick)' : ''}`,
  );
  out.push('');
  out.push(
    `${r.startedAt}, commit ${m.commit ?? '?'}, Node ${m.node}, ${m.cpus} CPUs (${m.cpuModel}), ${m.kernel}; ` +
      `load average ${m.loadavgStart.map(fmt2).join(' ')} at start, ${m.loadavgEnd.map(fmt2).join(' ')} at end` +
      `${m.pinned ? '; relay pinned to CPU 0, mock to CPU 1' : ''}. Run took ${fmt1(r.durationS)} s.`,
  );
  out.push('');
  const how = r.params.compiled
    ? 'compiled with tsc (as deployed)'
    : 'run from the .ts sources (type stripping)';
  const relayArgs =
    r.params.relayNodeArgs.length > 0 ? `; relay node flags: ${r.params.relayNodeArgs.join(' ')}` : '';
  const env = Object.entries(r.scenario.env)
    .map(([k, v]) => `${k}=${v}`)
    .join(' ');
  out.push(
    `Scenario: ${r.scenario.description}. Relay env: ${env || '(none)'}; mock and relay ${how}${relayArgs}.`,
  );
  out.push('');
  out.push(
    'Latencies in ms, measured by the client (this process). Added = percentile(relay) − percentile(direct).',
  );
  out.push('');
  const serialRows: string[][] = [];
  const serialRow = (
    name: string,
    s: { direct: LatencyStats; relay: LatencyStats; added: AddedLatency },
    cpu?: CpuShare,
  ) => {
    serialRows.push([
      name,
      `${ms(s.direct.p50)} / ${ms(s.direct.p90)} / ${ms(s.direct.p99)} / ${ms(s.direct.max)}`,
      `${ms(s.relay.p50)} / ${ms(s.relay.p90)} / ${ms(s.relay.p99)} / ${ms(s.relay.max)}`,
      `**${sms(s.added.p50)}** ${ci(s.added.p50ci)}`,
      `**${sms(s.added.p99)}** ${ci(s.added.p99ci)}`,
      sms(s.added.pairedMedian),
      cpu ? fmt2(cpu.other) : '',
    ]);
  };
  if (r.chat) serialRow(`chat, non-stream (n=${r.chat.direct.count}/path)`, r.chat, r.chat.cpu);
  if (r.embeddings)
    serialRow(
      `embeddings ${r.params.embeddingDimensions}-d (n=${r.embeddings.direct.count}/path)`,
      r.embeddings,
      r.embeddings.cpu,
    );
  if (r.stream) {
    serialRow(`stream: first byte (n=${r.stream.direct.count}/path)`, r.stream.ttfb, r.stream.cpu);
    serialRow(`stream: first token`, r.stream.ttft);
    serialRow(`stream: complete (${r.stream.tokens} chunks, ${r.stream.chunkDelayMs} ms apart)`, r.stream);
  }
  if (serialRows.length > 0) {
    out.push('### Concurrency 1 (direct and relay interleaved request by request)');
    out.push('');
    out.push(
      table(
        [
          'request',
          'direct p50 / p90 / p99 / max',
          'relay p50 / p90 / p99 / max',
          'added p50 [95% CI]',
          'added p99 [95% CI]',
          'paired median',
          'other CPU (cores)',
        ],
        serialRows,
      ),
    );
    out.push('');
    const reported: string[] = [];
    if (r.chat)
      reported.push(`chat ${ms(r.chat.relayReportedOverhead.p50)} / ${ms(r.chat.relayReportedOverhead.p99)}`);
    if (r.embeddings)
      reported.push(
        `embeddings ${ms(r.embeddings.relayReportedOverhead.p50)} / ${ms(r.embeddings.relayReportedOverhead.p99)}`,
      );
    if (r.stream)
      reported.push(
        `stream ${ms(r.stream.relayReportedOverhead.p50)} / ${ms(r.stream.relayReportedOverhead.p99)}`,
      );
    if (reported.length > 0) {
      out.push(`Relay's own estimate (x-kuberelay-overhead-ms, p50 / p99): ${reported.join('; ')}.`);
      out.push('');
    }
  }
  if (r.load.length > 0) {
    out.push(`### Under load (${r.params.durationS} s per path per level, ABBA segments)`);
    out.push('');
    out.push(
      table(
        [
          'concurrency',
          'direct req/s',
          'relay req/s',
          'direct p50 / p99',
          'relay p50 / p99',
          'added p50 / p99',
          'errors d / r',
          'CPU cores relay / mock / loader / other (relay phase)',
          'relay CPU ms/req',
          'relay peak RSS',
        ],
        r.load.map((l) => [
          String(l.concurrency),
          fmt0(l.direct.rps),
          `**${fmt0(l.relay.rps)}**`,
          `${ms(l.direct.latency.p50)} / ${ms(l.direct.latency.p99)}`,
          `${ms(l.relay.latency.p50)} / ${ms(l.relay.latency.p99)}`,
          `${sms(l.added.p50)} / ${sms(l.added.p99)}`,
          `${l.direct.errors} / ${l.relay.errors}`,
          `${fmt2(l.relay.cpu.relay)} / ${fmt2(l.relay.cpu.mock)} / ${fmt2(l.relay.cpu.loader)} / ${fmt2(l.relay.cpu.other)}`,
          fmt2(l.relay.relayCpuMsPerRequest),
          `${fmt1(l.relayPeakRssBytes / MB)} MB`,
        ]),
      ),
    );
    out.push('');
    out.push(
      'Direct phase CPU (mock / loader / other): ' +
        r.load
          .map(
            (l) =>
              `c=${l.concurrency}: ${fmt2(l.direct.cpu.mock)} / ${fmt2(l.direct.cpu.loader)} / ${fmt2(l.direct.cpu.other)}`,
          )
          .join('; ') +
        '.',
    );
    out.push('');
  }
  const mem = r.memory;
  out.push('### Memory (RSS)');
  out.push('');
  out.push(
    table(
      [
        'process',
        'idle',
        'after concurrency-1 runs',
        'peak (sampled 10/s)',
        'peak (VmHWM)',
        'end',
        'of which file-backed at end',
      ],
      [
        [
          'relay',
          `${fmt1(mem.relay.idleBytes / MB)} MB`,
          `${fmt1(mem.relay.afterSerialBytes / MB)} MB`,
          `${fmt1(mem.relay.peakSampledBytes / MB)} MB`,
          `${fmt1(mem.relay.hwmBytes / MB)} MB`,
          `${fmt1(mem.relay.endBytes / MB)} MB`,
          `${fmt1(mem.relay.endFileBackedBytes / MB)} MB`,
        ],
        [
          'mock upstream',
          `${fmt1(mem.mock.idleBytes / MB)} MB`,
          '',
          `${fmt1(mem.mock.peakSampledBytes / MB)} MB`,
          `${fmt1(mem.mock.hwmBytes / MB)} MB`,
          '',
          `${fmt1(mem.mock.endFileBackedBytes / MB)} MB`,
        ],
        ['loader (this process)', '', '', `${fmt1(mem.loaderPeakBytes / MB)} MB`, '', '', ''],
      ],
    ),
  );
  out.push('');
  const heap = (h: HeapFigures | undefined) =>
    h
      ? `V8 heap used ${fmt1(h.heapUsedBytes / MB)} MB of ${fmt1(h.heapTotalBytes / MB)} MB, external ${fmt1(h.externalBytes / MB)} MB`
      : 'n/a';
  out.push(`Relay heap (from its /metrics): idle ${heap(mem.relayHeapIdle)}; end ${heap(mem.relayHeapEnd)}.`);
  out.push('');
  out.push('### Targets (DESIGN.md)');
  out.push('');
  out.push(
    table(
      ['target', 'wanted', 'measured', 'met'],
      r.targets.map((t) => [t.name, t.target, t.measured, t.met === null ? '—' : t.met ? 'yes' : '**no**']),
    ),
  );
  out.push('');
  out.push(`Errors: ${r.totalErrors}.`);
  const samples = [
    ...(r.chat?.errorSamples ?? []),
    ...(r.embeddings?.errorSamples ?? []),
    ...(r.stream?.errorSamples ?? []),
    ...r.load.flatMap((l) => l.errorSamples),
  ];
  if (samples.length > 0) out.push(`First errors: ${samples.slice(0, 5).join(' | ')}`);
  return `${out.join('\n')}\n`;
}
