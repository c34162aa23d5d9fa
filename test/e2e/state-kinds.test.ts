import t from 'tap';
import job, { type BasketAnswer } from '../fixtures/collections-job.js';
import { basketEvents, compareAnswers, expectedAnswers } from '../fixtures/collections-model.js';
import { LogLines, run, tempDir, waitFor, within } from '../fixtures/harness.js';

const EVENTS = 6000;
const BASKETS = 40;
const events = basketEvents(EVENTS, BASKETS, 7);
const expected = expectedAnswers(events);

void t.test('map and list state: a worker killed mid-run and a restore on another worker count answer every event as the model does, exactly once', async (t) => {
  const checkpointDir = tempDir(t, 'chk-collections');
  const logs = new LogLines();
  const first = run(t, job, { workers: 2, checkpointDir, checkpointIntervalMs: 100, checkpointsRetained: 50, log: logs.log, inputs: { events: { records: events, ratePerSec: 2000 } } });
  await waitFor(() => first.status().checkpoints.length > 0, 'a first checkpoint', 60_000);
  // A cut with part of the events behind it: the restore on 3 workers below starts here.
  const { id } = await first.checkpoint();
  await first.killWorker(0);
  const summary = await within(first.done, 120_000, 'the run with a kill');
  t.equal(summary.restarts, 1, 'the job restored once after the kill');
  const answers = first.output<BasketAnswer>('answers');
  t.same(compareAnswers(answers, expected), [], `all ${expected.size} events answered once, as the model says`);
  t.ok(answers.some((a) => (a.entries?.length ?? 0) > 20), 'some dumps saw large maps');

  // The same checkpoint restored on 3 workers: each worker reads only the key groups it now owns.
  const second = run(t, job, { workers: 3, checkpointDir, checkpointsRetained: 50, restoreFrom: id, inputs: { events: { records: events } } });
  await within(second.done, 120_000, 'the restored run');
  const after = second.output<BasketAnswer>('answers');
  t.ok(after.length > 0 && after.length < events.length, `the restored run answered the ${after.length} events after the cut`);
  const answeredBefore = new Set(answers.filter((a) => !after.some((b) => b.n === a.n)).map((a) => a.n));
  t.same(compareAnswers(after, expected, (n) => !answeredBefore.has(n)), [], 'from the restored map and list state, each as the model says');
  t.same(after.filter((a) => a.entries !== undefined && a.n >= EVENTS).length, BASKETS, 'every basket dumped its state at the end');
});
