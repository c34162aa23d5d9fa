/**
 * The participant side of two-phase commit, driven through the invocation core by a host with no
 * threads (test/fixtures/core-host.ts): the test plays the coordinator, sending PREPAREs and
 * decisions and reading the votes. Locks: exclusive for a writer, shared between read-only
 * participants, and what waits behind them.
 */
import t from 'tap';
import { type Envelope, Kind } from '../../../engine/wire/envelope.js';
import { protocolEnvelope } from '../../../operators/coordinators/records.js';
import { FakeCoreHost, turns } from '../../fixtures/core-host.js';
import job, { account, type AccountOp, type Applied, INITIAL_BALANCE } from '../../fixtures/transfer-job.js';

const c1 = { type: 'tx/transfer', id: 'c1' };
const c2 = { type: 'tx/transfer', id: 'c2' };
const a = account.address('a');

let seq = 0;
function prepare(txn: string, op: AccountOp, from = c1, startedAt = 1): Envelope {
  return protocolEnvelope(Kind.PREPARE, from, a, { id: txn, startedAt, invocations: [account.codec.encode(op)] }, 0, 0, ++seq);
}
function decision(kind: number, txn: string, from = c1): Envelope {
  return protocolEnvelope(kind, from, a, { id: txn }, 0, 0, ++seq);
}
function invoke(op: AccountOp): Envelope {
  return { kind: Kind.INVOKE, targetType: a.type, targetId: a.id, sourceType: '', sourceId: '', payload: account.codec.encode(op), ingressTime: 0, origin: 0, seq: ++seq };
}
const add = (amount: number, txn = 'x'): AccountOp => ({ op: 'add', amount, txn });
const sentOf = (host: FakeCoreHost, kind: number): Envelope[] => host.sent.filter((e) => e.kind === kind);
const balances = (host: FakeCoreHost): number[] => (host.egress('applied') as Applied[]).map((applied) => applied.balance);

void t.test('a PREPARE runs in isolation, locks its instance and votes YES; its effects apply only at COMMIT', async (t) => {
  const host = new FakeCoreHost(job);
  host.deliver(prepare('T1', add(5)));
  await turns();
  t.same(sentOf(host, Kind.VOTE).map((v) => [v.txn?.id, v.txn?.ok, v.targetId]), [['T1', true, 'c1']], 'YES to its coordinator');
  t.equal(host.holdOf(a), 'locked', 'the instance is locked');
  t.equal(host.core.metrics().locksHeld, 1);
  t.same(balances(host), [], 'nothing applied yet');
  t.equal(host.state.size, 0, 'no state written yet');
  host.deliver(decision(Kind.COMMIT, 'T1'));
  t.same(balances(host), [INITIAL_BALANCE + 5], 'COMMIT applied the staged effects');
  t.equal(host.holdOf(a), undefined, 'and unlocked');
  t.equal(host.core.metrics().locksReleased, 1);
});

void t.test('ABORT discards the staged effects and releases the lock', async (t) => {
  const host = new FakeCoreHost(job);
  host.deliver(prepare('T1', add(5)));
  await turns();
  host.deliver(decision(Kind.ABORT, 'T1'));
  t.same(balances(host), [], 'nothing applied');
  t.equal(host.state.size, 0);
  t.equal(host.holdOf(a), undefined, 'unlocked');
});

void t.test('invocations of a locked instance wait behind the lock and run in arrival order after COMMIT', async (t) => {
  const host = new FakeCoreHost(job);
  host.deliver(prepare('T1', add(5)));
  await turns();
  host.deliver(invoke(add(1, 'i1')));
  host.deliver(invoke(add(2, 'i2')));
  await turns();
  t.same(balances(host), [], 'they wait');
  t.equal(host.queued(a).length, 2);
  host.deliver(decision(Kind.COMMIT, 'T1'));
  await turns();
  t.same(balances(host), [INITIAL_BALANCE + 5, INITIAL_BALANCE + 6, INITIAL_BALANCE + 8], 'the transaction first, then the waiting invocations in order');
});

