import t from 'tap';
import type { DeadLetter } from '../../index.js';
import { run, within } from '../fixtures/harness.js';
import job, { type Applied, INITIAL_BALANCE, type MultiSagaRequest, type Outcome, type Read, type ReadRequest, type Request, type TransferRequest } from '../fixtures/transfer-job.js';
import { finalOutcomes } from '../fixtures/transfer-model.js';

const coordinator = (type: string, id: string): { type: string; id: string } => ({ type, id });

void t.test('a failing saga compensates exactly the steps that succeeded, also late ones; failing compensations are retried and surfaced', async (t) => {
  const late: MultiSagaRequest = {
    txn: 'late',
    steps: [
      // Succeeds only after the third step failed: compensated all the same.
      { account: 'm1', forward: { op: 'add', amount: 10, txn: 'late', delayMs: 80 }, compensation: { op: 'subtract', amount: 10, txn: 'late' } },
      { account: 'm2', forward: { op: 'add', amount: 20, txn: 'late' }, compensation: { op: 'subtract', amount: 20, txn: 'late' } },
      { account: 'm3', forward: { op: 'fail', txn: 'late' }, compensation: { op: 'add', amount: 999, txn: 'late' } },
    ],
  };
  // The compensation cannot succeed until money arrives (at 200 ms): retried until it does.
  const recovers: MultiSagaRequest = {
    txn: 'recovers',
    steps: [
      { account: 'k1', forward: { op: 'add', amount: 500, txn: 'recovers' }, compensation: { op: 'subtract', amount: 2000, txn: 'recovers' } },
      { account: 'k2', forward: { op: 'fail', txn: 'recovers' }, compensation: { op: 'noop', txn: 'recovers' } },
    ],
  };
  // The compensation always fails: after its last attempt it goes to the dead letters.
  const abandoned: MultiSagaRequest = {
    txn: 'abandoned',
    steps: [
      { account: 'k3', forward: { op: 'add', amount: 5, txn: 'abandoned' }, compensation: { op: 'fail', txn: 'abandoned' } },
      { account: 'k4', forward: { op: 'fail', txn: 'abandoned' }, compensation: { op: 'noop', txn: 'abandoned' } },
    ],
  };
  const fine: MultiSagaRequest = {
    txn: 'fine',
    steps: [
      { account: 'n1', forward: { op: 'add', amount: 1, txn: 'fine' }, compensation: { op: 'subtract', amount: 1, txn: 'fine' } },
      { account: 'n1', forward: { op: 'add', amount: 2, txn: 'fine' }, compensation: { op: 'subtract', amount: 2, txn: 'fine' } },
    ],
  };
  const requests: Request[] = [
    { to: coordinator('tx/multi-saga', 's1'), message: late },
    { to: coordinator('tx/multi-saga', 's2'), message: recovers },
    { to: coordinator('tx/multi-saga', 's3'), message: abandoned },
    { to: coordinator('tx/multi-saga', 's4'), message: fine },
    { to: { type: 'tx/driver', id: 'deposit' }, message: { delayMs: 200, requests: [{ to: { type: 'tx/account', id: 'k1' }, message: { op: 'add', amount: 1000, txn: 'deposit' } }] } },
  ];
  const handle = run(t, job, { workers: 2, inputs: { requests } });
  const summary = await within(handle.done, 60_000, 'the job');
  const applied = handle.output<Applied>('applied');
  const outcomes = finalOutcomes(handle.output<Outcome>('outcomes'));
  const history = (account: string): Array<[string, number]> => applied.filter((a) => a.account === account).map((a) => [a.op, a.amount]);

  t.equal(outcomes.get('late'), 'aborted');
  t.same(history('m1'), [['add', 10], ['subtract', 10]], 'the late success is compensated');
  t.same(history('m2'), [['add', 20], ['subtract', 20]], 'the early success is compensated');
  t.same(history('m3'), [], 'the failed step is not compensated (its effects were discarded)');

  t.equal(outcomes.get('recovers'), 'aborted', 'the saga ends once its compensation succeeded');
  t.same(history('k1').at(-1), ['subtract', 2000], 'the compensation was applied in the end');
  t.equal(applied.filter((a) => a.account === 'k1').at(-1)?.balance, INITIAL_BALANCE + 500 + 1000 - 2000);

  t.equal(outcomes.get('abandoned'), 'aborted', 'the failure effects run after the compensation was given up');
  const letters = handle.output<DeadLetter>('dead-letters').filter((d) => d.code === 'EDDY_COMPENSATION_FAILED');
  t.equal(letters.length, 1, 'the abandoned compensation is a dead letter');
  t.same(letters[0]?.target, { type: 'tx/account', id: 'k3' }, 'naming the participant');
  t.same(JSON.parse(Buffer.from(letters[0]?.payloadBase64 ?? '', 'base64').toString('utf8')), { op: 'fail', txn: 'abandoned' }, 'and carrying the compensation');
  t.equal(summary.totals.compensationsAbandoned, 1);
  // 'abandoned' failed all 8 attempts; 'recovers' failed at least once before the deposit came.
  t.ok(summary.totals.compensationsFailed >= 9, `failed compensations are counted (${summary.totals.compensationsFailed})`);

  t.equal(outcomes.get('fine'), 'committed');
  t.same(history('n1'), [['add', 1], ['add', 2]], 'two steps to one instance both run, nothing compensated');
  t.equal(summary.totals.sagasSucceeded, 1);
  t.equal(summary.totals.sagasFailed, 3);
});

