/** `eddy run` as a user runs it, in a child process: a failed job ends the process, non-zero, with the reason. */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { tempDir } from '../fixtures/harness.js';

const repo = join(import.meta.dirname, '..', '..');

/** Runs bin/eddy.js with `args`; resolves with its exit code and output, or its kill after `timeoutMs`. */
function eddy(args: string[], timeoutMs: number): Promise<{ code: number | null; stdout: string; stderr: string; timedOut: boolean }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [join(repo, 'bin', 'eddy.js'), ...args], { cwd: repo, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, timedOut });
    });
  });
}

void t.test('a job that fails more often than the restart strategy allows exits 1 with the reason, after the restores it allowed', async (t) => {
  const checkpointDir = tempDir(t, 'cli-fail');
  const run = await eddy(
    ['run', 'test/fixtures/failing-sink-job.ts', '--workers', '1', '--checkpoint-dir', checkpointDir, '--checkpoint-interval-ms', '100', '--max-failures', '2', '--failure-interval-ms', '600000', '--restart-backoff-ms', '50', '--admin-port', '0'],
    120_000,
  );
  t.equal(run.timedOut, false, 'the process ended by itself (it did not sit failed)');
  t.equal(run.code, 1, 'with exit code 1');
  t.match(run.stderr, /eddy: job cli-failing-sink failed after 2 restarts: EDDY_SINK_FAILED: .*the output device is full/, 'naming the job, the restores, the code and the cause');
  t.match(run.stderr, /3 failures within 600000 ms, more than restartStrategy\.maxFailures \(2\)/, 'and why it did not restore again');
});

void t.test('restart strategy flags are validated', async (t) => {
  const run = await eddy(['run', 'test/fixtures/failing-sink-job.ts', '--max-failures', '-1'], 60_000);
  t.not(run.code, 0);
  t.match(run.stderr, /--max-failures must be an integer >= 0/);
});

void t.test('eddy run shows a dead letter with its message decoded by the target codec, not base64', async (t) => {
  const { readableDeadLetter } = await import('../../engine/cli.js');
  const { defineFunction, defineJob, jsonCodec } = await import('../../index.js');
  const fn = defineFunction({ type: 'cli/target', codec: jsonCodec<{ n: number }>(), handler: () => {} });
  const job = defineJob({ name: 'cli-letters', module: import.meta.url, functions: [fn] });
  const payloadBase64 = Buffer.from(JSON.stringify({ n: 7 })).toString('base64');
  const letter = { code: 'EDDY_HANDLER_FAILED', reason: 'boom', target: fn.address('a'), payloadBase64 };
  t.same(readableDeadLetter(job, letter), { code: 'EDDY_HANDLER_FAILED', reason: 'boom', target: { type: 'cli/target', id: 'a' }, payload: { n: 7 } });
  const undecodable = { ...letter, payloadBase64: Buffer.from('not json').toString('base64') };
  t.same(readableDeadLetter(job, undecodable), undecodable, 'bytes the codec cannot read stay base64');
  const unknownTarget = { ...letter, target: { type: 'cli/other', id: 'a' } };
  t.same(readableDeadLetter(job, unknownTarget), unknownTarget, 'so do messages to a type the job lacks');
});

void t.test('eddy --version prints the engine version', async (t) => {
  const { version } = JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8')) as { version: string };
  const run = await eddy(['--version'], 60_000);
  t.equal(run.code, 0);
  t.equal(run.stdout.trim(), version);
});

void t.test('the end-of-run summary counts transactions and sagas when the job ran any', async (t) => {
  const { formatSummary } = await import('../../engine/cli.js');
  const totals = (extra: Record<string, number>): Record<string, number> => ({
    recordsRead: 10, invocations: 10, invocationsFailed: 0, handlerErrors: 0, messagesSent: 0, delayedScheduled: 0, delayedFired: 0,
    transactionsCommitted: 0, transactionsAborted: 0, transactionsRetryable: 0, deadlocksFound: 0, lockWaitTimeouts: 0,
    sagasSucceeded: 0, sagasFailed: 0, compensationsAbandoned: 0, ...extra,
  });
  const summary = (extra: Record<string, number>): Parameters<typeof formatSummary>[0] =>
    ({ job: 'j', endedBy: 'end-of-input', uptimeMs: 1000, workers: 1, totals: totals(extra), egress: {}, latency: { count: 0, p50Ms: 0, p95Ms: 0, p99Ms: 0, maxMs: 0 }, checkpoints: [], restarts: 0, stateDir: undefined }) as never;
  const plain = formatSummary(summary({}));
  t.notMatch(plain, /transactions|sagas/, 'no transaction lines for a job without any');
  const text = formatSummary(summary({ transactionsCommitted: 7, transactionsAborted: 2, transactionsRetryable: 3, deadlocksFound: 1, sagasSucceeded: 4, sagasFailed: 5 }));
  t.match(text, /^ {2}transactions {6}committed 7, aborted 2, retryable 3 \(deadlocks 1, lock-wait timeouts 0\)$/m);
  t.match(text, /^ {2}sagas {13}succeeded 4, failed and compensated 5$/m);
});
