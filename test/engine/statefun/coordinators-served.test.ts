import t, { type Test } from 'tap';
import { type ServedDeadLetter, StatefunHandler } from '../../../engine/statefun/handler.js';
import { decodeOrder, LOCK_WAIT_TYPENAME, ORDER_STATE, TXN_STATE } from '../../../engine/statefun/coordinators-served.js';
import { sfAddress, type TypedValue, typedValue, valueBytes } from '../../../engine/statefun/protocol.js';
import { EDDY_JSON_TYPENAME } from '../../../engine/statefun/types.js';
import { decodeEnvelope } from '../../../engine/wire/envelope.js';
import job, { account, type Applied, INITIAL_BALANCE, type Outcome, type Read, transfer } from '../../fixtures/transfer-job.js';
import { defineFunction, defineJob, valueState } from '../../../index.js';
import { keyOf, StatefunSimulator } from './statefun-sim.js';

/**
 * The bank's 2PC transfers, consistent reads and sagas served by `eddy serve`'s handler, driven the
 * way StateFun drives an endpoint (statefun-sim.ts): random interleavings of per-address batches,
 * replies lost and requests sent again, and Flink failovers back to a checkpoint.
 */

/** 2PC transfers and read-alls use these; sagas, whose intermediate states others can see, use SAGA_ACCOUNTS. */
const ACCOUNTS = ['a', 'b', 'c', 'd', 'e'];
const SAGA_ACCOUNTS = ['f', 'g', 'h'];
const json = (value: unknown): TypedValue => typedValue(EDDY_JSON_TYPENAME, new Uint8Array(Buffer.from(JSON.stringify(value))));
const decode = <T>(value: TypedValue): T => JSON.parse(Buffer.from(valueBytes(value)).toString('utf8')) as T;

interface Workload {
  transfers: number;
  reads: number;
  sagas: number;
}

function submit(sim: StatefunSimulator, work: Workload, seed: number): { expected: Set<string> } {
  const random = sim.random;
  const expected = new Set<string>();
  const pick = (among = ACCOUNTS): string => among[Math.floor(random() * among.length)]!;
  const pair = (among = ACCOUNTS): [string, string] => {
    const from = pick(among);
    let to = pick(among);
    while (to === from) to = pick(among);
    return [from, to];
  };
  let last: [string, string] = ['a', 'b'];
  for (let i = 0; i < work.transfers; i++) {
    // Every other transfer goes the opposite way of the one before: the pattern that deadlocks.
    const [from, to] = i % 2 === 0 ? pair() : [last[1], last[0]];
    last = [from, to];
    const txn = `t${seed}.${i}`;
    expected.add(txn);
    const check = random() < 0.3 ? pick() : undefined;
    sim.send(sfAddress('tx/transfer', `c${i % 12}`), json({ txn, from, to, amount: 1 + Math.floor(random() * 50), ...(check === undefined || check === from || check === to ? {} : { check }) }));
  }
  for (let i = 0; i < work.reads; i++) {
    const txn = `r${seed}.${i}`;
    expected.add(txn);
    sim.send(sfAddress('tx/read-all', `r${i % 2}`), json({ txn, accounts: ACCOUNTS }));
  }
  for (let i = 0; i < work.sagas; i++) {
    const [from, to] = pair(SAGA_ACCOUNTS);
    const txn = `s${seed}.${i}`;
    expected.add(txn);
    sim.send(sfAddress('tx/transfer-saga', `s${i % 3}`), json({ txn, from, to, amount: 1 + Math.floor(random() * 30) }));
  }
  return { expected };
}

interface Findings {
  balances: Map<string, number>;
  finals: Map<string, Outcome[]>;
  reads: Read[];
  applied: Applied[];
  leftovers: string[];
  /** Transactions ended as retryable (deadlock victims), retried after. */
  retryable: number;
}

function findings(sim: StatefunSimulator): Findings {
  const balances = new Map<string, number>();
  for (const id of [...ACCOUNTS, ...SAGA_ACCOUNTS]) {
    const value = sim.stateOf(sfAddress('tx/account', id), 'balance');
    balances.set(id, value === undefined ? INITIAL_BALANCE : decode<number>(value));
  }
  const finals = new Map<string, Outcome[]>();
  const reads: Read[] = [];
  const applied: Applied[] = [];
  let retryable = 0;
  for (const egress of sim.egress) {
    const value = decode<unknown>(egress.argument!);
    if (egress.egressType === 'outcomes') {
      const outcome = value as Outcome;
      if (outcome.status === 'retryable') {
        retryable++;
        continue;
      }
      finals.set(outcome.txn, [...(finals.get(outcome.txn) ?? []), outcome]);
    } else if (egress.egressType === 'reads') reads.push(value as Read);
    else if (egress.egressType === 'applied') applied.push(value as Applied);
  }
  // No instance may be left locked, busy or with anything waiting.
  const leftovers: string[] = [];
  for (const [key, values] of sim.allState()) {
    for (const name of [TXN_STATE, ORDER_STATE]) {
      const value = values.get(name);
      if (value === null || value === undefined) continue;
      // A coordinator keeps its count of started transactions there: only a hold or a queue is left over.
      const order = name === ORDER_STATE ? decodeOrder(valueBytes(value)) : undefined;
      if (order !== undefined && (order.mode !== undefined || order.queue.length > 0)) leftovers.push(`${key} ${name} ${order.mode} ${order.queue.length}`);
      if (name === TXN_STATE) leftovers.push(`${key} ${name}`);
    }
  }
  return { balances, finals, reads, applied, leftovers, retryable };
}

