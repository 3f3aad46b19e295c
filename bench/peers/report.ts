// The markdown report of bench/peers.ts: the summary table of the shape, then the detail.

import { ci, fmt0, fmt1, fmt2, MB, ms, sms, table } from '../lib/render.ts';
import type { GatewayResult, PeersResult } from './result.ts';

export function renderPeers(r: PeersResult): string {
  const p = r.params;
  const m = r.meta;
  const out: string[] = [];
  out.push(`## kuberelay and its peers${p.quick ? ' (quick: figures are not meaningful)' : ''}`);
  out.push('');
  out.push(
    `${r.startedAt}, commit ${m.commit ?? '?'}, Node ${m.node}, ${m.cpus} CPUs (${m.cpuModel}); load average ` +
      `${m.loadavgStart.map(fmt2).join(' ')} at start, ${m.loadavgEnd.map(fmt2).join(' ')} at end. ` +
      `Run took ${fmt1(r.durationS)} s. Chat: ${p.rounds} interleaved rounds at concurrency 1; streams: ` +
      `${p.streamRounds} rounds, ${p.streamTokens} chunks ${p.chunkDelayMs} ms apart` +
      `${p.streamEnd === 'split' ? ', the chunked end 1 ms after [DONE]' : ''}; load: ${p.concurrency} ` +
      `workers per target, ${p.durationS} s each in ${p.loadSegments} rotated segments. ${memoryLimitLine(r)}`,
  );
  out.push('');
  const measured = r.gateways.filter((g) => g.status === 'measured' && g.name !== 'direct');
  out.push(
    table(
      [
        '',
        'added p50',
        'added p99',
        'stream first token added p50',
        `req/s at c=${p.concurrency}`,
        'CPU ms/request',
        'RSS idle / peak',
      ],
      measured.map((g) => [
        g.label,
        `${sms(g.chat?.added.p50 ?? Number.NaN)} ms`,
        `${sms(g.chat?.added.p99 ?? Number.NaN)} ms`,
        `${sms(g.stream?.firstToken.added.p50 ?? Number.NaN)} ms`,
        fmt0(g.load?.rps ?? Number.NaN),
        fmt2(g.load?.cpuMsPerRequest ?? Number.NaN),
        `${fmt0((g.rss?.idleBytes ?? Number.NaN) / MB)} / ${fmt0((g.rss?.peakBytes ?? Number.NaN) / MB)} MB`,
      ]),
    ),
  );
  out.push('');
  const missing = r.gateways.filter((g) => g.status !== 'measured');
  for (const g of missing) out.push(`- ${g.label}: **${g.status}**: ${g.reason ?? ''}`);
  const failing = r.gateways.filter((g) => g.status === 'measured' && g.errors > 0);
  for (const g of failing)
    out.push(
      `- ${g.label}: **${g.errors} failed requests** (not in its figures): ${g.errorSamples[0] ?? ''}`,
    );
  if (missing.length + failing.length > 0) out.push('');
  out.push('### Detail (ms; added = percentile(target) − percentile(direct), 95% bootstrap interval)');
  out.push('');
  const live = r.gateways.filter((g) => g.status === 'measured');
  out.push(
    table(
      [
        'target',
        'chat p50 / p99',
        'added p50 [CI]',
        'added p99 [CI]',
        'stream first token p50',
        'stream complete p50 (added)',
        `c=${p.concurrency} p50 / p99`,
        'other CPU during load (cores)',
        'errors',
      ],
      live.map((g) => detailRow(g)),
    ),
  );
  out.push('');
  out.push(`Errors: ${r.totalErrors} (baseline and kuberelay: ${r.ownErrors}).`);
  const samples = live.flatMap((g) => g.errorSamples.map((e) => `${g.name}: ${e}`));
  if (samples.length > 0) out.push(`First errors: ${samples.slice(0, 5).join(' | ')}`);
  return `${out.join('\n')}\n`;
}

function detailRow(g: GatewayResult): string[] {
  const na = Number.NaN;
  return [
    g.label,
    `${ms(g.chat?.latency.p50 ?? na)} / ${ms(g.chat?.latency.p99 ?? na)}`,
    g.chat ? `${sms(g.chat.added.p50)} ${ci(g.chat.added.p50ci)}` : '',
    g.chat ? `${sms(g.chat.added.p99)} ${ci(g.chat.added.p99ci)}` : '',
    g.stream ? `${ms(g.stream.firstToken.latency.p50)} (${sms(g.stream.firstToken.added.p50)})` : '',
    g.stream ? `${ms(g.stream.complete.latency.p50)} (${sms(g.stream.complete.added.p50)})` : '',
    g.load ? `${ms(g.load.latency.p50)} / ${ms(g.load.latency.p99)}` : '',
    g.load ? fmt2(g.load.otherCores) : '',
    String(g.errors),
  ];
}

function memoryLimitLine(r: PeersResult): string {
  const l = r.memoryLimit;
  if (l.applied)
    return `Each gateway ran in a memory cgroup of its own limited to ${l.quantity}, as in a pod (V8 sizes its heap from it).`;
  if (l.quantity === 'none')
    return "No memory limit (--memory-limit none): V8 sized its heap from the host's memory.";
  return `**No memory limit** (${l.quantity} asked for: ${l.reason}): V8 sized its heap from the host's memory.`;
}
