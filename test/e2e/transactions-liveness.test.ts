/**
 * Liveness of two-phase commit across worker-kill recoveries (issue 16, item 3): the smallest setup
 * that hung, 2 workers, worker kills only, checkpoints every 150 ms, 2PC transfers and 2PC reads of
 * whole groups of accounts, no lockWaitTimeoutMs. Afterwards every request is answered, every group
 * read saw its group's total, every transfer is all-or-nothing, no lock is left and no transaction
 * still runs. EDDY_TEST_SEED replays a run; EDDY_TEST_KILLS sets the number of kills.
 */
import t from 'tap';
import type { JobHandle, JobMetrics } from '../../index.js';
import { run, sampleUntilDone, sleep, tempDir } from '../fixtures/harness.js';
import { checkGroupRun, groupWorkload } from '../fixtures/transfer-groups.js';
import job, { type Applied, type Outcome, type Read } from '../fixtures/transfer-job.js';
import { seededRandom } from '../fixtures/transfer-model.js';

const seed = Number(process.env.EDDY_TEST_SEED ?? 1604);
const kills = Number(process.env.EDDY_TEST_KILLS ?? 12);

/** Kills a worker `kills` times, each 50-800 ms into a running attempt (a checkpoint or more behind it). */
async function killWhileRunning(handle: JobHandle, random: () => number, kills: number, done: () => boolean): Promise<number> {
  let killed = 0;
  await handle.checkpoint(); // a checkpoint to restore before the first kill
  while (killed < kills && !done()) {
    await sleep(50 + Math.floor(random() * 750));
    if (done()) break;
    if (handle.status().state !== 'running') {
      await sleep(50);
      continue;
    }
    await handle.killWorker(Math.floor(random() * 2));
    killed++;
  }
  return killed;
}

void t.test('2PC transfers and group reads across worker kills, no lock-wait timeout: every request answered, all-or-nothing, no lock left', async (t) => {
  t.comment(`seed ${seed} (EDDY_TEST_SEED), ${kills} kills (EDDY_TEST_KILLS)`);
  const random = seededRandom(seed);
  // The subtract leg takes 2 ms: PREPAREs, votes and locks are in flight at most cuts.
  const workload = groupWorkload(random, 20, 4000, 0.3, 40, { delayMs: 2 });
  const handle = run(t, job, {
    workers: 2,
    checkpointDir: tempDir(t, 'chk-tx-live'),
    checkpointIntervalMs: 150,
    maxRestarts: 1000,
    stateDir: tempDir(t, 'state-tx-live'),
    inputs: { requests: { records: workload.requests, ratePerSec: 250 } },
  });
  let ended = false;
  void handle.done.finally(() => (ended = true)).catch(() => {});
  const killing = killWhileRunning(handle, random, kills, () => ended);
  let last: JobMetrics | undefined;
  let limitAfterKills: number[] = [];
  let killed = 0;
  try {
    const summary = await sampleUntilDone(
      handle,
      250,
      (metrics) => {
        last = metrics;
        if (killed > 0) limitAfterKills = metrics.perWorker.map((m) => m.transactionLimit);
      },
      120_000,
      'the transfers and group reads',
    );
    killed = await killing;
    t.equal(summary.restarts, killed, `${killed} restores`);
    t.same(checkGroupRun(workload, handle.output<Applied>('applied'), handle.output<Outcome>('outcomes'), handle.output<Read>('reads')), [], 'every request answered once, reads see group totals, transfers all-or-nothing');
    t.equal(summary.totals.locksHeld, 0, 'no lock is left');
    t.equal(summary.totals.transactionsRunning, 0, 'no transaction still runs');
    t.equal(summary.totals.lockWaitTimeouts, 0, 'no lock-wait timeout (there is none)');
  } catch (error) {
    killed = await killing;
    const totals = last?.totals;
    t.fail(`stuck after ${killed} kills: ${String(error)}`, {
      transactionsRunning: totals?.transactionsRunning,
      locksHeld: totals?.locksHeld,
      transactionsWaiting: totals?.transactionsWaiting,
      mailboxDepth: totals?.mailboxDepth,
      limits: limitAfterKills,
      problems: checkGroupRun(workload, handle.output<Applied>('applied'), handle.output<Outcome>('outcomes'), handle.output<Read>('reads')).slice(0, 5),
    });
  }
});
