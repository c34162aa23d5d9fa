/**
 * The function-dispatcher as the worker's host of the invocation core, over the in-memory state
 * backend and an in-memory stand-in for the channel mesh: router credits (when an envelope that waits
 * gives its credit back), feedback acknowledgements, and barrier alignment with the cut.
 */
import t from 'tap';
import { DEFAULT_MAX_PARALLELISM } from '../../index.js';
import type { EgressOutbox } from '../../engine/channels/egress-outbox.js';
import type { Mesh } from '../../engine/channels/mesh.js';
import { DEAD_LETTERS } from '../../engine/job.js';
import { MemoryBackend } from '../../engine/state/memory-backend.js';
import { StateStore } from '../../engine/state/state-store.js';
import { barrier, Channel, type EgressRecord, type Envelope, Kind } from '../../engine/wire/envelope.js';
import { protocolEnvelope } from '../../operators/coordinators/records.js';
import { FunctionDispatcher } from '../../operators/function-dispatcher.js';
import { turns } from '../fixtures/core-host.js';
import job, { account, type AccountOp, type Applied, audit, type Outcome, transfer, type TransferRequest } from '../fixtures/transfer-job.js';

interface Rig {
  dispatcher: FunctionDispatcher;
  /** Envelopes pushed on the mesh, with their destination and channel. */
  pushed: Array<{ to: number; channel: number; envelope: Envelope }>;
  /** Router credits and feedback acknowledgements given back, per sender, summed. */
  credits: number[];
  feedbackAcks: number[];
  cuts: number[];
  egress: (name: string) => unknown[];
}

async function rig(workers = 1): Promise<Rig> {
  const backend = new MemoryBackend();
  await backend.open();
  const store = new StateStore(backend, 10_000);
  const pushed: Rig['pushed'] = [];
  const credits = Array.from({ length: workers }, () => 0);
  const feedbackAcks = Array.from({ length: workers }, () => 0);
  const cuts: number[] = [];
  const egressed: EgressRecord[] = [];
  // Stands in for the channel mesh: what this worker sends and acknowledges is recorded, nothing is delivered.
  const mesh = {
    push: (to: number, channel: number, envelope: Envelope) => pushed.push({ to, channel, envelope }),
    acknowledge: (worker: number, credit: number, acks: number) => {
      credits[worker]! += credit;
      feedbackAcks[worker]! += acks;
    },
  } as unknown as Mesh;
  const outbox = { push: (record: EgressRecord) => egressed.push(record), cut: () => {} } as unknown as EgressOutbox;
  const dispatcher = new FunctionDispatcher({
    worker: 0,
    workers,
    maxParallelism: DEFAULT_MAX_PARALLELISM,
    keyGroups: { start: 0, end: DEFAULT_MAX_PARALLELISM - 1 },
    job,
    store,
    mesh,
    egress: outbox,
    deadLetterIndex: job.egresses.findIndex((e) => e.name === DEAD_LETTERS),
    log: () => {},
    onCut: (id) => cuts.push(id),
    onBacklogDrained: () => {},
    lowWaterMark: 1000,
    maxTransactions: 16,
    maxSagas: 16,
  });
  dispatcher.resume();
  const egress = (name: string): unknown[] => {
    const index = job.egresses.findIndex((e) => e.name === name);
    return egressed.filter((r) => r.egress === index).map((r) => job.egresses[index]!.codec.decode(r.payload));
  };
  return { dispatcher, pushed, credits, feedbackAcks, cuts, egress };
}

let seq = 0;
function invoke(to: { type: string; id: string }, body: unknown, origin = 0): Envelope {
  const codec = job.functions.get(to.type)!.codec;
  return { kind: Kind.INVOKE, targetType: to.type, targetId: to.id, sourceType: '', sourceId: '', payload: codec.encode(body), ingressTime: 0, origin, seq: ++seq };
}
const add = (amount: number, txn: string): AccountOp => ({ op: 'add', amount, txn });
const a = account.address('a');
const balances = (rig: Rig): number[] => (rig.egress('applied') as Applied[]).map((x) => x.balance);

void t.test('router envelopes behind a running invocation of their address keep their credit until they run', async (t) => {
  const r = await rig();
  // The account handler is async (the first one for 300 ms): the first runs, the next two wait in its mailbox.
  r.dispatcher.acceptRouterBatch(0, [invoke(a, { ...add(1, 'i1'), delayMs: 300 }), invoke(a, add(2, 'i2')), invoke(a, add(3, 'i3'))]);
  t.equal(r.dispatcher.mailboxDepth, 2, 'two wait');
  await turns();
  t.equal(r.credits[0], 1, 'only the one that ran gave its credit back at once');
  await new Promise((resolve) => setTimeout(resolve, 400));
  await turns();
  t.equal(r.credits[0], 3, 'the others gave theirs back when they ran');
  t.same(r.egress('applied').length, 3);
  t.equal(r.dispatcher.accepted[0], 3, 'all three taken in');
});

