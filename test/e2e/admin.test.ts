/**
 * The admin endpoint of a running job (loopback HTTP) and the `eddy checkpoint|status|metrics|stop`
 * commands that talk to it.
 */
import { execFile } from 'node:child_process';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import counterJob from '../fixtures/counter-job.js';
import { run, tempDir, waitFor } from '../fixtures/harness.js';

const root = join(import.meta.dirname, '..', '..');
const exec = promisify(execFile);
const eddy = (...args: string[]): Promise<{ stdout: string; stderr: string }> => exec(process.execPath, [join(root, 'bin', 'eddy.js'), ...args]);

const events = Array.from({ length: 100_000 }, (_, i) => ({ key: `k${i % 100}` }));

void t.test('the admin endpoint answers status, metrics, checkpoint and stop, and the eddy commands use it', async (t) => {
  const checkpointDir = tempDir(t, 'admin');
  const handle = run(t, counterJob, { workers: 2, checkpointDir, adminPort: 0, inputs: { events: { records: events, ratePerSec: 2000 } } });
  const url = await handle.adminUrl();
  t.match(url, /^http:\/\/127\.0\.0\.1:\d+$/, 'it listens on loopback');
  await waitFor(() => handle.status().state === 'running', 'the job to run');

  const status = (await (await fetch(`${url}/status`)).json()) as { job: string; state: string; workers: number };
  t.same([status.job, status.state, status.workers], ['e2e-counter', 'running', 2], 'GET /status');

  for (let i = 0; i < 500 && (await handle.metrics()).perWorker.some((w) => w.invocations === 0); i++) await new Promise((resolve) => setTimeout(resolve, 20));
  const { stdout: made } = await eddy('checkpoint', '--admin', url!);
  const id = Number(/checkpoint (\d+) complete: \d+ bytes in \d+ ms/.exec(made)?.[1]);
  t.ok(id >= 1, `eddy checkpoint: ${made.trim()}`);
  t.ok(handle.checkpoints().includes(id), 'the checkpoint it reports is complete on disk');
  t.ok(handle.output('counts').length > 0, 'and its output is published');

  const { stdout: described } = await eddy('status', '--admin', url!);
  t.match(described, new RegExp(`job e2e-counter: running .* on 2 workers[\\s\\S]*last: ${id}`), 'eddy status names the state and the last checkpoint');

  const { stdout: metrics } = await eddy('metrics', '--admin', url!);
  const invocations = [...metrics.matchAll(/^eddy_invocations_total\{worker="(\d)",job="e2e-counter"\} (\d+)$/gm)];
  t.equal(invocations.length, 2, 'a Prometheus counter of invocations per worker');
  t.ok(invocations.every((m) => Number(m[2]) > 0), 'both workers invoked');
  t.match(metrics, /^# TYPE eddy_mailbox_depth gauge$/m, 'mailbox depth is a gauge');
  t.match(metrics, /^# TYPE eddy_transactions_committed_total counter$/m, 'transaction counters are exported');
  t.match(metrics, /^# TYPE eddy_transactions_waiting gauge$/m, 'requests waiting for a transaction slot is a gauge');
  t.match(metrics, new RegExp(`^eddy_checkpoints_completed_total\\{job="e2e-counter"\\} 1$`, 'm'), 'checkpoints completed');

  const { stdout: stopped } = await eddy('stop', '--admin', url!);
  t.match(stopped, /job e2e-counter ended by stop/, 'eddy stop prints the summary');
  const summary = await handle.done;
  t.equal(summary.endedBy, 'stop', 'the job stopped');
  t.ok(summary.totals.recordsRead < events.length, 'before reading all its input');
  await t.rejects(eddy('status', '--admin', url!), /no job answers at/, 'once the job has ended, nothing answers');
});

void t.test('an admin port in use fails the job with a message naming the port and the fix', async (t) => {
  const blocker = createServer();
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
  t.teardown(() => blocker.close());
  const port = (blocker.address() as { port: number }).port;
  const handle = run(t, counterJob, { workers: 1, adminPort: port, inputs: { events: { records: events.slice(0, 10) } } });
  await t.rejects(handle.done, { code: 'EDDY_INVALID_OPTION', message: new RegExp(`port ${port} on 127.0.0.1 is in use; pick another port, or 0 for a free one`) });
});

void t.test('the eddy commands say what to do when no job answers', async (t) => {
  const blocker = createServer();
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
  const port = (blocker.address() as { port: number }).port;
  await new Promise<void>((resolve) => blocker.close(() => resolve()));
  await t.rejects(eddy('checkpoint', '--admin', `127.0.0.1:${port}`), /no job answers at http:\/\/127\.0\.0\.1:\d+: is `eddy run` running\?/);
});

void t.test('eddy run serves the admin endpoint by default and not with --no-admin', async (t) => {
  const job = join(root, 'examples', 'greeter', 'job.ts');
  const served = await eddy('run', job, '--workers', '1', '--no-progress', '--admin-port', '0');
  t.match(served.stderr, /admin endpoint: http:\/\/127\.0\.0\.1:\d+/, 'it says where the endpoint is');
  const quiet = await eddy('run', job, '--workers', '1', '--no-progress', '--no-admin');
  t.notMatch(quiet.stderr, /admin endpoint/, '--no-admin: no endpoint');
  t.match(quiet.stdout, /job greeter ended by end-of-input .* on 1 worker\n/, 'and the job ran (one worker, singular)');
});
