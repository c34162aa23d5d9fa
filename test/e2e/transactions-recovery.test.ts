/**
 * Transactions across crashes: workers killed at seeded moments while two-phase-commit transfers run
 * with checkpoints every 50 ms. Locks, staged effects, votes and coordinator records are keyed state,
 * so after each restore every transaction is all-or-nothing and the history equals a serial one; the
 * same holds across stops and restarts from the state directory.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { killRepeatedly, run, tempDir, waitFor, within } from '../fixtures/harness.js';
import fileJob from '../fixtures/transfer-file-job.js';
import job, { type Applied, type Outcome, type Request } from '../fixtures/transfer-job.js';
import { checkTransferRun, randomTransfers, seededRandom } from '../fixtures/transfer-model.js';

void t.test('2PC transfers with three worker kills: each transaction all-or-nothing, the history serial, the total conserved', async (t) => {
  const seed = Number(process.env.EDDY_TEST_SEED ?? 77);
  t.comment(`seed ${seed} (EDDY_TEST_SEED)`);
  const random = seededRandom(seed);
  const accounts = Array.from({ length: 10 }, (_, i) => `acct-${i}`);
  const transfers = randomTransfers(random, accounts, 1500, 600);
  const requests: Request[] = transfers.map((transfer, i) => ({ to: { type: 'tx/transfer', id: `c${i % 20}` }, message: transfer }));
  const handle = run(t, job, {
    workers: 2,
    checkpointDir: tempDir(t, 'chk-tx'),
    checkpointIntervalMs: 50,
    maxRestarts: 10,
    inputs: { requests: { records: requests, ratePerSec: 400 } },
  });
  await killRepeatedly(handle, 2, 3, random);
  const summary = await within(handle.done, 180_000, 'the transfers');
  t.equal(summary.restarts, 3, 'three restores');
  checkTransferRun(t, transfers, accounts, handle.output<Applied>('applied'), handle.output<Outcome>('outcomes'), summary.totals.locksHeld);
});

void t.test('stop() in the middle of 2PC transfers and a restart from the state directory: locks, staged effects and coordinator records carry over', async (t) => {
  const random = seededRandom(91);
  const accounts = Array.from({ length: 10 }, (_, i) => `acct-${i}`);
  // The subtract leg takes 3 ms: a stop always finds transactions holding locks.
  const transfers = randomTransfers(random, accounts, 900, 600, { delayMs: 3 });
  const requests: Request[] = transfers.map((transfer, i) => ({ to: { type: 'tx/transfer', id: `c${i % 20}` }, message: transfer }));
  const stateDir = tempDir(t, 'stop-tx');
  // Files, one split each: their read positions survive a stop, so each run goes on where the last stopped.
  const files = [0, 1, 2, 3].map((split) => join(tempDir(t, 'stop-tx-input'), `requests-${split}.ndjson`));
  files.forEach((file, split) => writeFileSync(file, requests.filter((_, i) => i % files.length === split).map((r) => JSON.stringify(r) + '\n').join('')));
  const inputs = { requests: files };
  const applied: Applied[] = [];
  const outcomes: Outcome[] = [];
  const locksAtStops: number[] = [];
  for (let round = 0; round < 3; round++) {
    // stopTimeoutMs 0: the stop parks running transactions at once instead of letting them drain.
    const handle = run(t, fileJob, { workers: 2, stateDir, stopTimeoutMs: 0, inputs });
    await waitFor(() => handle.output('outcomes').length >= 100, 'outcomes of this round');
    const summary = await handle.stop();
    locksAtStops.push(summary.totals.locksHeld);
    applied.push(...handle.output<Applied>('applied'));
    outcomes.push(...handle.output<Outcome>('outcomes'));
  }
  const last = run(t, fileJob, { workers: 2, stateDir, inputs });
  const summary = await within(last.done, 120_000, 'the remaining transfers');
  applied.push(...last.output<Applied>('applied'));
  outcomes.push(...last.output<Outcome>('outcomes'));
  t.ok(locksAtStops.some((locks) => locks > 0), `stops came while locks were held (${locksAtStops.join(', ')})`);
  checkTransferRun(t, transfers, accounts, applied, outcomes, summary.totals.locksHeld);
});