void t.test('router envelopes behind a participant\'s lock give their credit back at once, and run in order after the decision', async (t) => {
  const r = await rig();
  const prepare = protocolEnvelope(Kind.PREPARE, transfer.address('c1'), a, { id: 'T1', startedAt: 1, invocations: [account.codec.encode(add(5, 'T1'))] }, 0, 0, ++seq);
  r.dispatcher.acceptFeedback(0, [prepare], 1);
  await turns();
  t.equal(r.dispatcher.transactions.metrics().locksHeld, 1, 'the PREPARE locked a');
  t.equal(r.feedbackAcks[0], 1, 'the feedback envelope was acknowledged');
  r.dispatcher.acceptRouterBatch(0, [invoke(a, add(1, 'i1')), invoke(a, add(2, 'i2'))]);
  await turns();
  t.equal(r.credits[0], 2, 'both credits back although both wait: a lock must not stop the routers');
  t.same(balances(r), [], 'nothing ran behind the lock');
  r.dispatcher.acceptFeedback(0, [protocolEnvelope(Kind.COMMIT, transfer.address('c1'), a, { id: 'T1' }, 0, 0, ++seq)], 1);
  await turns(10);
  t.same(balances(r), [1005, 1006, 1008], 'the transaction, then the waiting invocations in order');
  t.equal(r.credits[0], 2, 'no credit given back twice');
});

void t.test('requests to a coordinator busy with a transaction keep their credit until it ends', async (t) => {
  const r = await rig();
  const c1 = transfer.address('c1');
  const request = (txn: string): Envelope => invoke(c1, { txn, from: 'a', to: 'b', amount: 1 } satisfies TransferRequest);
  r.dispatcher.acceptRouterBatch(0, [request('T1'), request('T2')]);
  await turns();
  t.equal(r.credits[0], 1, 'the request that started gave its credit back; the one waiting keeps its own');
  // Play the participants: deliver what the dispatcher sent to itself until it is quiet.
  for (let round = 0; round < 50 && (r.egress('outcomes') as Outcome[]).length < 2; round++) {
    const sent = r.pushed.splice(0).filter((p) => p.channel === Channel.FEEDBACK).map((p) => p.envelope);
    if (sent.length > 0) r.dispatcher.acceptFeedback(0, sent, sent.length);
    await turns();
  }
  t.same((r.egress('outcomes') as Outcome[]).map((o) => [o.txn, o.status]), [['T1', 'committed'], ['T2', 'committed']], 'both ran, one after the other');
  t.equal(r.credits[0], 2, 'the second credit came back when its request ran');
});

void t.test('barrier alignment: after a router\'s barrier its later envelopes wait until every router\'s barrier came; then the cut, and they run in order', async (t) => {
  const r = await rig(2);
  const x = audit.address('x');
  r.dispatcher.acceptRouterBatch(0, [barrier(1, 0), invoke(x, { txn: 'after-barrier', via: 'r0' })]);
  r.dispatcher.acceptRouterBatch(1, [invoke(x, { txn: 'before-barrier', via: 'r1' })]);
  t.same(r.egress('audit'), [{ txn: 'before-barrier', via: 'r1' }], 'router 1\'s envelope ahead of its barrier ran; router 0\'s behind its barrier waits');
  t.same(r.cuts, [], 'no cut yet');
  r.dispatcher.acceptRouterBatch(1, [barrier(1, 1)]);
  t.same(r.cuts, [1], 'checkpoint 1 was cut once every router\'s barrier came');
  const barriers = r.pushed.filter((p) => p.envelope.kind === Kind.BARRIER);
  t.same(barriers.map((p) => [p.to, p.channel, p.envelope.checkpointId]), [[0, Channel.FEEDBACK, 1], [1, Channel.FEEDBACK, 1]], 'a barrier on every feedback channel');
  t.same((r.egress('audit') as Array<{ txn: string }>).map((e) => e.txn), ['before-barrier', 'after-barrier'], 'the waiting envelope ran after the cut');
  t.equal(r.dispatcher.lastCut, 1);
  await turns();
  t.same(r.credits, [1, 1], 'every router got its credit for its envelope');
});

void t.test('an aborted alignment lets the waiting envelopes go on without a cut, and its late barriers are ignored', async (t) => {
  const r = await rig(2);
  const x = audit.address('x');
  r.dispatcher.acceptRouterBatch(0, [barrier(3, 0), invoke(x, { txn: 'waiting', via: 'r0' })]);
  t.same(r.egress('audit'), []);
  r.dispatcher.abortAlignment(3);
  t.same((r.egress('audit') as Array<{ txn: string }>).map((e) => e.txn), ['waiting'], 'it ran');
  r.dispatcher.acceptRouterBatch(1, [barrier(3, 1), invoke(x, { txn: 'next', via: 'r1' })]);
  t.same(r.cuts, [], 'no cut for the aborted checkpoint');
  t.same((r.egress('audit') as Array<{ txn: string }>).map((e) => e.txn), ['waiting', 'next'], 'the stale barrier held nothing back');
});

void t.test('while paused, envelopes wait and keep their credit; resume runs them in arrival order', async (t) => {
  const r = await rig();
  r.dispatcher.pause();
  const x = audit.address('x');
  r.dispatcher.acceptRouterBatch(0, [invoke(x, { txn: '1', via: 'r' }), invoke(x, { txn: '2', via: 'r' })]);
  await turns();
  t.same(r.egress('audit'), [], 'nothing ran');
  t.equal(r.credits[0], 0, 'no credit back');
  t.equal(r.dispatcher.backlog, 2);
  r.dispatcher.resume();
  await turns();
  t.same((r.egress('audit') as Array<{ txn: string }>).map((e) => e.txn), ['1', '2']);
  t.equal(r.credits[0], 2);
  t.ok(r.dispatcher.idle);
});
