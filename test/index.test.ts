import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import t from 'tap';
import { defineFunction, defineJob, EddyError, engine, submit } from '../index.js';

const root = fileURLToPath(new URL('../', import.meta.url));

void t.test('engine.submit refuses at once inside an Eddy worker, naming the fix', async (t) => {
  const job = defineJob({ name: 'in-worker', module: import.meta.url, functions: [defineFunction({ type: 'w/f', handler: () => {} })] });
  const marker = Symbol.for('eddy.worker');
  (globalThis as Record<symbol, unknown>)[marker] = true;
  try {
    for (const start of [engine.submit, submit]) {
      const error = t.throws(() => start(job)) as unknown;
      t.equal(error instanceof EddyError ? error.code : error, 'EDDY_SUBMIT_IN_WORKER');
      t.match((error as Error).message, /free of top-level side effects.*submit from another module.*eddy run/);
    }
  } finally {
    delete (globalThis as Record<symbol, unknown>)[marker];
  }
});

void t.test('a job module that submits itself at top level fails at once instead of submitting again in every worker', async (t) => {
  const started = Date.now();
  const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', 'test/fixtures/submit-at-top-level-job.ts'], { cwd: root, timeout: 120_000 });
  const seconds = (Date.now() - started) / 1000;
  const outcome = JSON.parse(stdout.trim().split('\n').at(-1)!) as { outcome: string; code?: string; message?: string };
  t.equal(outcome.outcome, 'failed', 'the job fails');
  t.equal(outcome.code, 'EDDY_WORKER_FAILED', 'a worker refused to start the job');
  // The worker's EddyError crosses the thread as a plain Error; its code leads the message.
  t.match(outcome.message ?? '', /EDDY_SUBMIT_IN_WORKER: engine.submit was called inside an Eddy worker/);
  t.ok(seconds < 60, `over in ${seconds.toFixed(1)} s`);
});
