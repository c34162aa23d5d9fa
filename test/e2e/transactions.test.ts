import t from 'tap';
import type { DeadLetter } from '../../index.js';
import { run, sampleUntilDone, within } from '../fixtures/harness.js';
import job, {
  type AccountOp,
  type Applied,
  INITIAL_BALANCE,
  type MultiRequest,
  type Outcome,
  type Read,
  type ReadRequest,
  type Request,
  type TransferRequest,
} from '../fixtures/transfer-job.js';
import { checkAgainstSerialModel, crossedTransfers, finalBalances, finalOutcomes, randomTransfers, seededRandom } from '../fixtures/transfer-model.js';

const coordinator = (type: string, id: string): { type: string; id: string } => ({ type, id });

void t.test('a transaction whose second participant fails leaves no trace of the first: no state, messages, delayed messages or egress', async (t) => {
  const failing: MultiRequest = {
    txn: 'fails',
    invocations: [
      { account: 'x1', message: { op: 'add', amount: 10, txn: 'fails', audit: true } },
      { account: 'x2', message: { op: 'fail', txn: 'fails' } },
    ],
  };
  // Three invocations, two of them to one account: one participant, staged in declared order.
  const twice: MultiRequest = {
    txn: 'twice',
    invocations: [
      { account: 'y', message: { op: 'add', amount: 5, txn: 'twice' } },
      { account: 'z', message: { op: 'subtract', amount: 12, txn: 'twice' } },
      { account: 'y', message: { op: 'add', amount: 7, txn: 'twice', audit: true } },
    ],
  };
  const later: ReadRequest = { txn: 'read-after', accounts: ['x1', 'x2', 'y', 'z'] };
  const requests: Request[] = [
    { to: coordinator('tx/multi', 'm1'), message: failing },
    { to: coordinator('tx/multi', 'm2'), message: twice },
    { to: coordinator('tx/empty', 'e'), message: { txn: 'empty' } },
    { to: coordinator('tx/unknown-target', 'u'), message: { txn: 'unknown' } },
    { to: { type: 'tx/driver', id: 'd' }, message: { delayMs: 300, requests: [{ to: coordinator('tx/read-all', 'r'), message: later }] } },
  ];
  const handle = run(t, job, { workers: 2, inputs: { requests } });
  const summary = await within(handle.done, 60_000, 'the job');
  const applied = handle.output<Applied>('applied');
  const audit = handle.output<{ txn: string; via: string }>('audit');
  const outcomes = handle.output<Outcome>('outcomes');
  const reads = handle.output<Read>('reads');
  const deadLetters = handle.output<DeadLetter>('dead-letters');

  t.same(finalOutcomes(outcomes).get('fails'), 'aborted');
  t.same(applied.filter((a) => a.txn === 'fails'), [], 'no egress of the participant that succeeded');
  t.same(audit.filter((a) => a.txn === 'fails').map((a) => a.via), ['onFailure'], 'no message or delayed message of it either; the failure effects ran');
  t.same(new Map(reads.map((r) => [r.account, r.balance])), new Map([['x1', INITIAL_BALANCE], ['x2', INITIAL_BALANCE], ['y', INITIAL_BALANCE + 12], ['z', INITIAL_BALANCE - 12]]), 'and no state change');

  t.same(finalOutcomes(outcomes).get('twice'), 'committed');
  t.same(applied.filter((a) => a.account === 'y').map((a) => [a.version, a.amount]), [[1, 5], [2, 7]], 'both invocations of one account applied, in declared order');
  t.same(audit.filter((a) => a.txn === 'twice').map((a) => a.via).sort(), ['send', 'sendAfter'], 'committed messages and delayed messages are delivered');

  const codes = deadLetters.map((d) => d.code).sort();
  t.same(codes, ['EDDY_INVALID_ARGUMENT', 'EDDY_UNKNOWN_FUNCTION_TYPE'], 'misused coordinators are dead letters');
  t.match(deadLetters.find((d) => d.code === 'EDDY_INVALID_ARGUMENT')?.reason, /tx\/empty declared no invocations.*ctx\.invoke\(address, message\)/, 'naming the fix');
  t.match(deadLetters.find((d) => d.code === 'EDDY_UNKNOWN_FUNCTION_TYPE')?.reason, /unknown function type "tx\/nowhere"; add it to the job's functions/);
  t.equal(summary.totals.transactionsCommitted, 2);
  t.equal(summary.totals.transactionsAborted, 1);
  t.equal(summary.totals.locksHeld, 0, 'no lock is left');
});

void t.test('two thousand concurrent transfers over 10 accounts equal a serial execution, and 2PC readers always see the same total', async (t) => {
  const seed = 4242;
  t.comment(`seed ${seed}`);
  const random = seededRandom(seed);
  const accounts = Array.from({ length: 10 }, (_, i) => `acct-${i}`);
  const transfers: TransferRequest[] = [];
  const requests: Request[] = [];
  for (let i = 0; i < 2000; i++) {
    const from = accounts[Math.floor(random() * accounts.length)]!;
    let to = accounts[Math.floor(random() * accounts.length)]!;
    if (to === from) to = accounts[(accounts.indexOf(from) + 1) % accounts.length]!;
    // Up to 600 of 1000: now and then more than the account has.
    const transfer: TransferRequest = { txn: `t${i}`, from, to, amount: 1 + Math.floor(random() * 600) };
    transfers.push(transfer);
    // 20 coordinators: 20 transfers at a time contend for the 10 accounts.
    requests.push({ to: coordinator('tx/transfer', `c${i % 20}`), message: transfer });
    if (i % 20 === 0) requests.push({ to: coordinator('tx/read-all', `r${i % 7}`), message: { txn: `read-${i}`, accounts } satisfies ReadRequest });
  }
  const handle = run(t, job, { workers: 2, inputs: { requests } });
  const summary = await within(handle.done, 120_000, 'the job');
  const applied = handle.output<Applied>('applied');
  const outcomes = handle.output<Outcome>('outcomes');
  const final = finalOutcomes(outcomes);
  const committed = transfers.filter((transfer) => final.get(transfer.txn) === 'committed').length;
  const aborted = transfers.filter((transfer) => final.get(transfer.txn) === 'aborted').length;
  t.comment(`${committed} committed, ${aborted} aborted, ${summary.totals.transactionsRetryable} retried as deadlock victims, ${summary.totals.deadlocksFound} deadlocks`);
  t.ok(committed > 1000 && aborted > 0, 'most commit, some are refused for insufficient funds');
  t.same(checkAgainstSerialModel(transfers, applied, outcomes), [], 'no negative balance, and the outcome equals the serial replay in commit order');
  const balances = finalBalances(accounts, applied);
  t.equal([...balances.values()].reduce((a, b) => a + b, 0), accounts.length * INITIAL_BALANCE, 'the total is conserved');

  const reads = handle.output<Read>('reads');
  const sums = new Map<string, number>();
  for (const read of reads) sums.set(read.txn, (sums.get(read.txn) ?? 0) + read.balance);
  t.equal(sums.size, 100, 'every reader committed once');
  t.same([...new Set(sums.values())], [accounts.length * INITIAL_BALANCE], 'every reader saw the same total');
  t.equal(summary.totals.locksHeld, 0);
  t.equal(summary.totals.deadLetters, 0);
});

void t.test('crossed transfers deadlock; exactly one of each pair is retried, and both commit', async (t) => {
  const workers = 2;
  const pairs = 64;
  const { requests, transfers, crossing } = crossedTransfers(pairs, 100);
  const handle = run(t, job, { workers, inputs: { requests }, faultInjection: { delayFeedbackChannels: crossing } });
  const summary = await within(handle.done, 60_000, 'the job');
  const outcomes = handle.output<Outcome>('outcomes');
  const applied = handle.output<Applied>('applied');
  const final = finalOutcomes(outcomes);
  t.ok(transfers.every((transfer) => final.get(transfer.txn) === 'committed'), 'every transfer committed in the end');
  t.ok(summary.totals.deadlocksFound >= pairs / 2, `deadlocks are found (${summary.totals.deadlocksFound} of ${pairs} pairs) and counted`);
  const retriesPerPair = Array.from({ length: pairs }, (_, i) => outcomes.filter((o) => o.status === 'retryable' && (o.txn === `there-${i}` || o.txn === `back-${i}`)).length);
  t.ok(retriesPerPair.every((n) => n <= 1), `one victim per deadlock, never both (retries per pair: ${retriesPerPair.join(' ')})`);
  t.equal(retriesPerPair.reduce((a, b) => a + b, 0), summary.totals.deadlocksFound, 'each deadlock ended in exactly one retryable abort');
  t.equal(summary.totals.transactionsRetryable, summary.totals.deadlocksFound);
  t.same(checkAgainstSerialModel(transfers, applied, outcomes), []);
});

void t.test('stale probes injected on purpose never abort a transaction in a deadlock-free schedule', async (t) => {
  // Every transfer takes from the hub and gives to an account of its own: much waiting, no cycle.
  const transfers: TransferRequest[] = Array.from({ length: 300 }, (_, i) => ({ txn: `hub-${i}`, from: 'hub', to: `spoke-${i}`, amount: 1, delayMs: i % 3 }));
  const requests: Request[] = transfers.map((transfer, i) => ({ to: coordinator('tx/transfer', `h${i % 60}`), message: transfer }));
  const handle = run(t, job, { workers: 3, inputs: { requests }, faultInjection: { staleProbes: true } });
  const summary = await within(handle.done, 60_000, 'the job');
  const outcomes = handle.output<Outcome>('outcomes');
  t.equal(outcomes.filter((o) => o.status === 'committed').length, transfers.length, 'every transfer committed');
  t.equal(summary.totals.transactionsRetryable, 0, 'none was taken for a deadlock victim');
  t.equal(summary.totals.deadlocksFound, 0);
  // The same schedule without the drill has stale messages of its own (late probes): the injected ones must add many.
  const baseline = await within(run(t, job, { workers: 3, inputs: { requests } }).done, 60_000, 'the job without the drill');
  t.ok(
    summary.totals.staleProtocolMessages > 3 * baseline.totals.staleProtocolMessages,
    `the stale probes arrived and were ignored (${summary.totals.staleProtocolMessages} stale messages, ${baseline.totals.staleProtocolMessages} without the drill)`,
  );
  t.same(checkAgainstSerialModel(transfers, handle.output<Applied>('applied'), outcomes), []);
});

void t.test('maxTransactionsPerWorker bounds the transactions running at once; the others wait their turn and all commit, serially', async (t) => {
  const workers = 2;
  const random = seededRandom(5);
  const accounts = Array.from({ length: 40 }, (_, i) => `acct-${i}`);
  const transfers = randomTransfers(random, accounts, 400, 1, { delayMs: 2 });
  // One coordinator instance per transfer, all at once: without the bound all 400 would start together.
  const requests: Request[] = transfers.map((transfer, i) => ({ to: coordinator('tx/transfer', `c${i}`), message: transfer }));
  const handle = run(t, job, { workers, maxTransactionsPerWorker: 1, inputs: { requests } });
  let mostRunning = 0;
  let mostWaiting = 0;
  const summary = await sampleUntilDone(handle, 10, ({ totals, perWorker }) => {
    mostRunning = Math.max(mostRunning, ...perWorker.map((w) => w.transactionsRunning));
    mostWaiting = Math.max(mostWaiting, totals.transactionsWaiting);
  }, 60_000, 'the transfers');
  t.equal(mostRunning, 1, 'one transaction at a time per worker');
  t.ok(mostWaiting > 0, `requests waited for a slot (up to ${mostWaiting} seen)`);
  const final = finalOutcomes(handle.output<Outcome>('outcomes'));
  t.ok(transfers.every((transfer) => final.get(transfer.txn) === 'committed'), 'every transfer committed');
  t.same(checkAgainstSerialModel(transfers, handle.output<Applied>('applied'), handle.output<Outcome>('outcomes')), []);
  t.equal(summary.totals.transactionsWaiting, 0, 'nothing waits at the end');
});

void t.test('sagas have their own bound (maxSagasPerWorker): they run beside transactions held to one at a time, and all end', async (t) => {
  const workers = 2;
  const random = seededRandom(8);
  const accounts = Array.from({ length: 40 }, (_, i) => `acct-${i}`);
  const transfers = randomTransfers(random, accounts, 300, 1, { delayMs: 2 });
  // Interleaved 2PC and saga transfers, one coordinator instance each, all at once.
  const requests: Request[] = transfers.map((transfer, i) =>
    i % 2 === 0 ? { to: coordinator('tx/transfer', `c${i}`), message: transfer } : { to: coordinator('tx/transfer-saga', `s${i}`), message: transfer },
  );
  const handle = run(t, job, { workers, maxTransactionsPerWorker: 1, maxSagasPerWorker: 3, inputs: { requests } });
  let mostTransactions = 0;
  let mostSagas = 0;
  let mostTogether = 0;
  const summary = await sampleUntilDone(handle, 5, ({ perWorker }) => {
    mostTransactions = Math.max(mostTransactions, ...perWorker.map((w) => w.transactionsRunning));
    mostSagas = Math.max(mostSagas, ...perWorker.map((w) => w.sagasRunning));
    mostTogether = Math.max(mostTogether, ...perWorker.map((w) => w.transactionsRunning + w.sagasRunning));
  }, 60_000, 'the transfers');
  t.equal(mostTransactions, 1, 'one transaction at a time per worker');
  t.ok(mostSagas <= 3 && mostSagas > 1, `at most maxSagasPerWorker sagas at once per worker, and more than one (${mostSagas} seen)`);
  t.ok(mostTogether > 1, `sagas ran while a transaction did (${mostTogether} at once on a worker)`);
  const final = finalOutcomes(handle.output<Outcome>('outcomes'));
  t.equal(final.size, transfers.length, 'every transfer ended');
  const balances = finalBalances(accounts, handle.output<Applied>('applied'));
  t.equal([...balances.values()].reduce((a, b) => a + b, 0), accounts.length * INITIAL_BALANCE, 'the total is conserved');
  t.equal(summary.totals.transactionsWaiting, 0, 'nothing waits at the end');
});

void t.test('a request whose coordinator declares asynchronously holds its transaction slot while it declares', async (t) => {
  const workers = 2;
  const accounts = Array.from({ length: 40 }, (_, i) => `acct-${i}`);
  const transfers = randomTransfers(seededRandom(6), accounts, 60, 1);
  const requests: Request[] = transfers.map((transfer, i) => ({ to: coordinator('tx/slow-declaration', `c${i}`), message: transfer }));
  const handle = run(t, job, { workers, maxTransactionsPerWorker: 1, inputs: { requests } });
  let mostRunning = 0;
  await sampleUntilDone(handle, 5, ({ perWorker }) => {
    mostRunning = Math.max(mostRunning, ...perWorker.map((w) => w.transactionsRunning));
  }, 60_000, 'the transfers');
  t.equal(mostRunning, 1, 'one declaration or transaction at a time per worker');
  const final = finalOutcomes(handle.output<Outcome>('outcomes'));
  t.ok(transfers.every((transfer) => final.get(transfer.txn) === 'committed'), 'every transfer committed');
});

void t.test('a transaction waiting for a lock longer than its lockWaitTimeoutMs ends as retryable and commits on retry; one without a timeout just waits', async (t) => {
  const workers = 2;
  // The holder locks `y` at once, then spends 800 ms preparing its other leg: `y` stays locked that long.
  const holder: TransferRequest = { txn: 'holder', from: 'slow-x', to: 'y', amount: 10, delayMs: 800 };
  const impatient: TransferRequest = { txn: 'impatient', from: 'y', to: 'z', amount: 5 };
  const patient: TransferRequest = { txn: 'patient', from: 'y', to: 'w', amount: 5 };
  const requests: Request[] = [
    { to: coordinator('tx/transfer', 'c-holder'), message: holder },
    {
      to: { type: 'tx/driver', id: 'later' },
      message: {
        delayMs: 200,
        requests: [
          { to: coordinator('tx/impatient-transfer', 'c-impatient'), message: impatient },
          { to: coordinator('tx/transfer', 'c-patient'), message: patient },
        ],
      },
    },
  ];
  const handle = run(t, job, { workers, inputs: { requests } });
  const summary = await within(handle.done, 30_000, 'the job');
  const outcomes = handle.output<Outcome>('outcomes');
  const of = (txn: string): string[] => outcomes.filter((o) => o.txn === txn).map((o) => o.status);
  t.same(of('holder'), ['committed'], 'the lock holder commits, untouched');
  t.same(of('patient'), ['committed'], 'the transaction without a timeout waits and commits, never aborted');
  t.ok(of('impatient').length >= 2 && of('impatient').slice(0, -1).every((s) => s === 'retryable'), `the impatient one times out (${of('impatient').join(', ')})`);
  t.equal(of('impatient').at(-1), 'committed', 'and commits on a retry');
  t.equal(summary.totals.lockWaitTimeouts, of('impatient').length - 1, 'each timeout is counted');
  t.equal(summary.totals.transactionsRetryable, summary.totals.lockWaitTimeouts, 'and reported as retryable');
  t.equal(summary.totals.deadlocksFound, 0, 'no deadlock was involved');
  t.same(checkAgainstSerialModel([holder, impatient, patient], handle.output<Applied>('applied'), outcomes), []);
  t.equal(summary.totals.locksHeld, 0);
});

/** A transaction that looks at `shared` without changing it (read-only there) and moves 1 at `account`, which takes `delayMs`. */
function reader(txn: string, account: string, delayMs?: number): MultiRequest {
  const leg: AccountOp = { op: 'subtract', amount: 1, txn, ...(delayMs === undefined ? {} : { delayMs }) };
  return { txn, invocations: [{ account: 'shared', message: { op: 'noop', txn } }, { account, message: leg }] };
}

/** A request to `to` sent after `delayMs` (through the driver function). */
function later(delayMs: number, to: { type: string; id: string }, message: unknown): Request {
  return { to: { type: 'tx/driver', id: `later-${delayMs}` }, message: { delayMs, requests: [{ to, message }] } };
}

void t.test('read-only participants share their lock: a second reader commits while the first holds it; a writer waits for both', async (t) => {
  const workers = 2;
  // reader-1 holds `shared` (read-only) for as long as its other leg takes to prepare: 600 ms.
  const reader1 = reader('reader-1', 'slow', 600);
  const reader2 = reader('reader-2', 'other');
  const writer: MultiRequest = { txn: 'writer', invocations: [{ account: 'shared', message: { op: 'subtract', amount: 5, txn: 'writer' } }] };
  const requests: Request[] = [
    { to: coordinator('tx/multi', 'c-reader-1'), message: reader1 },
    later(150, coordinator('tx/multi', 'c-reader-2'), reader2),
    later(300, coordinator('tx/multi', 'c-writer'), writer),
  ];
  const handle = run(t, job, { workers, inputs: { requests } });
  const summary = await within(handle.done, 30_000, 'the job');
  const committed = handle.output<Outcome>('outcomes').filter((o) => o.status === 'committed').map((o) => o.txn);
  t.same(committed, ['reader-2', 'reader-1', 'writer'], 'reader-2 did not wait for reader-1; the writer waited for both');
  const applied = handle.output<Applied>('applied');
  t.same(applied.filter((a) => a.account === 'shared').map((a) => [a.txn, a.version, a.balance]), [['writer', 1, INITIAL_BALANCE - 5]], 'the writer applied once');
  t.equal(summary.totals.locksHeld, 0, 'no lock is left');
  t.equal(summary.totals.deadlocksFound, 0);
  t.equal(summary.totals.transactionsRetryable, 0);
});

void t.test('a writer that gave up waiting behind read-only holders lets later readers share the lock again', async (t) => {
  const workers = 2;
  const reader1 = reader('reader-1', 'slow', 800);
  const reader2 = reader('reader-2', 'other');
  // Waits behind reader-1 from 150 ms, gives up at 250 ms (lockWaitTimeoutMs 100) and retries only after 3 s.
  const writer: TransferRequest = { txn: 'writer', from: 'shared', to: 'elsewhere', amount: 5, retryDelayMs: 3000 };
  const requests: Request[] = [
    { to: coordinator('tx/multi', 'c-reader-1'), message: reader1 },
    later(150, coordinator('tx/impatient-transfer', 'c-writer'), writer),
    later(400, coordinator('tx/multi', 'c-reader-2'), reader2),
  ];
  const handle = run(t, job, { workers, inputs: { requests } });
  const summary = await within(handle.done, 30_000, 'the job');
  const outcomes = handle.output<Outcome>('outcomes');
  t.same(outcomes.filter((o) => o.status === 'committed').map((o) => o.txn), ['reader-2', 'reader-1', 'writer'], 'reader-2 shared the lock with reader-1; the writer committed on its retry');
  t.ok(summary.totals.lockWaitTimeouts >= 1, 'the writer gave up waiting');
  t.equal(summary.totals.locksHeld, 0, 'no lock is left');
});

void t.test('under hot contention the workers lower their admission limit; the transfers stay serial', async (t) => {
  const workers = 2;
  const random = seededRandom(11);
  const accounts = ['hot-0', 'hot-1', 'hot-2'];
  const transfers = randomTransfers(random, accounts, 600, 1);
  const requests: Request[] = transfers.map((transfer, i) => ({ to: coordinator('tx/transfer', `c${i}`), message: transfer }));
  const handle = run(t, job, { workers, inputs: { requests } });
  const summary = await within(handle.done, 120_000, 'the transfers');
  const limits = summary.perWorker.map((w) => w.transactionLimit);
  // Every transfer touches two of three accounts: nearly every one waits for a lock.
  t.ok(limits.every((limit) => limit < 256), `each worker lowered its limit from 256 (now ${limits.join(', ')})`);
  const final = finalOutcomes(handle.output<Outcome>('outcomes'));
  t.ok(transfers.every((transfer) => final.get(transfer.txn) === 'committed'), 'every transfer committed in the end');
  t.same(checkAgainstSerialModel(transfers, handle.output<Applied>('applied'), handle.output<Outcome>('outcomes')), []);
});
