/**
 * Transactions across crashes: workers killed at seeded moments while two-phase-commit transfers run
 * with checkpoints every 50 ms. Locks, staged effects, votes and coordinator records are keyed state,
 * so after each restore every transaction is all-or-nothing and the history equals a serial one.
 */
import t from 'tap';
import { killRepeatedly, run, tempDir, within } from '../fixtures/harness.js';
import job, { type Applied, INITIAL_BALANCE, type Outcome, type Request, type TransferRequest } from '../fixtures/transfer-job.js';
import { checkAgainstSerialModel, finalBalances, finalOutcomes, seededRandom } from '../fixtures/transfer-model.js';

void t.test('2PC transfers with three worker kills: each transaction all-or-nothing, the history serial, the total conserved', async (t) => {
  const seed = Number(process.env.EDDY_TEST_SEED ?? 77);
  t.comment(`seed ${seed} (EDDY_TEST_SEED)`);
  const random = seededRandom(seed);
  const accounts = Array.from({ length: 10 }, (_, i) => `acct-${i}`);
  const transfers: TransferRequest[] = [];
  const requests: Request[] = [];
  for (let i = 0; i < 1500; i++) {
    const from = accounts[Math.floor(random() * accounts.length)]!;
    let to = accounts[Math.floor(random() * accounts.length)]!;
    if (to === from) to = accounts[(accounts.indexOf(from) + 1) % accounts.length]!;
    const transfer: TransferRequest = { txn: `t${i}`, from, to, amount: 1 + Math.floor(random() * 600) };
    transfers.push(transfer);
    requests.push({ to: { type: 'tx/transfer', id: `c${i % 20}` }, message: transfer });
  }
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
  const applied = handle.output<Applied>('applied');
  const outcomes = handle.output<Outcome>('outcomes');
  const final = finalOutcomes(outcomes);
  t.equal(transfers.filter((transfer) => final.get(transfer.txn) === undefined).length, 0, 'every transfer has an outcome');
  const decided = outcomes.filter((o) => o.status !== 'retryable');
  t.equal(new Set(decided.map((o) => o.txn)).size, decided.length, 'one commit or abort per transfer, never two');
  t.same(checkAgainstSerialModel(transfers, applied, outcomes), [], 'committed transfers applied both legs once, aborted ones none, in a serial order');
  const balances = finalBalances(accounts, applied);
  t.equal([...balances.values()].reduce((a, b) => a + b, 0), accounts.length * INITIAL_BALANCE, 'the total is conserved');
  t.equal(summary.totals.locksHeld, 0, 'no lock is left');
});
