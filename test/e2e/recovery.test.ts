import t from 'tap';
import job from '../fixtures/churn-job.js';
import { run, tempDir, waitFor } from '../fixtures/harness.js';

void t.test('after a kill the job says recovering until the restored workers process input, and a kill during the restore recovers too', async (t) => {
  const handle = run(t, job, {
    workers: 2,
    checkpointDir: tempDir(t, 'recovery'),
    checkpointIntervalMs: 200,
    inputs: { writes: { params: { keys: 20_000 } } },
  });
  await waitFor(() => handle.status().checkpoints.length >= 2, 'two checkpoints', 60_000);

  const seen: string[] = [];
  const watch = (): string => {
    const { state } = handle.status();
    if (seen.at(-1) !== state) seen.push(state);
    return state;
  };
  await handle.killWorker(0);
  t.equal(handle.status().restarts, 1, 'the kill counts as a restart at once');
  // Killed again while the workers restore (the status says so).
  await waitFor(() => watch() === 'recovering', 'recovering', 10_000);
  await handle.killWorker(1);
  t.equal(handle.status().restarts, 2, 'the second kill, during the restore, counts too');
  await waitFor(() => watch() === 'running', 'running again', 60_000);
  t.same(seen, ['recovering', 'running'], 'recovering until running, never running in between');
  const { totals } = await handle.metrics();
  t.ok(totals.recordsRead > 0 || totals.invocations > 0, `the restored workers process input once running (${totals.recordsRead} read, ${totals.invocations} invoked)`);
  const before = totals.invocations;
  await new Promise((resolve) => setTimeout(resolve, 500));
  t.ok((await handle.metrics()).totals.invocations > before, 'and go on invoking');
});
