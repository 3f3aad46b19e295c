import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
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

  // The child imports the relay's main module from the sources: seconds on a busy 2-core machine.
  it("loses nothing on SIGTERM: the relay's signal handler flushes before it exits", {
    timeout: 30_000,
  }, async () => {
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

describe('a stdout that refuses writes (non-blocking, full)', () => {
  it('keeps a bounded backlog, drops past it and says how many, and loses nothing else', {
    timeout: 30_000,
  }, async () => {
    // A Unix socket whose reader does not read yet: its fd is non-blocking, so a full one answers EAGAIN.
    const dir = mkdtempSync(join(tmpdir(), 'kuberelay-log-'));
    const sock = join(dir, 's');
    let received = '';
    let reader: net.Socket | undefined;
    const server = net.createServer({ pauseOnConnect: true }, (s) => {
      reader = s;
    });
    await new Promise<void>((r) => server.listen(sock, r));
    const writer = net.connect(sock);
    await once(writer, 'connect');
    await until('the reader connected', async () => reader !== undefined, 5_000);
    const fd = (writer as unknown as { _handle: { fd: number } })._handle.fd;
    const maxPendingBytes = 64 * 1024;
    const dest = bufferedLogStream(fd, { minBytes: 1024, flushMs: 10, maxPendingBytes });
    const line = (i: number) => `${JSON.stringify({ msg: 'line', i, pad: 'x'.repeat(100) })}\n`;
    const n = 20_000; // ~2.5 MB: far more than the socket's buffer and the backlog hold
    const started = performance.now();
    let refused = 0;
    for (let i = 0; i < n; i++) if (!dest.write(line(i))) refused++;
    // Never waited for the reader: the loop was not blocked.
    expect(performance.now() - started).toBeLessThan(5_000);
    expect(refused).toBeGreaterThan(0);
    reader!.on('data', (d: Buffer) => {
      received += d.toString();
    });
    reader!.resume();
    await until('the drop is reported', async () => received.includes('log lines dropped'), 10_000);
    dest.stop();
    const got = received
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { msg: string; i?: number; dropped?: number });
    const kept = got.filter((l) => l.msg === 'line').map((l) => l.i!);
    const report = got.find((l) => l.msg.startsWith('log lines dropped'))!;
    // What was accepted arrives whole and in order; what was refused is counted, not lost silently.
    expect(kept).toEqual([...Array(kept.length).keys()]);
    expect(report.dropped).toBe(refused);
    expect(kept.length + refused).toBe(n);
    writer.destroy();
    reader!.destroy();
    server.close();
    rmSync(dir, { recursive: true, force: true });
  });
});
