// The result of one `npm run bench` run: what bench/run.ts measures, bench/run/report.ts renders
// and --json writes.

import type { RunMeta } from '../lib/meta.ts';
import type { Params } from './args.ts';
import type { LoadResult, SerialResult, StreamResult } from './measure.ts';

/** V8 heap figures from the relay's /metrics (prom-client default metrics), in bytes. */
export interface HeapFigures {
  heapUsedBytes: number;
  heapTotalBytes: number;
  externalBytes: number;
}

export interface MemoryFigures {
  relay: {
    idleBytes: number;
    afterSerialBytes: number;
    peakSampledBytes: number;
    hwmBytes: number;
    endBytes: number;
    endFileBackedBytes: number;
  };
  mock: { idleBytes: number; peakSampledBytes: number; hwmBytes: number; endFileBackedBytes: number };
  loaderPeakBytes: number;
  /** Scraped at idle and at the end (not during measurements). */
  relayHeapIdle: HeapFigures | undefined;
  relayHeapEnd: HeapFigures | undefined;
}

export interface BenchResult {
  version: 1;
  startedAt: string;
  meta: RunMeta & { kernel: string; memTotalBytes: number; pinned: boolean };
  scenario: { name: string; description: string; env: Record<string, string> };
  params: Omit<Params, 'only'> & { only: string[] };
  chat?: SerialResult;
  embeddings?: SerialResult;
  stream?: StreamResult;
  load: LoadResult[];
  memory: MemoryFigures;
  targets: {
    name: string;
    target: string;
    measured: string;
    met: boolean | null;
  }[];
  totalErrors: number;
  durationS: number;
}
