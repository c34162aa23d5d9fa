import fc from 'fast-check';
import t from 'tap';
import { run, within } from '../fixtures/harness.js';
import job, { type Applied, INITIAL_BALANCE, type Outcome, type Request, type TransferRequest } from '../fixtures/transfer-job.js';
import { checkAgainstSerialModel, finalBalances } from '../fixtures/transfer-model.js';

/**
 * Random schedules of transfers: how many workers, which accounts, amounts (some overdrawing), when
 * each transaction starts and how long its subtract leg takes (the delays stand in for slow channels
 * and handlers), and which also look at an account without changing it (shared locks). Every run must
 * be serializable and conserve money, whatever deadlocks it makes.
 */
void t.test('random schedules of transfers over worker counts and delays are serializable', async (t) => {
  const schedule = fc.record({
    workers: fc.integer({ min: 2, max: 3 }),
    accounts: fc.integer({ min: 3, max: 6 }),
    coordinators: fc.integer({ min: 2, max: 12 }),
    transfers: fc.array(
      fc.record({
        from: fc.nat(5),
        to: fc.nat(5),
        amount: fc.integer({ min: 1, max: 1200 }),
        startMs: fc.nat(40),
        delayMs: fc.nat(4),
        check: fc.option(fc.nat(5), { nil: undefined }),
      }),
      { minLength: 10, maxLength: 60 },
    ),
  });
  await fc.assert(
    fc.asyncProperty(schedule, async (s) => {
      const accounts = Array.from({ length: s.accounts }, (_, i) => `p-${i}`);
      const transfers: TransferRequest[] = s.transfers.map((x, i) => {
        const from = accounts[x.from % s.accounts]!;
        const to = accounts[(x.from + 1 + (x.to % (s.accounts - 1))) % s.accounts]!;
        // Some also look at a third account without changing it: a read-only participant (shared lock).
        const check = x.check === undefined ? {} : { check: accounts[x.check % s.accounts]! };
        return { txn: `p${i}`, from, to, amount: x.amount, ...(x.delayMs > 0 ? { delayMs: x.delayMs } : {}), ...check };
      });
      const requests: Request[] = transfers.map((transfer, i) => ({
        to: { type: 'tx/driver', id: `d${i}` },
        message: { delayMs: s.transfers[i]!.startMs, requests: [{ to: { type: 'tx/transfer', id: `c${i % s.coordinators}` }, message: transfer }] },
      }));
      const handle = run(t, job, { workers: s.workers, inputs: { requests } });
      const summary = await within(handle.done, 60_000, 'a random schedule');
      const applied = handle.output<Applied>('applied');
      const problems = checkAgainstSerialModel(transfers, applied, handle.output<Outcome>('outcomes'));
      const total = [...finalBalances(accounts, applied).values()].reduce((a, b) => a + b, 0);
      if (total !== s.accounts * INITIAL_BALANCE) problems.push(`total ${total}, expected ${s.accounts * INITIAL_BALANCE}`);
      if (summary.totals.locksHeld !== 0) problems.push(`${summary.totals.locksHeld} locks left`);
      if (summary.totals.transactionsRetryable !== summary.totals.deadlocksFound) problems.push('a retryable abort without a deadlock');
      t.same(problems, [], `${s.workers} workers, ${s.accounts} accounts, ${transfers.length} transfers: ${summary.totals.deadlocksFound} deadlocks`);
      return problems.length === 0;
    }),
    { numRuns: 3, seed: 20261128, endOnFailure: true },
  );
});