async function runBank(t: Test, seed: number, options: { retryRate: number; failovers: boolean }): Promise<void> {
  const handler = new StatefunHandler(job);
  const sim = new StatefunSimulator(handler, { seed, retryRate: options.retryRate, maxBatch: 4, jitterMs: 20 });
  const { expected } = submit(sim, { transfers: 40, reads: 8, sagas: 15 }, seed);
  let failoversLeft = options.failovers ? 3 : 0;
  const steps = await sim.run(200_000, (step) => {
    if (!options.failovers) return;
    if (step % 40 === 0) sim.checkpoint();
    else if (failoversLeft > 0 && step % 150 === 0) {
      failoversLeft--;
      sim.restore();
    }
  });
  const { balances, finals, reads, applied, leftovers, retryable } = findings(sim);
  t.ok(retryable > 0, `contention: ${retryable} deadlock victims retried`);
  t.ok(steps > 0, `settled after ${steps} steps, ${sim.requests} requests (${sim.retries} sent twice), ${sim.restores} failovers`);
  if (options.failovers) t.equal(sim.restores, 3, 'three failovers happened');
  if (options.retryRate > 0) t.ok(sim.retries > 0, 'some requests were sent twice');
  t.equal(sim.differentAnswers, 0, 'a request sent twice got the same answer, byte for byte');
  t.equal([...balances.values()].reduce((a, b) => a + b, 0), (ACCOUNTS.length + SAGA_ACCOUNTS.length) * INITIAL_BALANCE, 'balances conserved');
  const answeredOnce = [...expected].filter((txn) => finals.get(txn)?.length === 1);
  t.same(
    [...expected].filter((txn) => finals.get(txn)?.length !== 1).map((txn) => `${txn}: ${JSON.stringify(finals.get(txn) ?? [])}`),
    [],
    'every request answered exactly once',
  );
  t.equal(answeredOnce.length, expected.size);
  t.ok([...finals.values()].some((list) => list[0]!.status === 'committed'), 'some transactions committed');
  // Every committed read-all saw one consistent state: the five reads of a transaction sum to the total.
  const readsByTxn = new Map<string, Read[]>();
  for (const read of reads) if (read.txn.startsWith('r')) readsByTxn.set(read.txn, [...(readsByTxn.get(read.txn) ?? []), read]);
  const committedReads = [...finals.values()].filter((list) => list[0]!.txn.startsWith('r') && list[0]!.status === 'committed').length;
  t.equal(readsByTxn.size, committedReads, 'each committed read-all egressed its reads');
  for (const [txn, list] of readsByTxn) {
    t.equal(list.length, ACCOUNTS.length, `${txn} read every account once`);
    t.equal(
      list.reduce((sum, read) => sum + read.balance, 0),
      ACCOUNTS.length * INITIAL_BALANCE,
      `${txn} read a consistent state`,
    );
  }
  // Each account's applied versions are 1..n without gaps or repeats (every effect applied once).
  for (const id of [...ACCOUNTS, ...SAGA_ACCOUNTS]) {
    const versions = applied.filter((entry) => entry.account === id).map((entry) => entry.version);
    t.same(versions.toSorted((x, y) => x - y), versions.map((_, i) => i + 1), `${id}: every applied operation once, in order`);
  }
  t.same(leftovers, [], 'no lock, record or queue left');
  t.ok(sim.idle, 'nothing left waiting, not even a delayed message');
}

void t.test('2PC transfers, consistent reads and sagas under contention', async (t) => {
  await runBank(t, 1, { retryRate: 0, failovers: false });
});

void t.test('the same with replies lost (each request sent twice at random)', async (t) => {
  await runBank(t, 2, { retryRate: 0.3, failovers: false });
});

void t.test('the same with Flink failovers back to a checkpoint', async (t) => {
  await runBank(t, 3, { retryRate: 0.1, failovers: true });
});

