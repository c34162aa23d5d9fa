/**
 * The feedback operator's phases per channel and checkpoint n: before our own snapshot n, what comes
 * behind barrier n is held; from our snapshot until barrier n, what comes is delivered and logged (in
 * flight at the cut); after barrier n nothing more is logged. Driven with a stand-in dispatcher that
 * records what it is given.
 */
import t from 'tap';
import { DEFAULT_MAX_PARALLELISM, keyGroupOf } from '../../index.js';
import { barrier, decodeEnvelope, type Envelope, Kind } from '../../engine/wire/envelope.js';
import { Feedback, type FeedbackTarget } from '../../operators/feedback.js';

class Target implements FeedbackTarget {
  lastCut = 0;
  readonly delivered: string[] = [];
  /** Envelopes (barriers included) acknowledged per channel. */
  readonly taken: number[] = [0, 0];

  acceptFeedback(from: number, envelopes: readonly Envelope[], taken: number): void {
    for (const envelope of envelopes) this.delivered.push(envelope.targetId);
    this.taken[from]! += taken;
  }
}

let seq = 0;
function message(id: string): Envelope {
  return { kind: Kind.INVOKE, targetType: 'fb/x', targetId: id, sourceType: '', sourceId: '', payload: new Uint8Array(0), ingressTime: 0, origin: 0, seq: ++seq };
}

function loggedIds(log: Map<number, Uint8Array[]>): string[] {
  return [...log.values()].flat().map((bytes) => decodeEnvelope(bytes).targetId).sort();
}

void t.test('a barrier that comes before our own snapshot holds what follows on its channel until the snapshot', async (t) => {
  const target = new Target();
  const feedback = new Feedback(target, 2, DEFAULT_MAX_PARALLELISM);
  feedback.onBatch(0, [message('a'), barrier(1, 0), message('b')]);
  feedback.onBatch(1, [message('c')]);
  t.same(target.delivered, ['a', 'c'], 'b waits behind the early barrier; the other channel goes on');
  t.equal(feedback.heldTotal, 1);
  t.same(target.taken, [2, 1], 'held envelopes are not acknowledged yet');
  const log = feedback.onOwnSnapshot(1);
  t.same(target.delivered, ['a', 'c', 'b'], 'the snapshot released it');
  t.same(target.taken, [3, 1]);
  feedback.onBatch(1, [message('d'), barrier(1, 1), message('e')]);
  t.same(loggedIds(await log), ['d'], 'only what channel 1 delivered between the snapshot and its barrier is logged; b came after its sender\'s snapshot');
});

void t.test('from our snapshot until a channel\'s barrier, its envelopes are delivered and logged by target key group', async (t) => {
  const target = new Target();
  const feedback = new Feedback(target, 2, DEFAULT_MAX_PARALLELISM);
  const log = feedback.onOwnSnapshot(1);
  feedback.onBatch(0, [message('a'), message('b')]);
  feedback.onBatch(1, [message('c'), barrier(1, 1), message('d')]);
  t.same(target.delivered, ['a', 'b', 'c', 'd'], 'nothing is held after our own snapshot');
  t.equal(feedback.logOf(1), log, 'the log is open');
  feedback.onBatch(0, [barrier(1, 0), message('e')]);
  const done = await log;
  t.same(loggedIds(done), ['a', 'b', 'c'], 'what each channel delivered before its barrier');
  for (const [kg, entries] of done) {
    for (const bytes of entries) t.equal(keyGroupOf(decodeEnvelope(bytes).targetId, DEFAULT_MAX_PARALLELISM), kg, 'filed under its target\'s key group');
  }
  t.equal(feedback.logOf(1), undefined, 'closed once every channel delivered its barrier');
});

void t.test('a barrier of an older checkpoint than the last cut holds nothing', async (t) => {
  const target = new Target();
  target.lastCut = 4;
  const feedback = new Feedback(target, 1, DEFAULT_MAX_PARALLELISM);
  feedback.onBatch(0, [barrier(4, 0), message('a')]);
  t.same(target.delivered, ['a']);
  t.equal(feedback.heldTotal, 0);
});

void t.test('an aborted checkpoint releases what its early barrier held and ends its log empty', async (t) => {
  const target = new Target();
  const feedback = new Feedback(target, 2, DEFAULT_MAX_PARALLELISM);
  feedback.onBatch(0, [barrier(2, 0), message('a')]);
  t.same(target.delivered, []);
  feedback.abort(2);
  t.same(target.delivered, ['a'], 'released');
  const log = feedback.onOwnSnapshot(3);
  feedback.abort(3);
  t.same((await log).size, 0, 'an open log ends empty');
  t.equal(feedback.logOf(3), undefined);
});
