/**
 * The transaction layer of one dispatcher (participants and coordinators) driven envelope by envelope
 * over the in-memory state backend: the protocol steps that make two-phase commit survive restores.
 * A step is idempotent per (transaction, step): a PREPARE that comes again is answered or dropped,
 * never run twice; a restored coordinator sends the PREPAREs of steps that have not voted again; a
 * YES for a transaction that has ended gets an ABORT back; and work parked by a cut sorts after the
 * parked work a restore brought.
 */
import t from 'tap';
import { DEFAULT_MAX_PARALLELISM, keyGroupOf } from '../../../index.js';
import type { EgressOutbox } from '../../../engine/channels/egress-outbox.js';
import type { Mesh } from '../../../engine/channels/mesh.js';
import { DEAD_LETTERS } from '../../../engine/job.js';
import { MemoryBackend } from '../../../engine/state/memory-backend.js';
import { keyGroupPrefix, parkedKey, Space, toBytes, txnKey } from '../../../engine/state/state-keys.js';
import type { StateCut } from '../../../engine/state/state-store.js';
import { StateStore } from '../../../engine/state/state-store.js';
import { barrier, decodeEnvelope, encodeEnvelope, type EgressRecord, type Envelope, Kind } from '../../../engine/wire/envelope.js';
import { encodeCoordinatorRecord, encodeParticipantRecord, Protocol, StepStatus } from '../../../engine/wire/transactions.js';
import { protocolEnvelope } from '../../../operators/coordinators/records.js';
import { FunctionDispatcher } from '../../../operators/function-dispatcher.js';
import job, { account, type AccountOp, type Applied } from '../../fixtures/transfer-job.js';

const KEY_GROUPS = { start: 0, end: DEFAULT_MAX_PARALLELISM - 1 };
const coordinator = { type: 'tx/transfer', id: 'c1' };

interface Rig {
  dispatcher: FunctionDispatcher;
  store: StateStore;
  /** Envelopes the dispatcher sent (barriers left out). */
  routed: Envelope[];
  applied: () => Applied[];
  cuts: Array<Promise<StateCut>>;
}

async function rig(start = true): Promise<Rig> {
  const backend = new MemoryBackend();
  await backend.open();
  const store = new StateStore(backend, 10_000);
  const routed: Envelope[] = [];
  const egressed: EgressRecord[] = [];
  const cuts: Array<Promise<StateCut>> = [];
  const mesh = {
    push: (_destination: number, _channel: number, envelope: Envelope) => {
      if (envelope.kind !== Kind.BARRIER) routed.push(envelope);
    },
    acknowledge: () => {},
  } as unknown as Mesh;
  const egress = { push: (record: EgressRecord) => egressed.push(record), cut: () => {} } as unknown as EgressOutbox;
  const dispatcher = new FunctionDispatcher({
    worker: 0,
    workers: 1,
    maxParallelism: DEFAULT_MAX_PARALLELISM,
    keyGroups: KEY_GROUPS,
    job,
    store,
    mesh,
    egress,
    deadLetterIndex: job.egresses.findIndex((e) => e.name === DEAD_LETTERS),
    log: () => {},
    onCut: (_id, cut) => cuts.push(cut),
    onBacklogDrained: () => {},
    lowWaterMark: 1000,
    maxTransactions: 16,
    maxSagas: 16,
  });
  if (start) dispatcher.resume();
  const appliedIndex = job.egresses.findIndex((e) => e.name === 'applied');
  const applied = (): Applied[] => egressed.filter((r) => r.egress === appliedIndex).map((r) => job.egresses[appliedIndex]!.codec.decode(r.payload) as Applied);
  return { dispatcher, store, routed, applied, cuts };
}

const turns = async (n = 5): Promise<void> => {
  for (let i = 0; i < n; i++) await new Promise((resolve) => setImmediate(resolve));
};

let seq = 0;
function prepare(txn: string, accountId: string, op: AccountOp, from = coordinator): Envelope {
  return protocolEnvelope(Kind.PREPARE, from, account.address(accountId), { id: txn, startedAt: 1, invocations: [account.codec.encode(op)] }, 0, 0, ++seq);
}

function decision(kind: number, txn: string, accountId: string): Envelope {
  return protocolEnvelope(kind, coordinator, account.address(accountId), { id: txn }, 0, 0, ++seq);
}

const votes = (routed: Envelope[], txn: string): Envelope[] => routed.filter((e) => e.kind === Kind.VOTE && e.txn?.id === txn);

