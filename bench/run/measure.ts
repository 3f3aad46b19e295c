// What bench/run.ts measures on its two paths (direct to the mock, and through the relay): the
// concurrency-1 runs and the load levels, with the CPU each process used meanwhile (from /proc).

import type { Child } from '../lib/children.ts';
import { drive, interleave, newAcc } from '../lib/load.ts';
import { machineBusyMs, readProc, selfCpuMs } from '../lib/proc.ts';
import type { Errors, RequestSpec, Sample, Target } from '../lib/requests.ts';
import { type AddedLatency, added, type LatencyStats, stats } from '../lib/stats.ts';
import type { Params } from './args.ts';

export interface SerialResult {
  requests: number;
  errors: number;
  errorSamples: string[];
  direct: LatencyStats;
  relay: LatencyStats;
  added: AddedLatency;
  /** The relay's own estimate (x-kuberelay-overhead-ms). */
  relayReportedOverhead: LatencyStats;
  /** CPU used during the measured requests, in cores; `other` is everything else on the machine (noise). */
  cpu: CpuShare;
}

export interface StreamResult extends SerialResult {
  tokens: number;
  chunkDelayMs: number;
  ttfb: { direct: LatencyStats; relay: LatencyStats; added: AddedLatency };
  ttft: { direct: LatencyStats; relay: LatencyStats; added: AddedLatency };
}

/** Concurrency 1, the two paths interleaved request by request in ABBA order. */
export async function serial(
  procs: Procs,
  direct: Target,
  relay: Target,
  spec: RequestSpec,
  warmup: number,
  n: number,
): Promise<SerialRun> {
  await interleave([direct, relay], spec, warmup, 0);
  const m0 = meter(procs);
  const { samples, errors } = await interleave([direct, relay], spec, 0, n);
  const cpu = cpuBetween(m0, meter(procs));
  const e = errors.get(direct)!.merge(errors.get(relay)!);
  return { d: samples.get(direct)!, r: samples.get(relay)!, errors: e, cpu };
}

export interface SerialRun {
  d: Sample[];
  r: Sample[];
  errors: Errors;
  cpu: CpuShare;
}

export function serialResult(
  n: number,
  run: SerialRun,
  pick: (s: Sample) => number = (s) => s.totalMs,
): SerialResult {
  const dl = run.d.map(pick);
  const rl = run.r.map(pick);
  return {
    requests: n,
    errors: run.errors.count,
    errorSamples: [...run.errors.samples],
    direct: stats(dl),
    relay: stats(rl),
    added: added(dl, rl, true),
    relayReportedOverhead: stats(
      run.r.map((s) => s.overheadMs ?? Number.NaN).filter((x) => !Number.isNaN(x)),
    ),
    cpu: run.cpu,
  };
}

// ---- scenario: load -------------------------------------------------------------------------------

export interface CpuShare {
  /** CPU used during the measured segments, in cores (1.0 = one core busy all the time). */
  relay: number;
  mock: number;
  loader: number;
  /** Everything else on the machine (other users, the kernel outside these processes). */
  other: number;
}

export interface LoadSide {
  requests: number;
  errors: number;
  seconds: number;
  rps: number;
  latency: LatencyStats;
  cpu: CpuShare;
}

export interface LoadResult {
  concurrency: number;
  direct: LoadSide;
  relay: LoadSide & {
    reportedOverhead: LatencyStats;
    /**
     * Relay CPU (all its threads) per relayed request, and the req/s at which one relay process would
     * use one full core at that cost (a Node process serves requests on one thread).
     */
    relayCpuMsPerRequest: number;
    cpuBoundRpsPerCore: number;
  };
  added: { p50: number; p99: number };
  errorSamples: string[];
  relayPeakRssBytes: number;
  mockPeakRssBytes: number;
}

export interface Procs {
  relay: Child;
  mock: Child;
}

export interface Meter {
  relayCpu: number;
  mockCpu: number;
  selfCpu: number;
  busy: number;
  at: number;
}

export function meter(p: Procs): Meter {
  return {
    relayCpu: readProc(p.relay.pid)?.cpuMs ?? Number.NaN,
    mockCpu: readProc(p.mock.pid)?.cpuMs ?? Number.NaN,
    selfCpu: selfCpuMs(),
    busy: machineBusyMs(),
    at: performance.now(),
  };
}

export async function load(
  procs: Procs,
  direct: Target,
  relay: Target,
  spec: RequestSpec,
  concurrency: number,
  params: Params,
  onSample: () => void,
): Promise<LoadResult> {
  await drive(direct, spec, concurrency, params.loadWarmupS, newAcc());
  await drive(relay, spec, concurrency, params.loadWarmupS, newAcc());
  const half = params.durationS / 2;
  const side0 = () => ({ ...newAcc(), cpu: zeroCpu() });
  const acc = { direct: side0(), relay: side0() };
  const sampler = setInterval(onSample, 100);
  try {
    // ABBA segments: direct, relay, relay, direct.
    for (const t of [direct, relay, relay, direct]) {
      const a = t === direct ? acc.direct : acc.relay;
      const m0 = meter(procs);
      a.seconds += await drive(t, spec, concurrency, half, a);
      const m1 = meter(procs);
      const ours = m1.relayCpu - m0.relayCpu + (m1.mockCpu - m0.mockCpu) + (m1.selfCpu - m0.selfCpu);
      a.cpu.relay += m1.relayCpu - m0.relayCpu;
      a.cpu.mock += m1.mockCpu - m0.mockCpu;
      a.cpu.loader += m1.selfCpu - m0.selfCpu;
      a.cpu.other += Math.max(0, m1.busy - m0.busy - ours);
    }
  } finally {
    clearInterval(sampler);
    onSample();
  }
  const side = (a: typeof acc.direct): LoadSide => {
    const ms = a.seconds * 1000;
    return {
      requests: a.latencies.length,
      errors: a.errors.count,
      seconds: a.seconds,
      rps: a.latencies.length / a.seconds,
      latency: stats(a.latencies),
      cpu: {
        relay: a.cpu.relay / ms,
        mock: a.cpu.mock / ms,
        loader: a.cpu.loader / ms,
        other: a.cpu.other / ms,
      },
    };
  };
  const d = side(acc.direct);
  const r = side(acc.relay);
  const relayCpuMsPerRequest = acc.relay.cpu.relay / r.requests || Number.NaN;
  return {
    concurrency,
    direct: d,
    relay: {
      ...r,
      reportedOverhead: stats(acc.relay.overheads),
      relayCpuMsPerRequest,
      cpuBoundRpsPerCore: 1000 / relayCpuMsPerRequest,
    },
    added: { p50: r.latency.p50 - d.latency.p50, p99: r.latency.p99 - d.latency.p99 },
    errorSamples: [...acc.direct.errors.samples, ...acc.relay.errors.samples],
    relayPeakRssBytes: 0,
    mockPeakRssBytes: 0,
  };
}

/** CPU used between two meter readings, in cores. */
export function cpuBetween(m0: Meter, m1: Meter): CpuShare {
  const ms = m1.at - m0.at;
  const relay = m1.relayCpu - m0.relayCpu;
  const mock = m1.mockCpu - m0.mockCpu;
  const loader = m1.selfCpu - m0.selfCpu;
  const other = Math.max(0, m1.busy - m0.busy - relay - mock - loader);
  return { relay: relay / ms, mock: mock / ms, loader: loader / ms, other: other / ms };
}

export function zeroCpu(): CpuShare {
  return { relay: 0, mock: 0, loader: 0, other: 0 };
}
