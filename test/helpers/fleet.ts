import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { kuberelay, type Proc } from './process.ts';

/**
 * Several real relay processes (`kuberelay relay --config FILE`) sharing one Redis: what a
 * Deployment with replicas looks like, minus Kubernetes.
 */

export interface FleetPod {
  name: string;
  url: string;
  proc: Proc;
}

export interface Fleet {
  pods: FleetPod[];
  file: string;
  /** SIGKILL one pod (no cleanup at all: its permits and report are left behind in Redis). */
  kill(i: number): Promise<void>;
  /** Starts pod i again (same name, new port). */
  restart(i: number): Promise<void>;
  close(): Promise<void>;
}

export async function startFleet(
  n: number,
  yaml: string,
  env: Record<string, string>,
  name = 'relay',
  /** Environment for one pod only (e.g. a skewed clock). */
  podEnv: (i: number) => Record<string, string> = () => ({}),
  /** How long a pod may take to listen (a loaded machine starts three slowly). */
  startTimeoutMs = 90_000, // a start bound, not a timing test: three relays at once on a busy 2-core machine took 38 s
): Promise<Fleet> {
  const dir = await mkdtemp(join(tmpdir(), 'kuberelay-fleet-'));
  const file = join(dir, 'config.yaml');
  await writeFile(file, yaml);
  const start = async (i: number): Promise<FleetPod> => {
    const pod = `${name}-${i}`;
    const proc = kuberelay(['relay', '--config', file], {
      PORT: '0',
      HOST: '127.0.0.1',
      KUBERELAY_AUTH: 'none',
      POD_NAME: pod,
      ...env,
      ...podEnv(i),
    });
    const m = await proc
      .waitFor(/"url":"(http:\/\/127\.0\.0\.1:\d+)"[^\n]*relay listening/, startTimeoutMs)
      .catch((err: unknown) => {
        proc.child.kill('SIGKILL');
        throw err;
      });
    return { name: pod, url: m[1]!, proc };
  };
  const started = await Promise.allSettled(Array.from({ length: n }, (_, i) => start(i)));
  const failed = started.find((r) => r.status === 'rejected');
  if (failed) {
    // None left behind: a pod that did start would otherwise outlive the test run.
    for (const r of started) if (r.status === 'fulfilled') r.value.proc.child.kill('SIGKILL');
    throw failed.reason;
  }
  const pods = started.map((r) => (r as PromiseFulfilledResult<FleetPod>).value);
  const stop = async (p: FleetPod, signal: NodeJS.Signals) => {
    if (p.proc.child.exitCode !== null || p.proc.child.signalCode !== null) return;
    p.proc.child.kill(signal);
    await p.proc.exited();
  };
  return {
    pods,
    file,
    kill: (i) => stop(pods[i]!, 'SIGKILL'),
    async restart(i) {
      await stop(pods[i]!, 'SIGKILL');
      pods[i] = await start(i);
    },
    async close() {
      await Promise.all(pods.map((p) => stop(p, 'SIGTERM')));
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/**
 * A minimal OpenAI-style upstream that counts requests in flight (the mock upstream reports totals
 * only) and can hold requests until told to let them go.
 */
export interface CountingUpstream {
  url: string;
  inflight(): number;
  maxInflight(): number;
  started(): number;
  /** Hold new requests until release() (instead of answering after delayMs). */
  hold(on: boolean): void;
  releaseAll(): void;
  close(): Promise<void>;
}

export async function startCountingUpstream(delayMs: number): Promise<CountingUpstream> {
  let inflight = 0;
  let max = 0;
  let started = 0;
  let holding = false;
  const held = new Set<() => void>();
  const server = http.createServer((req, res) => {
    started++;
    inflight++;
    max = Math.max(max, inflight);
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      inflight--;
    };
    req.resume();
    res.on('close', finish);
    const answer = () => {
      held.delete(answer);
      if (done) return;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          id: 'chatcmpl-counting',
          object: 'chat.completion',
          created: 0,
          model: 'video',
          choices: [{ index: 0, message: { role: 'assistant', content: 'done' }, finish_reason: 'stop' }],
          usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 },
        }),
      );
    };
    if (holding) held.add(answer);
    else setTimeout(answer, delayMs);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    inflight: () => inflight,
    maxInflight: () => max,
    started: () => started,
    hold(on) {
      holding = on;
    },
    releaseAll() {
      for (const a of [...held]) a();
    },
    async close() {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}
