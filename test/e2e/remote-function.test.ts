// remoteFunction with a real StateFun SDK function: a greeter written with the official Python SDK
// (apache-flink-statefun 3.3.0, served by scripts/statefun-python) called from an Eddy job, its
// state kept in Eddy's keyed state, across checkpoints and worker kills; and an endpoint that never
// answers, which fails the attempt (the job restores and sends again).
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import type { Job } from '../../index.js';
import { groupBy, killRepeatedly, run, type Teardowns, tempDir, waitFor, within } from '../fixtures/harness.js';

const run$ = promisify(execFile);
const repo = join(import.meta.dirname, '..', '..');

/** Starts the Python SDK greeter; stopped at teardown. */
async function startGreeter(t: Teardowns, dir: string): Promise<string> {
  const env = { ...process.env, EDDY_STATEFUN_PYTHON_STATE: join(dir, 'python.env') };
  const script = join(repo, 'scripts', 'statefun-python');
  t.teardown(() => run$(script, ['stop'], { env }).then(() => {}, () => {}));
  const { stdout } = await run$(script, ['start', join(repo, 'test', 'fixtures', 'statefun_greeter.py')], { env, timeout: 300_000 });
  return stdout.trim().split(/\s+/)[0]!;
}

/** The job module, loaded after the environment names the endpoint (workers load it the same way). */
async function greeterJob(url: string, timeoutMs?: number): Promise<Job> {
  process.env.EDDY_REMOTE_GREETER_URL = url;
  if (timeoutMs === undefined) delete process.env.EDDY_REMOTE_TIMEOUT_MS;
  else process.env.EDDY_REMOTE_TIMEOUT_MS = String(timeoutMs);
  const module = (await import(`../fixtures/remote-greeter-job.js?url=${encodeURIComponent(url)}`)) as { default: Job };
  return module.default;
}

void t.test('a Python SDK greeter as a remote function: with checkpoints and worker kills, every count exact and once', async (t) => {
  const dir = tempDir(t, 'remote');
  const url = await startGreeter(t, dir);
  const job = await greeterJob(url);
  const names = Array.from({ length: 20 }, (_, i) => `n${i}`);
  const input = Array.from({ length: 800 }, (_, i) => names[(i * 7) % names.length]!);
  const handle = run(t, job, { workers: 2, checkpointDir: join(dir, 'chk'), checkpointIntervalMs: 100, inputs: { names: { records: input, ratePerSec: 200 } } });
  let seed = 7;
  const random = (): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  await killRepeatedly(handle, 2, 3, random);
  const summary = await within(handle.done, 180_000, 'the job');
  t.equal(summary.endedBy, 'end-of-input');
  t.ok(handle.status().recoveries.filter((r) => r.kind === 'restart').length >= 1, 'the kills made the job restore');

  const expected = new Map<string, number>();
  for (const name of input) expected.set(name, (expected.get(name) ?? 0) + 1);
  const greetings = handle.output<string>('example/out').map((line) => line.split(';'));
  t.equal(greetings.length, input.length, 'one greeting per message');
  for (const [name, lines] of groupBy(greetings, ([name]) => name!)) {
    t.same(lines.map(([, seen]) => Number(seen)), Array.from({ length: expected.get(name)! }, (_, i) => i + 1), `${name}: seen 1..${expected.get(name)}, each once, in order`);
  }
  const tallies = handle.output<{ name: string; seen: number; from: string }>('tallies');
  t.equal(tallies.length, input.length, 'every count the greeter sent reached the Eddy function once');
  t.ok(tallies.every((tally) => tally.from === `example/greeter:${tally.name}`), 'as a message from the greeter instance');
});

void t.test('an endpoint that never answers: requests retried until timeoutMs, then the attempt fails and the job restores', async (t) => {
  const dir = tempDir(t, 'remote-down');
  // A port nothing listens on.
  const job = await greeterJob('http://127.0.0.1:9/statefun', 400);
  const handle = run(t, job, { workers: 1, checkpointDir: join(dir, 'chk'), checkpointIntervalMs: 100, inputs: { names: ['a', 'b'] }, restartStrategy: { maxFailures: 100, initialBackoffMs: 50, maxBackoffMs: 200 } });
  await waitFor(() => handle.status().recoveries.filter((r) => r.kind === 'restart').length >= 2, 'two restarts', 30_000);
  const restart = handle.status().recoveries.find((r) => r.kind === 'restart')!;
  t.match(restart.reason, /remote function example\/greeter at http:\/\/127\.0\.0\.1:9\/statefun did not answer within 400 ms \(\d+ attempts; last: .*ECONNREFUSED/, 'the cause names the function, the URL and the last error');
  t.same(handle.output('example/out'), [], 'nothing came out');
  // Stopping while an attempt fails again may end the job with that failure: either way it ends.
  await handle.stop().catch(() => undefined);
  t.not(handle.status().state, 'running', 'and it stops');
});
