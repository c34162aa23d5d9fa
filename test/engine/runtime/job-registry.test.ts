/**
 * Several jobs on one machine: the default admin port falls back to a free one, running jobs
 * register in the per-user runtime folder, `eddy jobs` lists them and `--job <name>` finds one
 * (with its token).
 */
import { execFile } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import counterJob from '../../fixtures/counter-job.js';
import { run, tempDir, waitFor } from '../../fixtures/harness.js';
import { listJobs } from '../../../engine/runtime/job-registry.js';

const root = join(import.meta.dirname, '..', '..', '..');
const exec = promisify(execFile);
const events = Array.from({ length: 100_000 }, (_, i) => ({ key: `k${i % 100}` }));

/** This test's runtime folder: the jobs it starts (in-process and the eddy commands) use it. */
const runtime = tempDir(t, 'runtime');
process.env.EDDY_RUNTIME_DIR = runtime;
const eddy = (args: string[], env: Record<string, string> = {}): Promise<{ stdout: string; stderr: string }> =>
  exec(process.execPath, [join(root, 'bin', 'eddy.js'), ...args], { env: { ...process.env, EDDY_RUNTIME_DIR: runtime, ...env } });

/** Holds port 7077 for the test, unless something else already does: either way 'auto' finds it taken. */
async function take7077(t: { teardown(fn: () => void): void }): Promise<void> {
  const server: Server = createServer();
  await new Promise<void>((resolve) => {
    server.once('error', () => resolve());
    server.listen(7077, '127.0.0.1', () => {
      t.teardown(() => server.close());
      resolve();
    });
  });
}

void t.test("two jobs side by side: 'auto' takes a free port when 7077 is taken; both are registered, listed and found by name", async (t) => {
  await take7077(t);
  const first = run(t, counterJob, { workers: 1, adminPort: 'auto', inputs: { events: { records: events, ratePerSec: 1000 } } });
  const url = (await first.adminUrl())!;
  t.match(url, /^http:\/\/127\.0\.0\.1:\d+$/, 'the job still gets an endpoint');
  t.not(url, 'http://127.0.0.1:7077', 'on another port than the taken 7077');

  const greeter = join(root, 'examples', 'greeter', 'job.ts');
  const entries = listJobs();
  t.same(entries.map((e) => [e.job, e.pid, e.url]), [['e2e-counter', process.pid, url]], 'the running job is registered with its pid and URL');

  const { stdout: listed } = await eddy(['jobs']);
  t.match(listed, new RegExp(`^e2e-counter\\t${process.pid}\\t${url}\\t`, 'm'), 'eddy jobs lists it');
  await waitFor(() => first.status().state === 'running', 'the job to run');
  const { stdout: status } = await eddy(['status', '--job', 'e2e-counter']);
  t.match(status, /^job e2e-counter: running/, 'eddy status --job <name> finds it');
  const { stdout: byPid } = await eddy(['metrics', '--job', String(process.pid)]);
  t.match(byPid, /^eddy_invocations_total\{worker="0",job="e2e-counter"\}/m, '--job <pid> too');
  await t.rejects(eddy(['status', '--job', 'no-such-job']), /EDDY_JOB_NOT_FOUND: --job no-such-job: no running job of that name is registered in .*; running jobs: e2e-counter \(pid \d+/, 'an unknown name lists the running jobs');

  // A second job in another process, on eddy run's default ('auto') while 7077 and the first job's port are taken.
  const second = await eddy(['run', greeter, '--workers', '1', '--no-progress']);
  const port = /admin endpoint: http:\/\/127\.0\.0\.1:(\d+)/.exec(second.stderr)?.[1];
  t.ok(port !== undefined && port !== '7077' && `http://127.0.0.1:${port}` !== url, `the second job took another free port (${port})`);
  t.match(second.stdout, /job greeter ended by end-of-input/, 'and ran alongside the first');
  t.same(listJobs().map((e) => e.job), ['e2e-counter'], 'once ended, only the first is registered');

  await first.stop();
  await waitFor(() => listJobs().length === 0, 'the entry to go');
  t.same(readdirSync(runtime), [], 'a job that ended is unregistered');
  const { stdout: none } = await eddy(['jobs']);
  t.match(none, /^no running job is registered in /, 'eddy jobs says so');
});

void t.test('a job with a token: --job finds the token in its entry; --admin without it is refused', async (t) => {
  const token = 'registry-test-token-0123';
  const handle = run(t, counterJob, { workers: 1, adminPort: 0, adminToken: token, inputs: { events: { records: events, ratePerSec: 1000 } } });
  const url = (await handle.adminUrl())!;
  await waitFor(() => handle.status().state === 'running', 'the job to run');
  const { stdout } = await eddy(['status', '--job', 'e2e-counter']);
  t.match(stdout, /^job e2e-counter: running/, '--job: the token comes from the runtime entry');
  await t.rejects(eddy(['status', '--admin', url], { EDDY_ADMIN_TOKEN: '' }), /EDDY_ADMIN_UNAUTHORIZED: GET \/status failed \(401\)/, '--admin without a token: refused');
  const { stdout: withEnv } = await eddy(['status', '--admin', url], { EDDY_ADMIN_TOKEN: token });
  t.match(withEnv, /^job e2e-counter: running/, '--admin with $EDDY_ADMIN_TOKEN');
});

void t.test('eddy run on a job that fails exits at once and leaves no entry behind', async (t) => {
  const checkpointDir = tempDir(t, 'registry-fail');
  await t.rejects(eddy(['run', join(root, 'test', 'fixtures', 'failing-sink-job.ts'), '--workers', '1', '--checkpoint-dir', checkpointDir, '--checkpoint-interval-ms', '100', '--max-failures', '0', '--no-progress']), /EDDY_SINK_FAILED/);
  t.same(readdirSync(runtime), [], 'its entry went with the process');
});
