import t from 'tap';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';
import {
  type Batch,
  Channel,
  decodeBatch,
  decodeEgressBatch,
  decodeEnvelope,
  decodeTimer,
  encodeBatch,
  encodeEgressBatch,
  encodeEnvelope,
  encodeTimer,
  type Envelope,
} from '../../../engine/wire/envelope.js';

const wire = protobuf.loadSync(fileURLToPath(new URL('../../../engine/wire/envelope.proto', import.meta.url)));
const BatchType = wire.lookupType('eddy.wire.v1.Batch');

const ids = ['', 'a', 'user-42', 'caf\u00e9', '\u65e5\u672c\u8a9e', '\u{1F600}\u{1F4A9}', 'nul\u0000inside', 'x'.repeat(300)];

function envelope(i: number): Envelope {
  return {
    kind: 1,
    targetType: i % 3 === 0 ? 'bank/account' : 'ns.with-dots_/type',
    targetId: `${ids[i % ids.length]!}#${i}`,
    sourceType: i % 2 === 0 ? '' : 'bank/transfer',
    sourceId: i % 2 === 0 ? '' : ids[(i + 3) % ids.length]!,
    payload: i % 5 === 0 ? new Uint8Array(0) : Uint8Array.from({ length: i % 64 }, (_, j) => (i * 7 + j) & 0xff),
    ingressTime: 1_700_000_000_000 + i + 0.25,
    origin: i % 7,
    seq: 0xffffffff - i,
  };
}

/** The bytes of a payload as hex, or a note that it is not a Uint8Array (codecs get Uint8Arrays). */
const bytesOf = (payload: unknown): string =>
  payload instanceof Uint8Array ? Buffer.from(payload).toString('hex') : `not a Uint8Array: ${Object.prototype.toString.call(payload)}`;

/** The fields of an envelope as plain data, for comparison. */
function fields(e: Envelope): Record<string, unknown> {
  return {
    kind: e.kind,
    targetType: e.targetType,
    targetId: e.targetId,
    sourceType: e.sourceType,
    sourceId: e.sourceId,
    payload: bytesOf(e.payload),
    ingressTime: e.ingressTime,
    origin: e.origin,
    seq: e.seq,
  };
}

void t.test('a batch of 1000 envelopes decodes to the same envelopes in the same order', async (t) => {
  const envelopes = Array.from({ length: 1000 }, (_, i) => envelope(i));
  const decoded = decodeBatch(encodeBatch({ channel: Channel.FEEDBACK, envelopes, credits: 17, feedbackAcks: 4 }));
  t.equal(decoded.channel, Channel.FEEDBACK);
  t.equal(decoded.credits, 17);
  t.equal(decoded.feedbackAcks, 4);
  t.equal(decoded.envelopes.length, 1000);
  let mismatches = 0;
  decoded.envelopes.forEach((e, i) => {
    const expected = fields(envelopes[i]!);
    const actual = fields(e);
    if (JSON.stringify(actual) !== JSON.stringify(expected)) {
      if (mismatches++ < 3) t.same(actual, expected, `envelope ${i}`);
    }
  });
  t.equal(mismatches, 0, 'every envelope matches its original field by field');
  t.type(decoded.envelopes[0]!.payload, Uint8Array, 'an empty payload decodes as an empty Uint8Array');
  t.equal(decoded.envelopes[0]!.payload.byteLength, 0);
});

void t.test('an acknowledgement batch without envelopes round-trips its counters', async (t) => {
  const decoded = decodeBatch(encodeBatch({ channel: Channel.ACK, envelopes: [], credits: 4096, feedbackAcks: 0xffffffff }));
  t.same({ channel: decoded.channel, credits: decoded.credits, feedbackAcks: decoded.feedbackAcks, envelopes: decoded.envelopes }, {
    channel: Channel.ACK,
    credits: 4096,
    feedbackAcks: 0xffffffff,
    envelopes: [],
  });
});

void t.test('an encoded batch is an ArrayBuffer of its own, exactly the encoded size', async (t) => {
  for (const count of [0, 1, 3, 200]) {
    const batch: Batch = { channel: Channel.ROUTER, envelopes: Array.from({ length: count }, (_, i) => envelope(i)), credits: 1, feedbackAcks: 0 };
    const buffer = encodeBatch(batch);
    t.type(buffer, ArrayBuffer);
    t.equal(buffer.byteLength, BatchType.encode(batch).finish().byteLength, `${count} envelopes: byteLength is the message size`);
  }
});

void t.test('transferring one encoded batch leaves other batches intact', async (t) => {
  const first = encodeBatch({ channel: Channel.ROUTER, envelopes: [envelope(1)], credits: 0, feedbackAcks: 0 });
  const second = encodeBatch({ channel: Channel.FEEDBACK, envelopes: [envelope(2)], credits: 0, feedbackAcks: 0 });
  const moved = structuredClone(first, { transfer: [first] });
  t.equal(first.byteLength, 0, 'the transferred buffer is detached');
  t.equal(decodeBatch(moved).envelopes[0]!.targetId, envelope(1).targetId, 'the transferred copy decodes');
  const decoded = decodeBatch(second);
  t.equal(decoded.channel, Channel.FEEDBACK, 'the other batch still decodes');
  t.same(fields(decoded.envelopes[0]!), fields(envelope(2)));
  // A batch encoded after the transfer is unaffected too.
  const third = encodeBatch({ channel: Channel.ROUTER, envelopes: [envelope(3)], credits: 0, feedbackAcks: 0 });
  t.same(fields(decodeBatch(third).envelopes[0]!), fields(envelope(3)));
});

void t.test('envelopes, egress batches and timers round-trip on their own', async (t) => {
  const e = envelope(11);
  t.same(fields(decodeEnvelope(encodeEnvelope(e))), fields(e), 'envelope');

  const records = [
    { egress: 0, payload: new Uint8Array(0), ingressTime: 0 },
    { egress: 3, payload: Uint8Array.of(1, 2, 255), ingressTime: 1_700_000_000_000.5 },
  ];
  const egressBuffer = encodeEgressBatch(records, 7);
  t.type(egressBuffer, ArrayBuffer);
  t.same(
    decodeEgressBatch(egressBuffer).records.map((r) => ({ egress: r.egress, payload: bytesOf(r.payload), ingressTime: r.ingressTime })),
    records.map((r) => ({ ...r, payload: bytesOf(r.payload) })),
    'egress records, in order',
  );
  t.equal(decodeEgressBatch(egressBuffer).epoch, 7, 'the epoch of the batch');

  const timer = decodeTimer(encodeTimer({ envelope: e, token: 'tok-\u00e9', fireAt: 1_700_000_123_456 }));
  t.equal(timer.token, 'tok-\u00e9');
  t.equal(timer.fireAt, 1_700_000_123_456);
  t.same(fields(timer.envelope), fields(e), 'timer envelope');
  const empty = { ...e, payload: new Uint8Array(0) };
  t.same(fields(decodeEnvelope(encodeEnvelope(empty))), fields(empty), 'envelope with an empty payload');
  t.same(fields(decodeTimer(encodeTimer({ envelope: empty, token: 't', fireAt: 1 })).envelope), fields(empty), 'timer with an empty payload');
});
