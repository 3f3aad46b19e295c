import { readFile } from 'node:fs/promises';
import { renderFile } from '../core/config/load.ts';
import { startMockUpstream } from '../mock-upstream/server.ts';
import { runRelayCommand } from './relay.ts';

/** Named like the CLI's other user errors, so it is printed without a stack. */
class DemoError extends Error {
  override name = 'CliError';
}

/**
 * `npm start`: the quickstart in one process. Every channel whose baseURL points at this machine
 * gets a mock upstream on that port (expecting that channel's key), then the relay starts with
 * client auth off so a plain curl works.
 */
export async function runDemo(o: { configFile: string; port: number }) {
  const { config } = renderFile(await readFile(o.configFile, 'utf8'), o.configFile, { generation: 1 });
  const byPort = new Map<
    number,
    { names: string[]; apiKey: string; volcengine?: { accessKeyId: string; secretAccessKey: string } }
  >();
  for (const c of config.channels) {
    const url = new URL(c.baseURL);
    if (!['127.0.0.1', 'localhost'].includes(url.hostname)) continue;
    const port = Number(url.port || 80);
    const entry = byPort.get(port);
    const keys = c.provider === 'volcengine' ? c.credentials : undefined;
    const volcengine =
      keys?.['accessKeyId'] && keys['secretAccessKey']
        ? { accessKeyId: keys['accessKeyId'], secretAccessKey: keys['secretAccessKey'] }
        : undefined;
    if (entry) {
      entry.names.push(c.name);
      if (volcengine) entry.volcengine = volcengine;
    } else byPort.set(port, { names: [c.name], apiKey: c.apiKey, ...(volcengine && { volcengine }) });
  }
  const mocks = await Promise.all(
    [...byPort].map(([port, { names, apiKey, volcengine }]) =>
      startMockUpstream({
        port,
        host: '127.0.0.1',
        name: names.join('+'),
        apiKey,
        chunkDelayMs: 30,
        ...(volcengine && { volcengine }),
      }).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'EADDRINUSE') throw err;
        throw new DemoError(
          `port ${port} (channel ${names.join(', ')} in ${o.configFile}) is in use: is another \`kuberelay demo\` running?`,
        );
      }),
    ),
  );
  // The mocks live as long as the process; the relay's signal handling ends both.
  for (const m of mocks) process.stdout.write(`mock upstream ${m.name} on ${m.url}\n`);
  const relay = await runRelayCommand({
    configFile: o.configFile,
    port: o.port,
    host: '127.0.0.1',
    auth: 'none',
  });
  process.stdout.write(
    `\nkuberelay demo: relay on ${relay.url}\n\n` +
      `  curl ${relay.url}/v1/chat/completions -H 'content-type: application/json' \\\n` +
      `    -d '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hello"}]}'\n\n`,
  );
}