void t.test('a PREPARE that comes again to the lock holder is answered with its vote again and not run twice', async (t) => {
  const { dispatcher, routed, applied } = await rig();
  const op: AccountOp = { op: 'add', amount: 5, txn: 'x' };
  dispatcher.acceptFeedback(0, [prepare('T1', 'a', op)], 1);
  await turns();
  t.equal(votes(routed, 'T1').length, 1, 'the participant voted');
  t.equal(dispatcher.transactions.metrics().locksHeld, 1, 'and holds the lock');
  dispatcher.acceptFeedback(0, [prepare('T1', 'a', op)], 1);
  await turns();
  const again = votes(routed, 'T1');
  t.equal(again.length, 2, 'the second copy gets a vote');
  t.equal(again[1]!.txn?.ok, true, 'YES again');
  t.equal(dispatcher.invocations, 1, 'the invocation ran once');
  dispatcher.acceptFeedback(0, [decision(Kind.COMMIT, 'T1', 'a')], 1);
  await turns();
  t.same(applied().map((a) => a.balance), [1005], 'COMMIT applied it once');
  t.equal(dispatcher.transactions.metrics().locksHeld, 0, 'and released the lock');
});

void t.test('a PREPARE that comes again while its first copy waits behind a lock is dropped', async (t) => {
  const { dispatcher, routed, applied } = await rig();
  const op: AccountOp = { op: 'add', amount: 5, txn: 'x' };
  dispatcher.acceptFeedback(0, [prepare('T1', 'a', op)], 1);
  await turns();
  dispatcher.acceptFeedback(0, [prepare('T2', 'a', op, { type: 'tx/transfer', id: 'c2' }), prepare('T2', 'a', op, { type: 'tx/transfer', id: 'c2' })], 2);
  await turns();
  t.equal(routed.filter((e) => e.kind === Kind.WAITS_FOR && e.txn?.id === 'T2').length, 1, 'one wait is reported, for the first copy');
  dispatcher.acceptFeedback(0, [decision(Kind.COMMIT, 'T1', 'a')], 1);
  await turns();
  t.equal(votes(routed, 'T2').length, 1, 'T2 ran once after T1 and voted once');
  dispatcher.acceptFeedback(0, [protocolEnvelope(Kind.COMMIT, { type: 'tx/transfer', id: 'c2' }, account.address('a'), { id: 'T2' }, 0, 0, ++seq)], 1);
  await turns();
  t.same(applied().map((a) => a.balance), [1005, 1010], 'each transaction applied once');
  t.equal(dispatcher.transactions.metrics().locksHeld, 0, 'no lock is left');
});

void t.test('an ABORT that overtook its PREPARE: the lock the PREPARE takes later is released by the ABORT its late vote gets back', async (t) => {
  const { dispatcher, routed, applied } = await rig();
  dispatcher.acceptFeedback(0, [decision(Kind.ABORT, 'T9', 'a')], 1);
  await turns();
  t.equal(dispatcher.transactions.metrics().staleProtocolMessages, 1, 'the ABORT finds nothing to abort');
  dispatcher.acceptFeedback(0, [prepare('T9', 'a', { op: 'add', amount: 5, txn: 'x' })], 1);
  await turns();
  const vote = votes(routed, 'T9')[0]!;
  t.equal(dispatcher.transactions.metrics().locksHeld, 1, 'the late PREPARE locked');
  // The vote reaches the coordinator, which no longer runs T9.
  dispatcher.acceptFeedback(0, [vote], 1);
  await turns();
  const back = routed.filter((e) => e.kind === Kind.ABORT && e.txn?.id === 'T9');
  t.equal(back.length, 1, 'the coordinator answers the late YES with an ABORT');
  t.same({ type: back[0]!.targetType, id: back[0]!.targetId }, account.address('a'), 'to the voter');
  dispatcher.acceptFeedback(0, back, 1);
  await turns();
  t.equal(dispatcher.transactions.metrics().locksHeld, 0, 'the lock is released');
  t.same(applied(), [], 'nothing was applied');
});

void t.test('a late NO vote gets no answer (a participant that voted NO holds no lock)', async (t) => {
  const { dispatcher, routed } = await rig();
  dispatcher.acceptFeedback(0, [protocolEnvelope(Kind.VOTE, account.address('a'), coordinator, { id: 'T5', ok: false }, 0, 0, ++seq)], 1);
  await turns();
  t.same(routed, [], 'nothing is sent');
});