void t.test('readers of two accounts always see their constant sum under 2PC; under sagas they can see an intermediate sum', async (t) => {
  // One schedule shows it for certain (first in the input, so it starts at once): a saga debits p3
  // at once, while q3 is busy for 300 ms before its credit step fails; a saga reader 100 ms in sees
  // p3 debited, then q3 not credited (its read waits behind the busy steps), before the compensation.
  const shown = 'saga-shown';
  const requests: Request[] = [
    {
      to: coordinator('tx/multi-saga', 'shown'),
      message: {
        txn: shown,
        steps: [
          { account: 'p3', forward: { op: 'subtract', amount: 10, txn: shown }, compensation: { op: 'add', amount: 10, txn: shown } },
          { account: 'q3', forward: { op: 'noop', txn: shown, delayMs: 300 }, compensation: { op: 'noop', txn: shown } },
          { account: 'q3', forward: { op: 'fail', txn: shown }, compensation: { op: 'noop', txn: shown } },
        ],
      } satisfies MultiSagaRequest,
    },
    {
      to: { type: 'tx/driver', id: 'shown' },
      message: { delayMs: 100, requests: [{ to: coordinator('tx/read-all-saga', 'shown-reader'), message: { txn: 'saga-read-shown', accounts: ['p3', 'q3'] } satisfies ReadRequest }] },
    },
  ];
  for (const [protocol, from, to] of [['tpc', 'p1', 'q1'], ['saga', 'p2', 'q2']] as const) {
    const transfer = protocol === 'tpc' ? 'tx/transfer' : 'tx/transfer-saga';
    const reader = protocol === 'tpc' ? 'tx/read-all' : 'tx/read-all-saga';
    for (let i = 0; i < 200; i++) {
      const [a, b] = i % 2 === 0 ? [from, to] : [to, from];
      // The saga's second step is slow, so its first step's effect is visible for a while.
      requests.push({ to: coordinator(transfer, `${protocol}-c${i % 8}`), message: { txn: `${protocol}-${i}`, from: a, to: b, amount: 10, delayMs: 3 } satisfies TransferRequest });
      if (i % 2 === 0) requests.push({ to: coordinator(reader, `${protocol}-r${i % 6}`), message: { txn: `${protocol}-read-${i}`, accounts: [from, to] } satisfies ReadRequest });
    }
  }
  const handle = run(t, job, { workers: 2, inputs: { requests } });
  await within(handle.done, 60_000, 'the job');
  const sums = new Map<string, number>();
  for (const read of handle.output<Read>('reads')) sums.set(read.txn, (sums.get(read.txn) ?? 0) + read.balance);
  const tpc = [...sums].filter(([txn]) => txn.startsWith('tpc-')).map(([, sum]) => sum);
  const saga = [...sums].filter(([txn]) => txn.startsWith('saga-')).map(([, sum]) => sum);
  t.equal(tpc.length, 100);
  t.same([...new Set(tpc)], [2 * INITIAL_BALANCE], '2PC: serializable, every read sees the same sum');
  t.equal(saga.length, 101);
  t.equal(sums.get('saga-read-shown'), 2 * INITIAL_BALANCE - 10, 'sagas are read-uncommitted: the reader saw the saga half done');
  const intermediate = saga.filter((sum) => sum !== 2 * INITIAL_BALANCE).length - 1;
  t.comment(`of the 100 readers racing random saga transfers, ${intermediate} saw one half done`);
  const final = finalOutcomes(handle.output<Outcome>('outcomes'));
  t.equal(final.get(shown), 'aborted', 'the saga that was seen half done failed and was compensated');
});
