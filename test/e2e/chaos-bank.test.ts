/**
 * Chaos: worker threads killed at seeded random moments, many times in one run, while checkpoints
 * are taken every 50 ms. The job restores its last checkpoint each time; afterwards its committed
 * output and state must be exactly those of a run without failures. EDDY_TEST_SEED replays a run.
 */
import t from 'tap';
import type { Response } from '../../examples/bank/account.js';
import { insertRequests, operationRequests, seededRandom } from '../../examples/bank/workload.js';
import chaosBankJob from '../fixtures/chaos-bank-job.js';
import { killRepeatedly, LogLines, run, tempDir, within } from '../fixtures/harness.js';

const seed = Number(process.env.EDDY_TEST_SEED ?? 20261128);

void t.test('chaos, bank: accounts behind branches, five worker kills; every response once, balances as a sequential run gives them', async (t) => {
  t.comment(`seed ${seed} (set EDDY_TEST_SEED to replay)`);
  const random = seededRandom(seed);
  const accounts = 200;
  const requests = [
    ...insertRequests(accounts, seed, 500),
    ...operationRequests({ accounts, operations: 25_000, seed, mix: { read: 0.1, write: 0.1, add: 0.4, subtract: 0.4 }, maxAmount: 200 }),
  ];
  const logs = new LogLines();
  const handle = run(t, chaosBankJob, {
    workers: 2,
    checkpointDir: tempDir(t, 'chk-chaos-bank'),
    checkpointIntervalMs: 50,
    maxRestarts: 10,
    log: logs.log,
    inputs: { requests: { records: requests, ratePerSec: 10_000 } },
  });
  await killRepeatedly(handle, 2, 5, random);
  const summary = await within(handle.done, 180_000, 'the chaos run');
  t.equal(summary.restarts, 5, 'five restores');

  // The sequential model: each account's requests in input order.
  const balances = new Map<string, number>();
  const expected = new Map<string, Pick<Response, 'status' | 'balance'>>();
  for (const request of requests) {
    const balance = balances.get(request.account);
    if (request.op === 'insert') {
      balances.set(request.account, request.record.balance);
      expected.set(request.requestId, { status: 200, balance: request.record.balance });
    } else if (request.op === 'add') {
      balances.set(request.account, balance! + request.amount);
      expected.set(request.requestId, { status: 200, balance: balance! + request.amount });
    } else if (request.op === 'subtract') {
      if (balance! < request.amount) expected.set(request.requestId, { status: 422 });
      else {
        balances.set(request.account, balance! - request.amount);
        expected.set(request.requestId, { status: 200, balance: balance! - request.amount });
      }
    } else expected.set(request.requestId, { status: 200, balance: request.op === 'read' ? balance! : undefined });
  }

  const responses = handle.output<Response>('responses');
  const answered = new Map<string, number>();
  for (const response of responses) answered.set(response.requestId, (answered.get(response.requestId) ?? 0) + 1);
  t.equal(answered.size, requests.length, 'every request answered');
  t.equal([...answered.values()].filter((n) => n > 1).length, 0, 'no request answered twice');
  t.equal(handle.output('dead-letters').length, 0, 'nothing dead-lettered');
  const refused = responses.filter((r) => r.status === 422).length;
  t.ok(refused > 0, `${refused} subtracts refused for insufficient funds`);
  t.same(
    responses.filter((r) => r.status !== expected.get(r.requestId)!.status).slice(0, 3),
    [],
    'every request is refused or done as in the sequential run',
  );
  const wrong = responses.filter((r) => r.op !== 'write' && r.balance !== expected.get(r.requestId)!.balance);
  t.same(wrong.slice(0, 3), [], 'every response carries the balance of the sequential run');
  const final = new Map<string, number>();
  for (const response of responses) if (response.balance !== undefined) final.set(response.account, response.balance);
  t.same(final, balances, 'final balances equal the model (and so the total is conserved)');
});

