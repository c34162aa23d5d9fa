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
  const first = run(t, job, { workers: 2, checkpointDir, checkpointIntervalMs: 200, checkpointsRetained: 1000, log: logs.log, inputs: { events: { records: events, ratePerSec: 1000 } } });
  await waitFor(() => first.status().checkpoints.length > 0, 'a first checkpoint', 60_000);
  // Cut with about a third of the events behind it, so the restored maps and lists hold something.
  for (let i = 0; i < 1000 && (await first.metrics()).totals.invocations < 2000; i++) await new Promise((resolve) => setTimeout(resolve, 20));
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
  t.same(compareAnswers(after, expected, (n) => after.some((a) => a.n === n)), [], 'from the restored map and list state, each as the model says');
  // Source positions were restored too: per basket, the restored run answered exactly the events after the cut, a suffix of its events.
  const answeredAfter = new Set(after.map((a) => a.n));
  const notSuffix = [...new Set(events.map((e) => e.basket))].filter((b) => {
    const mine = events.filter((e) => e.basket === b).map((e) => answeredAfter.has(e.n));
    return mine.some((answered, i) => !answered && mine.slice(0, i).some(Boolean));
  });
  t.same(notSuffix, [], 'each basket continued from its checkpointed position: nothing skipped, nothing read twice');
  t.ok(after.some((a) => a.entries !== undefined && a.n >= EVENTS), 'final dumps ran on the restored state');
});
