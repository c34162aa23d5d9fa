/** The failure-rate restart strategy: failures counted in a sliding window, a backoff that resets. */
import t from 'tap';
import { RestartStrategy, restartStrategyDefaults } from '../../../engine/runtime/restart-strategy.js';

function strategy(options: Partial<typeof restartStrategyDefaults>) {
  const clock = { now: 0 };
  return { clock, strategy: new RestartStrategy({ ...restartStrategyDefaults, ...options }, () => clock.now) };
}

void t.test('at most maxFailures failures within intervalMs restore; one more fails the job', async (t) => {
  const { clock, strategy: s } = strategy({ maxFailures: 3, intervalMs: 10_000 });
  for (let i = 0; i < 3; i++) {
    clock.now += 1000;
    t.equal(s.onFailure().restart, true, `failure ${i + 1} of 3 restores`);
  }
  clock.now += 1000;
  const fourth = s.onFailure();
  t.equal(fourth.restart, false, 'the fourth within the interval fails the job');
  t.match(fourth.restart ? '' : fourth.reason, /4 failures within 10000 ms, more than restartStrategy.maxFailures \(3\)/, 'and says why and what to change');
});

void t.test('failures older than intervalMs no longer count: a job that ran well for long is not one failure from dying', async (t) => {
  const { clock, strategy: s } = strategy({ maxFailures: 2, intervalMs: 60_000 });
  for (let hour = 0; hour < 5; hour++) {
    clock.now += 3_600_000;
    t.equal(s.onFailure().restart, true, `hour ${hour + 1}: first failure restores`);
    clock.now += 1000;
    t.equal(s.onFailure().restart, true, `hour ${hour + 1}: second failure restores`);
  }
  t.equal(s.onFailure().restart, false, 'a third within the same minute fails it');
});

void t.test('maxFailures 0: the first failure fails the job', async (t) => {
  const { strategy: s } = strategy({ maxFailures: 0 });
  t.equal(s.onFailure().restart, false);
});

void t.test('the backoff doubles while failures follow closely, stops at maxBackoffMs, and starts again after backoffResetMs without one', async (t) => {
  const { clock, strategy: s } = strategy({ maxFailures: 100, initialBackoffMs: 100, maxBackoffMs: 1000, backoffResetMs: 10_000 });
  const pauses: number[] = [];
  for (let i = 0; i < 6; i++) {
    clock.now += 500;
    const d = s.onFailure();
    pauses.push(d.restart ? d.backoffMs : -1);
  }
  t.same(pauses, [100, 200, 400, 800, 1000, 1000], 'doubling, capped');
  clock.now += 10_000;
  const after = s.onFailure();
  t.equal(after.restart && after.backoffMs, 100, 'after 10 s without a failure the pause is the initial one again');
  clock.now += 500;
  const next = s.onFailure();
  t.equal(next.restart && next.backoffMs, 200, 'and doubles from there');
});