void t.test('a restored coordinator sends the PREPAREs of its steps that have not voted again, and only those', async (t) => {
  const { dispatcher, store, routed } = await rig(false);
  const step = (id: string, status: number): { type: string; id: string; invocations: Uint8Array[]; compensation: Uint8Array; status: number; attempts: number } => ({
    type: account.type,
    id,
    invocations: [account.codec.encode({ op: 'add', amount: 1, txn: 'x' })],
    compensation: new Uint8Array(0),
    status,
    attempts: 0,
  });
  const none = { sends: [], delayed: [], egress: [] };
  const record = {
    protocol: Protocol.TWO_PHASE_COMMIT,
    txn: { id: 'T7', startedAt: 1, coordinatorType: coordinator.type, coordinatorId: coordinator.id },
    steps: [step('a', StepStatus.DONE), step('b', StepStatus.PENDING), step('c', StepStatus.PENDING)],
    onSuccess: none,
    onFailure: none,
    onRetryable: none,
    blockers: [],
    dependents: [],
    failed: false,
    ingressTime: 0,
  };
  store.put(txnKey(keyGroupOf(coordinator.id, DEFAULT_MAX_PARALLELISM), coordinator.type, coordinator.id), encodeCoordinatorRecord(record));
  await dispatcher.loadTransactions();
  const prepares = routed.filter((e) => e.kind === Kind.PREPARE);
  t.same(prepares.map((e) => e.targetId).sort(), ['b', 'c'], 'PREPARE again to the steps without a vote');
  t.ok(prepares.every((e) => e.txn?.id === 'T7' && e.sourceId === coordinator.id), 'naming the transaction and its coordinator');
  t.equal(dispatcher.transactions.metrics().transactionsRunning, 1, 'the transaction runs on');
});

void t.test('envelopes parked by a cut sort after the parked work a restore brought, so a later restore keeps their order', async (t) => {
  const { dispatcher, store, cuts } = await rig(false);
  const kg = keyGroupOf('a', DEFAULT_MAX_PARALLELISM);
  // What a restore wrote: a PREPARE in flight at the restored cut, keyed as restoreKeyGroups keys it.
  const restored = prepare('T1', 'a', { op: 'add', amount: 5, txn: 'x' });
  store.put(parkedKey(kg, (Date.now() + 60_000) * 1000), encodeEnvelope(restored));
  await dispatcher.loadParked();
  // Started and cut before the replay ran: the ABORT that arrived meanwhile is parked by the cut.
  dispatcher.acceptFeedback(0, [decision(Kind.ABORT, 'T1', 'a')], 1);
  dispatcher.acceptRouterBatch(0, [barrier(1, 0)]);
  t.equal(cuts.length, 1, 'the cut was taken');
  const { snapshot } = await cuts[0]!;
  const prefix = toBytes(keyGroupPrefix(kg, Space.PARKED));
  const end = toBytes(keyGroupPrefix(kg, Space.TXN));
  const parked: Envelope[] = [];
  for await (const batch of snapshot.scanBatches(prefix, end)) for (const [, value] of batch) parked.push(decodeEnvelope(value));
  await snapshot.close();
  t.same(parked.map((e) => [e.kind, e.txn?.id]), [[Kind.PREPARE, 'T1'], [Kind.ABORT, 'T1']], 'the PREPARE first, then the ABORT');
});

void t.test('a PREPARE aborted while it ran before a restore runs no more after it, and its mark is forgotten', async (t) => {
  const { dispatcher, store, routed } = await rig(false);
  const kg = keyGroupOf('a', DEFAULT_MAX_PARALLELISM);
  const running = prepare('T3', 'a', { op: 'add', amount: 5, txn: 'x' });
  store.put(
    txnKey(kg, account.type, 'a'),
    encodeParticipantRecord({ txn: { id: 'T3', startedAt: 1, coordinatorType: coordinator.type, coordinatorId: coordinator.id }, staged: null, abortedWhilePreparing: true, lockedAt: 0, shared: [] }),
  );
  store.put(parkedKey(kg, Date.now() * 1000), encodeEnvelope(running));
  await dispatcher.loadTransactions();
  await dispatcher.replayParked();
  dispatcher.resume();
  await turns();
  t.equal(dispatcher.invocations, 0, 'the PREPARE did not run');
  t.same(votes(routed, 'T3'), [], 'and did not vote');
  t.same(dispatcher.transactions.records(), [], 'the mark is gone');
  dispatcher.acceptFeedback(0, [prepare('T4', 'a', { op: 'add', amount: 1, txn: 'y' })], 1);
  await turns();
  t.equal(votes(routed, 'T4').length, 1, 'the next transaction runs');
});