void t.test('a PREPARE behind a lock waits, reports the lock holder to its coordinator, and runs after the holder ends', async (t) => {
  const host = new FakeCoreHost(job);
  host.deliver(prepare('T1', add(5)));
  await turns();
  host.deliver(prepare('T2', add(7), c2, 2));
  await turns();
  const waits = sentOf(host, Kind.WAITS_FOR);
  t.equal(waits.length, 1, 'one wait reported');
  t.equal(waits[0]!.targetId, 'c2', 'to the waiting transaction\'s coordinator');
  t.same(waits[0]!.txn?.blockers?.map((b) => [b.id, b.coordinatorId]), [['T1', 'c1']], 'naming the holder and its coordinator');
  t.equal(sentOf(host, Kind.VOTE).length, 1, 'T2 has not voted');
  host.deliver(decision(Kind.ABORT, 'T1'));
  await turns();
  t.same(sentOf(host, Kind.VOTE).map((v) => v.txn?.id), ['T1', 'T2'], 'T2 ran and voted after T1 ended');
  host.deliver(decision(Kind.COMMIT, 'T2', c2));
  t.same(balances(host), [INITIAL_BALANCE + 7], 'only T2 applied');
});

void t.test('an ABORT for a PREPARE still waiting behind a lock drops it: it never runs', async (t) => {
  const host = new FakeCoreHost(job);
  host.deliver(prepare('T1', add(5)));
  await turns();
  host.deliver(prepare('T2', add(7), c2, 2));
  host.deliver(decision(Kind.ABORT, 'T2', c2));
  t.equal(host.queued(a).length, 0, 'dropped from the queue');
  host.deliver(decision(Kind.COMMIT, 'T1'));
  await turns();
  t.same(sentOf(host, Kind.VOTE).map((v) => v.txn?.id), ['T1'], 'T2 never voted');
  t.equal(host.core.stats.invocations, 1, 'and never ran');
});

void t.test('read-only PREPAREs share the lock; a writer waits until every reader has left', async (t) => {
  const host = new FakeCoreHost(job);
  host.deliver(prepare('R1', { op: 'noop', txn: 'r1' }));
  await turns();
  host.deliver(prepare('R2', { op: 'noop', txn: 'r2' }, c2, 2));
  await turns();
  t.same(sentOf(host, Kind.VOTE).map((v) => [v.txn?.id, v.txn?.ok]), [['R1', true], ['R2', true]], 'both readers voted YES');
  t.equal(host.holdOf(a), 'shared', 'the lock is shared');
  const c3 = { type: 'tx/transfer', id: 'c3' };
  host.deliver(prepare('W', add(5), c3, 3));
  await turns();
  t.equal(sentOf(host, Kind.VOTE).length, 2, 'the writer has not voted');
  t.equal(host.holdOf(a), 'locked', 'the writer waiting at the head locks out later PREPAREs');
  t.same(sentOf(host, Kind.WAITS_FOR).flatMap((w) => w.txn?.blockers?.map((b) => b.id) ?? []).sort(), ['R1', 'R2'], 'it reported both readers');
  host.deliver(decision(Kind.COMMIT, 'R1'));
  await turns();
  t.equal(sentOf(host, Kind.VOTE).length, 2, 'still waiting for R2');
  host.deliver(decision(Kind.COMMIT, 'R2', c2));
  await turns();
  t.same(sentOf(host, Kind.VOTE).map((v) => v.txn?.id), ['R1', 'R2', 'W'], 'the writer ran once the readers left');
  t.equal(host.holdOf(a), 'locked', 'and holds the lock alone');
  host.deliver(decision(Kind.COMMIT, 'W', c3));
  t.same(balances(host), [INITIAL_BALANCE + 5]);
  t.equal(host.core.metrics().locksHeld, 0, 'no lock is left');
});

void t.test('a participant whose invocation fails votes NO and takes no lock', async (t) => {
  const host = new FakeCoreHost(job);
  host.deliver(prepare('T1', { op: 'fail', txn: 'x' }));
  await turns();
  t.same(sentOf(host, Kind.VOTE).map((v) => [v.txn?.id, v.txn?.ok]), [['T1', false]]);
  t.equal(host.holdOf(a), undefined, 'no lock');
  t.equal(host.core.stats.invocationsFailed, 1, 'counted as a failed invocation, not a bug');
  t.same(host.deadLetters, []);
});
