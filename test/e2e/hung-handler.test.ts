import t from 'tap';
import hangJob, { type HangEvent } from '../fixtures/hang-job.js';
import { LogLines, run, tempDir, waitFor, within } from '../fixtures/harness.js';

interface Seen {
  key: string;
  n: number;
  seen: number[];
}

void t.test('stop() parks an invocation that never settles, with its mailbox, and the next start runs them in order', async (t) => {
  const stateDir = tempDir(t, 'hang');
  // Key "stuck" hangs on its second message; everything behind it waits in its mailbox.
  const events: HangEvent[] = [
    { key: 'stuck', n: 1 },
    { key: 'stuck', n: 2, hang: true },
    { key: 'stuck', n: 3 },
    { key: 'stuck', n: 4 },
    ...Array.from({ length: 20 }, (_, i) => ({ key: `free-${i % 4}`, n: i })),
  ];
  const logs = new LogLines();
  process.env.EDDY_TEST_HANG = '1';
  t.teardown(() => {
    delete process.env.EDDY_TEST_HANG;
  });
  const first = run(t, hangJob, { workers: 2, stateDir, stopTimeoutMs: 300, log: logs.log, inputs: { events } });
  await waitFor(() => first.output('seen').length === 21, 'everything but the hung key and its mailbox');
  const summary = await within(first.stop(), 5_000, 'stop with a hung handler');
  t.equal(summary.endedBy, 'stop');
  const before = first.output<Seen>('seen');
  t.same(before.filter((s) => s.key === 'stuck').map((s) => s.n), [1], 'the stuck key ran only its first message');
  t.ok(logs.matching(/parked 3 envelopes in state \(1 of them still running\)/).length === 1, 'the log says what was parked');

  delete process.env.EDDY_TEST_HANG;
  const second = run(t, hangJob, { workers: 2, stateDir, inputs: { events: [] } });
  await within(second.done, 20_000, 'the second run');
  const after = second.output<Seen>('seen');
  t.same(after.map((s) => s.n), [2, 3, 4], 'the hung invocation ran again first, then its mailbox, in order');
  t.same(after.at(-1)?.seen, [1, 2, 3, 4], 'and the state saw each message exactly once');
});
