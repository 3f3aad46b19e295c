import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { bufferedLogStream, flushLog, LOG_BUFFER_BYTES } from '../../relay/log-buffer.ts';
import { until } from '../helpers/until.ts';

const LOG_BUFFER = new URL('../../relay/log-buffer.ts', import.meta.url).href;
const MAIN = new URL('../../relay/main.ts', import.meta.url).href;

/** Runs an ES module as a process; its stdout (a pipe, as under a container runtime) and exit code. */
async function run(source: string, signalOn?: RegExp): Promise<{ stdout: string; code: number | null }> {
  const child = spawn(process.execPath, ['--input-type=module', '-e', source], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => {
    stdout += d.toString();
  });
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
    if (signalOn?.test(stderr)) child.kill('SIGTERM');
  });
  const [code] = await once(child, 'exit');
  if (code !== 0) throw new Error(`exited ${code}: ${stderr}`);
  return { stdout, code: code as number | null };
}

const lines = (text: string) =>
  text
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { msg: string; i?: number });

describe('the buffered log destination', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });
  const file = () => {
    const dir = mkdtempSync(join(tmpdir(), 'kuberelay-log-'));
    dirs.push(dir);
    return join(dir, 'out.log');
  };

  it('holds short lines until flushed, then writes every one in order', async () => {
    const path = file();
    const fd = openSync(path, 'w');
    const dest = bufferedLogStream(fd, { flushMs: 3_600_000 });
    const log = pino({ level: 'info' }, dest);
    for (let i = 0; i < 5; i++) log.info({ i }, 'line');
    expect(readFileSync(path, 'utf8')).toBe('');
    await flushLog(log);
    expect(lines(readFileSync(path, 'utf8')).map((l) => l.i)).toEqual([0, 1, 2, 3, 4]);
    dest.stop();
    closeSync(fd);
  });

  it('writes without a flush once a buffer is full, and a short tail within the flush period', async () => {
    const path = file();
    const fd = openSync(path, 'w');
    const dest = bufferedLogStream(fd, { flushMs: 20 });
    const log = pino({ level: 'info' }, dest);
    const n = Math.ceil((3 * LOG_BUFFER_BYTES) / 100);
    for (let i = 0; i < n; i++) log.info({ i, pad: 'x'.repeat(40) }, 'line');
    await until(
      'every line written',
      async () => readFileSync(path, 'utf8').split('\n').length === n + 1,
      10_000,
    );
    expect(lines(readFileSync(path, 'utf8')).map((l) => l.i)).toEqual([...Array(n).keys()]);
    dest.stop();
    closeSync(fd);
  });

  it('loses nothing when the process exits right after logging', async () => {
    const n = 500; // several buffers: one may be in flight at the exit
    const { stdout } = await run(`
      import pino from 'pino';
      import { bufferedLogStream } from '${LOG_BUFFER}';
      const log = pino({ level: 'info' }, bufferedLogStream());
      for (let i = 0; i < ${n}; i++) log.info({ i }, 'line');
      process.exit(0);
    `);
    expect(lines(stdout).map((l) => l.i)).toEqual([...Array(n).keys()]);
  });

  it("loses nothing on SIGTERM: the relay's signal handler flushes before it exits", async () => {
    const { stdout } = await run(
      `
      import pino from 'pino';
      import { bufferedLogStream } from '${LOG_BUFFER}';
      import { handleSignals } from '${MAIN}';
      const log = pino({ level: 'info' }, bufferedLogStream());
      handleSignals(log, async () => {
        for (let i = 0; i < 3; i++) log.info({ i }, 'during shutdown');
      });
      log.info('ready');
      setInterval(() => {}, 1000);
      process.stderr.write('ready\\n');
    `,
      /ready/,
    );
    expect(lines(stdout).map((l) => l.msg)).toEqual([
      'ready',
      'shutting down',
      'during shutdown',
      'during shutdown',
      'during shutdown',
    ]);
  });
});
