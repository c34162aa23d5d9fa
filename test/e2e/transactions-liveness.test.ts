/**
 * Liveness of two-phase commit across worker-kill recoveries (issue 16, item 3): the smallest setup
 * that hung, 2 workers, worker kills only, checkpoints every 150 ms, 2PC transfers and 2PC reads of
 * whole groups of accounts, no lockWaitTimeoutMs. Afterwards every request is answered, every group
 * read saw its group's total, every transfer is all-or-nothing, no lock is left, no transaction
 * still runs, and the adaptive transaction limit grows again once the kills stop. Then deadlocks
 * whose wait-for cycles span a restore. EDDY_TEST_SEED replays a run; EDDY_TEST_KILLS sets the number
 * of kills of the first test.
 */
import t from 'tap';
import type { JobHandle, JobMetrics } from '../../index.js';
import { run, sampleUntilDone, sleep, tempDir, within } from '../fixtures/harness.js';
import { checkGroupRun, groupWorkload, withQuietTail } from '../fixtures/transfer-groups.js';
import job, { type Applied, type Outcome, type Read } from '../fixtures/transfer-job.js';
import { checkAgainstSerialModel, crossedTransfers, finalOutcomes, seededRandom } from '../fixtures/transfer-model.js';

const seed = Number(process.env.EDDY_TEST_SEED ?? 1604);
const kills = Number(process.env.EDDY_TEST_KILLS ?? 8);

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

void t.test('2PC transfers and group reads across worker kills, no lock-wait timeout: every request answered, all-or-nothing, no lock left, the transaction limit recovers', async (t) => {
  t.comment(`seed ${seed} (EDDY_TEST_SEED), ${kills} kills (EDDY_TEST_KILLS)`);
  const random = seededRandom(seed);
  // Five groups: most transactions wait for locks, so the adaptive limit drops. The subtract leg takes
  // 2 ms: PREPAREs, votes and locks are in flight at most cuts. The last 150 transfers never wait for
  // a lock: over them the limit must grow again.
  const workload = withQuietTail(groupWorkload(random, 5, 4000, 0.3, 40, { delayMs: 2 }), 150);
  const handle = run(t, job, {
    workers: 2,
    checkpointDir: tempDir(t, 'chk-tx-live'),
    stateDir: tempDir(t, 'state-tx-live'),
    checkpointIntervalMs: 150,
    maxRestarts: 1000,
    inputs: { requests: { records: workload.requests, ratePerSec: 250 } },
  });
  let ended = false;
  void handle.done.finally(() => (ended = true)).catch(() => {});
  // Kills stop once 3,000 requests are answered: the rest runs undisturbed.
  const killing = killWhileRunning(handle, random, kills, () => ended || handle.output('outcomes').length >= 3000);
  let last: JobMetrics | undefined;
  let killsOver = false;
  void killing.finally(() => (killsOver = true));
  /** Per worker, the lowest transaction limit seen after the last kill's restore. */
  const lowest = [Infinity, Infinity];
  let killed = 0;
  try {
    const summary = await sampleUntilDone(
      handle,
      100,
      (metrics) => {
        last = metrics;
        if (killsOver && handle.status().state === 'running') metrics.perWorker.forEach((m, w) => (lowest[w] = Math.min(lowest[w]!, m.transactionLimit)));
      },
      150_000,
      'the transfers and group reads',
    );
    killed = await killing;
    t.equal(summary.restarts, killed, `${killed} restores`);
    t.same(checkGroupRun(workload, handle.output<Applied>('applied'), handle.output<Outcome>('outcomes'), handle.output<Read>('reads')), [], 'every request answered once, reads see group totals, transfers all-or-nothing');
    t.equal(summary.totals.locksHeld, 0, 'no lock is left');
    t.equal(summary.totals.transactionsRunning, 0, 'no transaction still runs');
    t.equal(summary.totals.transactionsWaiting, 0, 'no request waits for a transaction slot');
    t.equal(summary.totals.lockWaitTimeouts, 0, 'no lock-wait timeout (there is none)');
    const final = summary.perWorker.map((m) => m.transactionLimit);
    t.comment(`transaction limit per worker: lowest after the kills ${lowest.join(', ')}, at the end ${final.join(', ')}`);
    final.forEach((limit, w) => {
      if (lowest[w]! < 256) t.ok(limit > lowest[w]!, `worker ${w}: the limit grew back from ${lowest[w]} (to ${limit})`);
      else t.equal(limit, 256, `worker ${w}: the limit stayed at its maximum`);
    });
  } catch (error) {
    killed = await killing;
    const totals = last?.totals;
    t.fail(`stuck after ${killed} kills: ${String(error)}`, {
      transactionsRunning: totals?.transactionsRunning,
      locksHeld: totals?.locksHeld,
      transactionsWaiting: totals?.transactionsWaiting,
      mailboxDepth: totals?.mailboxDepth,
      limits: last?.perWorker.map((m) => m.transactionLimit),
      problems: checkGroupRun(workload, handle.output<Applied>('applied'), handle.output<Outcome>('outcomes'), handle.output<Read>('reads')).slice(0, 5),
    });
  }
});

void t.test('crossed transfers deadlock while workers are killed: cycles that span a restore are still found, and every transfer commits', async (t) => {
  const random = seededRandom(seed + 1);
  const workers = 2;
  const pairs = 48;
  const { requests, transfers, crossing } = crossedTransfers(pairs, 300);
  const handle = run(t, job, {
    workers,
    checkpointDir: tempDir(t, 'chk-tx-deadlock'),
    checkpointIntervalMs: 50,
    maxRestarts: 100,
    inputs: { requests },
    faultInjection: { delayFeedbackChannels: crossing },
  });
  let ended = false;
  void handle.done.finally(() => (ended = true)).catch(() => {});
  const killed = await killWhileRunning(handle, random, 3, () => ended);
  const summary = await within(handle.done, 120_000, 'the crossed transfers');
  t.equal(summary.restarts, killed, `${killed} restores`);
  const outcomes = handle.output<Outcome>('outcomes');
  const final = finalOutcomes(outcomes);
  t.equal(transfers.filter((transfer) => final.get(transfer.txn) !== 'committed').length, 0, 'every transfer committed in the end');
  const victims = new Set(outcomes.filter((o) => o.status === 'retryable').map((o) => o.txn.replace(/^(there|back)-/, '')));
  // How many pairs cross in time depends on the load and on where the kills fall (a restore replays a
  // pair one after the other); liveness is the commit of every transfer above, this checks that the
  // cycles did form and were broken rather than waited out.
  t.ok(victims.size > 0, `deadlocks were found and broken (${victims.size} of ${pairs} pairs had a victim)`);
  t.same(checkAgainstSerialModel(transfers, handle.output<Applied>('applied'), outcomes), [], 'in a serial order');
  t.equal(summary.totals.locksHeld, 0, 'no lock is left');
  t.equal(summary.totals.lockWaitTimeouts, 0, 'no lock-wait timeout (there is none)');
});
