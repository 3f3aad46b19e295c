// Simulated async generation tasks for the mock's job APIs (volcengine/, gemini/veo.ts): each task
// waits `queueMs`, runs `durationMs` (progress rises linearly), then finishes, or fails when its
// prompt carries a failure marker; finished results expire after `ttlMs`. Unfinished tasks count
// against `maxConcurrent` (the provider's own limit: a submit beyond it is refused). The result is
// `resultBytes` deterministic bytes derived from the task id, served with Range support.
import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';

export interface TaskSimOptions {
  /** Time in the upstream's queue before running. Default 0. */
  queueMs?: number;
  /** Running time. Default 2000 ms. */
  durationMs?: number;
  /** Unfinished tasks the upstream holds at once; a submit beyond answers its limit error. Default unlimited. */
  maxConcurrent?: number;
  /** Size of each result. Default 256 KiB. */
  resultBytes?: number;
  /** How long a finished result stays fetchable. Default 12 h (Volcengine keeps results 12 hours). */
  ttlMs?: number;
}

/** A prompt containing one of these makes the task fail (moderation of the output) or be filtered. */
export const FAIL_MARKER = '[mock:fail]';
export const FILTER_MARKER = '[mock:filter]';

export type TaskPhase = 'queued' | 'running' | 'done' | 'failed' | 'filtered' | 'expired';

export interface SimTask {
  id: string;
  /** The model (req_key / Veo model) it was submitted for. */
  model: string;
  kind: string;
  prompt: string;
  submittedAt: number;
  polls: number;
}

export interface TaskSimStats {
  submitted: number;
  rejected: number;
  /** Status calls, per task id. */
  polls: Record<string, number>;
  /** Most unfinished tasks held at once. */
  maxRunning: number;
}

export class TaskSim {
  readonly #o: Required<TaskSimOptions>;
  readonly #tasks = new Map<string, SimTask>();
  #seq = 0;
  #rejected = 0;
  #maxRunning = 0;
  readonly #prefix: string;

  constructor(prefix: string, opts: TaskSimOptions = {}) {
    this.#prefix = prefix;
    this.#o = {
      queueMs: opts.queueMs ?? 0,
      durationMs: opts.durationMs ?? 2000,
      maxConcurrent: opts.maxConcurrent ?? Number.POSITIVE_INFINITY,
      resultBytes: opts.resultBytes ?? 256 * 1024,
      ttlMs: opts.ttlMs ?? 12 * 3600_000,
    };
  }

  get resultBytes(): number {
    return this.#o.resultBytes;
  }

  /** A new task, or undefined when the upstream's concurrency limit is reached. */
  submit(model: string, kind: string, prompt: string, now = Date.now()): SimTask | undefined {
    const running = this.unfinished(now);
    if (running >= this.#o.maxConcurrent) {
      this.#rejected++;
      return undefined;
    }
    const id = `${this.#prefix}${Date.now()}${String(++this.#seq).padStart(6, '0')}`;
    const task: SimTask = { id, model, kind, prompt, submittedAt: now, polls: 0 };
    this.#tasks.set(id, task);
    this.#maxRunning = Math.max(this.#maxRunning, running + 1);
    return task;
  }

  get(id: string): SimTask | undefined {
    return this.#tasks.get(id);
  }

  /** Counts a status call and returns the task. */
  poll(id: string): SimTask | undefined {
    const t = this.#tasks.get(id);
    if (t) t.polls++;
    return t;
  }

  phase(t: SimTask, now = Date.now()): { phase: TaskPhase; progress: number } {
    const elapsed = now - t.submittedAt;
    const { queueMs, durationMs, ttlMs } = this.#o;
    if (elapsed < queueMs) return { phase: 'queued', progress: 0 };
    if (elapsed < queueMs + durationMs) {
      return { phase: 'running', progress: Math.floor(((elapsed - queueMs) / durationMs) * 100) };
    }
    if (elapsed >= queueMs + durationMs + ttlMs) return { phase: 'expired', progress: 100 };
    if (t.prompt.includes(FAIL_MARKER)) return { phase: 'failed', progress: 100 };
    if (t.prompt.includes(FILTER_MARKER)) return { phase: 'filtered', progress: 100 };
    return { phase: 'done', progress: 100 };
  }

  unfinished(now = Date.now()): number {
    let n = 0;
    for (const t of this.#tasks.values()) {
      const p = this.phase(t, now).phase;
      if (p === 'queued' || p === 'running') n++;
    }
    return n;
  }

  stats(): TaskSimStats {
    return {
      submitted: this.#seq,
      rejected: this.#rejected,
      polls: Object.fromEntries([...this.#tasks.values()].map((t) => [t.id, t.polls])),
      maxRunning: this.#maxRunning,
    };
  }
}

/** The deterministic result of a task: SHA-256 blocks of `id:i`, cut to `size` bytes. */
export function resultBytes(id: string, size: number): Buffer {
  const out = Buffer.allocUnsafe(size);
  for (let i = 0, off = 0; off < size; i++, off += 32) {
    createHash('sha256')
      .update(`${id}:${i}`)
      .digest()
      .copy(out, off, 0, Math.min(32, size - off));
  }
  return out;
}

/** Serves bytes with one `Range: bytes=` range (206, or 416 when unsatisfiable), in 64 KiB writes. */
export function sendBytes(
  req: IncomingMessage,
  res: ServerResponse,
  bytes: Buffer,
  contentType: string,
  name: string,
): void {
  const size = bytes.length;
  let start = 0;
  let end = size - 1;
  let status = 200;
  const range = req.headers.range;
  if (typeof range === 'string') {
    const m = /^bytes=(\d*)-(\d*)$/.exec(range.trim());
    const a = m?.[1] ?? '';
    const b = m?.[2] ?? '';
    if (m && (a !== '' || b !== '')) {
      if (a === '') start = Math.max(0, size - Number(b));
      else {
        start = Number(a);
        if (b !== '') end = Math.min(Number(b), size - 1);
      }
      if (start > end || start >= size) {
        res.writeHead(416, { 'content-range': `bytes */${size}`, 'x-mock-name': name });
        res.end();
        return;
      }
      status = 206;
    }
  }
  const headers: Record<string, string | number> = {
    'content-type': contentType,
    'content-length': end - start + 1,
    'accept-ranges': 'bytes',
    'x-mock-name': name,
  };
  if (status === 206) headers['content-range'] = `bytes ${start}-${end}/${size}`;
  res.writeHead(status, headers);
  let off = start;
  const more = (): void => {
    while (off <= end) {
      const next = Math.min(off + 65536, end + 1);
      const ok = res.write(bytes.subarray(off, next));
      off = next;
      if (!ok) {
        res.once('drain', more);
        return;
      }
    }
    res.end();
  };
  more();
}
