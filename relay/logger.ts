import { Writable } from 'node:stream';

/**
 * `LOG_FORMAT`: `json` (default; one pino JSON object a line, for log collectors) or `pretty`
 * (one readable line each, for a terminal). Pretty is a small formatter of pino's own lines
 * rather than pino-pretty and its dependencies.
 */

export type LogFormat = 'json' | 'pretty';

export function logFormatFromEnv(env: NodeJS.ProcessEnv = process.env): LogFormat {
  const v = env.LOG_FORMAT || 'json';
  if (v !== 'json' && v !== 'pretty') throw new Error(`LOG_FORMAT="${v}" is not valid: use json or pretty`);
  return v;
}

/** The destination for pino (`stream` in its options): undefined means pino's stdout JSON. */
export function logDestination(format: LogFormat, out: NodeJS.WritableStream = process.stdout) {
  return format === 'pretty' ? prettyStream(out) : undefined;
}

const LEVELS: Record<number, string> = {
  10: 'TRACE',
  20: 'DEBUG',
  30: 'INFO ',
  40: 'WARN ',
  50: 'ERROR',
  60: 'FATAL',
};
const OMIT = new Set(['level', 'time', 'msg', 'pid', 'hostname', 'v']);

/** `13:07:41.613 INFO  message key=value ...` from each pino JSON line. */
export function formatPretty(line: string): string {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line;
  }
  const time = typeof o.time === 'number' ? new Date(o.time).toISOString().slice(11, 23) : '';
  const level = LEVELS[o.level as number] ?? String(o.level);
  const fields = Object.entries(o)
    .filter(([k, v]) => !OMIT.has(k) && v !== undefined)
    .map(([k, v]) => `${k}=${typeof v === 'string' && /^[^\s"=]+$/.test(v) ? v : JSON.stringify(v)}`);
  return [time, level, o.msg ?? '', ...fields].filter((s) => s !== '').join(' ');
}

function prettyStream(out: NodeJS.WritableStream): Writable {
  let rest = '';
  return new Writable({
    write(chunk: Buffer, _enc, cb) {
      const lines = (rest + chunk.toString('utf8')).split('\n');
      rest = lines.pop() ?? '';
      const text = lines.map((l) => `${formatPretty(l)}\n`).join('');
      if (text === '' || out.write(text)) cb();
      else out.once('drain', () => cb());
    },
    final(cb) {
      if (rest !== '') out.write(`${formatPretty(rest)}\n`);
      cb();
    },
  });
}