void t.test('a request sent twice starts the same transaction', async (t) => {
  const handler = new StatefunHandler(job);
  const states = [TXN_STATE, ORDER_STATE].map((stateName) => ({ stateName }));
  const { encodeToFunction, decodeFromFunction } = await import('../../../engine/statefun/protocol.js');
  const request = encodeToFunction({
    invocation: { target: sfAddress('tx/transfer', 'c0'), state: states, invocations: [{ argument: json({ txn: 'x', from: 'a', to: 'b', amount: 5 }) }] },
  });
  const first = decodeFromFunction(await handler.handleToFunction(request)).invocationResult!;
  const second = decodeFromFunction(await handler.handleToFunction(request)).invocationResult!;
  t.equal(first.outgoingMessages?.length, 2, 'two PREPAREs');
  t.same(
    first.outgoingMessages!.map((m) => [m.argument!.typename, keyOf(m.target!)]),
    [
      ['io.eddy.types/prepare', 'tx/account:a'],
      ['io.eddy.types/prepare', 'tx/account:b'],
    ],
  );
  t.same(first, second, 'the same answer');
  const ids = (result: typeof first): string[] => result.outgoingMessages!.map((m) => decodeEnvelope(valueBytes(m.argument)).txn!.id);
  t.same(ids(first), ids(second), 'the same transaction id');
  t.match(ids(first)[0], /^[\w-]{16}\.1$/, 'digest of the request and the count of transactions the coordinator started');
});

void t.test('a lock-wait timeout is a StateFun delayed message: the transaction ends retryable and its retry commits', async (t) => {
  const handler = new StatefunHandler(job);
  let slowed = 0;
  const sim = new StatefunSimulator(handler, {
    seed: 5,
    // The first PREPARE to account z takes a second to arrive: longer than the coordinator's 100 ms lockWaitTimeoutMs.
    slowness: (_from, target, argument) => (argument.typename === 'io.eddy.types/prepare' && target.id === 'z' && slowed++ === 0 ? 1000 : 0),
  });
  sim.send(sfAddress('tx/impatient-transfer', 'i'), json({ txn: 'slow', from: 'y', to: 'z', amount: 7 }));
  await sim.run(10_000);
  const outcomes = sim.egress.filter((e) => e.egressType === 'outcomes').map((e) => decode<Outcome>(e.argument!));
  // The retries' PREPAREs to z travel the same channel, behind the slow one (FIFO): they time out too until it is through.
  const last = outcomes.length - 1;
  t.ok(last >= 1, `${last} attempts timed out`);
  t.same(
    outcomes.map((o) => [o.status, o.attempt]),
    outcomes.map((_, i) => [i === last ? 'committed' : 'retryable', i]),
    'retryable until the slow channel drained, then committed once',
  );
  const balance = (id: string): number => decode<number>(sim.stateOf(sfAddress('tx/account', id), 'balance')!);
  t.same([balance('y'), balance('z')], [INITIAL_BALANCE - 7, INITIAL_BALANCE + 7], 'applied once');
  t.ok(sim.now >= 1000, 'the slow PREPARE arrived after the timeout (and was aborted)');
  t.equal(sim.delivered(LOCK_WAIT_TYPENAME), last, 'the timeout of each attempt that timed out came back; the committed one cancelled its own');
  t.same(findings(sim).leftovers, [], 'no lock left by the late PREPARE');
});

void t.test('a failing compensation is retried with StateFun delayed messages, then dead-lettered', async (t) => {
  const letters: ServedDeadLetter[] = [];
  const handler = new StatefunHandler(job, { onDeadLetter: (letter) => letters.push(letter) });
  const sim = new StatefunSimulator(handler, { seed: 6, jitterMs: 3 });
  sim.send(
    sfAddress('tx/multi-saga', 'm'),
    json({
      txn: 'comp',
      steps: [
        { account: 'p', forward: { op: 'add', amount: 5, txn: 'comp' }, compensation: { op: 'fail', txn: 'comp' } },
        { account: 'q', forward: { op: 'fail', txn: 'comp' }, compensation: { op: 'noop', txn: 'comp' } },
      ],
    }),
  );
  await sim.run(10_000);
  const outcomes = sim.egress.filter((e) => e.egressType === 'outcomes').map((e) => decode<Outcome>(e.argument!));
  t.same(outcomes.map((o) => o.status), ['aborted']);
  t.same(letters.map((l) => [l.code, l.target]), [['EDDY_COMPENSATION_FAILED', 'tx/account:p']], 'abandoned after the last attempt');
  // multiSaga: 8 attempts, 10 ms doubling: the retries waited 10 + 20 + ... + 640 ms of StateFun time.
  t.ok(sim.now >= 1270, `the retries waited (${sim.now} ms)`);
  t.same(findings(sim).leftovers, [], 'the saga ended');
});

void t.test('a job with coordinators cannot use the state names the transactions are kept in', (t) => {
  const clash = defineFunction({ type: 'tx/clash', state: { eddy_txn: valueState<number>() }, handler() {} });
  const withCoordinator = defineJob({ name: 'clash', module: import.meta.url, functions: [clash, transfer, account] });
  t.throws(() => new StatefunHandler(withCoordinator), { code: 'EDDY_INVALID_JOB', message: /tx\/clash declares state named eddy_txn/ });
  const without = defineJob({ name: 'no-clash', module: import.meta.url, functions: [clash] });
  t.doesNotThrow(() => new StatefunHandler(without), 'without a coordinator nothing is added');
  t.end();
});
