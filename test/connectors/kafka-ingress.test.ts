// The Kafka ingress's splits, read directly through the Ingress/SplitReader contract against the real
// broker: which partitions a split owns, positions and reopening at them, partitions added while
// reading, rejected records, lag metrics, and the errors for a missing broker or topic.
import t from 'tap';
import { kafkaIngress, type KafkaPosition, type KafkaRecord, type KafkaSplitReader } from '../../index.js';
import { sleep, within } from '../fixtures/harness.js';
import { brokers, haveBroker, kafkaFor } from '../fixtures/kafka-harness.js';

type Teardowns = Parameters<typeof kafkaFor>[0];
type Reader = KafkaSplitReader<unknown>;

async function openAll(t: Teardowns, ingress: ReturnType<typeof kafkaIngress>, input: unknown, positions: unknown[] = []): Promise<Reader[]> {
  const splits = await ingress.planSplits(input);
  const readers: Reader[] = [];
  for (const [i, split] of splits.entries()) {
    const reader = (await ingress.openSplit(split, positions[i])) as Reader;
    t.teardown(() => reader.close());
    readers.push(reader);
  }
  return readers;
}

/** Reads `reader` until `enough(records)` or done, within `timeoutMs`. */
async function drain(reader: Reader, enough: (records: KafkaRecord[]) => boolean = () => false, timeoutMs = 30_000) {
  const records: KafkaRecord[] = [];
  const rejected: Array<{ reason: string }> = [];
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const result = reader.read(64);
    records.push(...(result.records as KafkaRecord[]));
    rejected.push(...(result.rejected ?? []));
    if (result.done || enough(records)) return { records, rejected, done: result.done };
    if (Date.now() > deadline) throw new Error(`reading did not finish within ${timeoutMs} ms (${records.length} records read)`);
    if (result.records.length === 0) await sleep(result.retryAfterMs ?? 5);
  }
}

void t.test('option mistakes name the field and the fix', async (t) => {
  t.throws(() => kafkaIngress('in', { brokers: '127.0.0.1:9092', splits: 0 }), { code: 'EDDY_INVALID_OPTION', message: /kafkaIngress\(in\)\.splits/ });
  t.throws(() => kafkaIngress('in', { brokers: '127.0.0.1:9092', logLevel: 'loud' as never }), { code: 'EDDY_INVALID_OPTION', message: /logLevel/ });
  const ingress = kafkaIngress('in', { brokers: '127.0.0.1:9092' });
  await t.rejects(Promise.resolve(ingress.planSplits(undefined)), { code: 'EDDY_INVALID_OPTION', message: /topics is missing/ });
  await t.rejects(Promise.resolve(ingress.planSplits({ topic: 'x' })), { code: 'EDDY_INVALID_OPTION', message: /inputs\.in\.topic is not an input/ });
  await t.rejects(Promise.resolve(ingress.planSplits({ topics: 'x', startFrom: 'middle' })), { code: 'EDDY_INVALID_OPTION', message: /startFrom/ });
});

void t.test('an unreachable broker fails planning once the retry deadline passes, naming the brokers and the fix', async (t) => {
  const ingress = kafkaIngress('in', { brokers: '127.0.0.1:1', topics: 'requests', connectTimeoutMs: 1500 });
  const started = Date.now();
  await t.rejects(within(Promise.resolve(ingress.planSplits(undefined, { retryDeadlineMs: 3000 })), 20_000, 'planning against a closed port'), {
    code: 'EDDY_SOURCE_FAILED',
    message: /ingress in: cannot reach the Kafka brokers 127\.0\.0\.1:1 .*scripts\/kafka start/,
  });
  t.ok(Date.now() - started >= 3000, 'after retrying until connectorRetryDeadlineMs');
});

if (haveBroker(t)) {
  void t.test('the splits together read every record once; split i reads the partitions p mod n == i, with each record\'s coordinates', async (t) => {
    const kafka = kafkaFor(t);
    const a = await kafka.topic('ingress-a', 5);
    const b = await kafka.topic('ingress-b', 2);
    const sent = [...Array.from({ length: 150 }, (_, i) => ({ topic: a, i })), ...Array.from({ length: 60 }, (_, i) => ({ topic: b, i }))];
    await kafka.produce(a, sent.filter((s) => s.topic === a).map((s) => ({ key: `k${s.i % 13}`, value: JSON.stringify(s) })));
    await kafka.produce(b, sent.filter((s) => s.topic === b).map((s) => ({ key: `k${s.i % 13}`, value: JSON.stringify(s) })));
    const readers = await openAll(t, kafkaIngress('in', { brokers, topics: [a, b], splits: 3, stopAtEnd: true }), undefined);
    const all: KafkaRecord[] = [];
    for (const [i, reader] of readers.entries()) {
      const { records, done } = await drain(reader);
      t.ok(done, `split ${i} ended at the end offsets`);
      t.ok(records.every((r) => r.partition % 3 === i), `split ${i} read only partitions p with p mod 3 == ${i}`);
      all.push(...records);
    }
    t.equal(all.length, sent.length, 'every record once');
    t.same(new Set(all.map((r) => `${r.topic}/${r.partition}/${r.offset}`)).size, sent.length, 'no (topic, partition, offset) twice');
    const first = all[0]!;
    t.same(first.value, JSON.parse(JSON.stringify({ topic: first.topic, i: (first.value as { i: number }).i })), 'the value is decoded');
    t.match(first, { key: /^k\d+$/, timestamp: Number, headers: {} }, 'key, timestamp and headers come along');
  });

  void t.test('a split reopened at its position continues after the last record read, and lag is reported per partition', async (t) => {
    const kafka = kafkaFor(t);
    const topic = await kafka.topic('ingress-position', 2);
    await kafka.produce(topic, Array.from({ length: 200 }, (_, i) => ({ key: `k${i}`, value: String(i) })));
    const ingress = kafkaIngress('in', { brokers, topics: topic, splits: 1, stopAtEnd: true });
    const [reader] = await openAll(t, ingress, undefined);
    const before = reader!.metrics();
    t.equal(before.partitions.reduce((sum, p) => sum + p.lag, 0), 200, 'before reading, the lag is the whole topic');
    const part = await drain(reader!, (records) => records.length >= 70);
    const position = reader!.position();
    t.equal(Object.values(position.next[topic] ?? {}).reduce((a, b) => a + b, 0), part.records.length, 'the position is one past each partition\'s last record read');
    await reader!.close();
    const [again] = await openAll(t, ingress, undefined, [structuredClone(position)]);
    const rest = await drain(again!);
    const values = [...part.records, ...rest.records].map((r) => Number(r.value)).sort((x, y) => x - y);
    t.same(values, Array.from({ length: 200 }, (_, i) => i), 'both reads together: every record once');
    const after = again!.metrics();
    t.equal(after.partitions.reduce((sum, p) => sum + p.lag, 0), 0, 'after reading everything, no lag');
    t.equal(after.recordsIn, rest.records.length, 'records in are counted');
    const wrong: KafkaPosition = { ...position, splits: 2 };
    await t.rejects(Promise.resolve(ingress.openSplit((await ingress.planSplits(undefined))[0], wrong)), { code: 'EDDY_INVALID_OPTION', message: /splits is 1 but the checkpoint was taken with 2/ });
  });

  void t.test('partitions added to a topic while it is read are picked up by the split that owns them', async (t) => {
    const kafka = kafkaFor(t);
    const topic = await kafka.topic('ingress-grow', 1);
    await kafka.produce(topic, [{ value: '"p0-a"' }]);
    const readers = await openAll(t, kafkaIngress('in', { brokers, topics: topic, splits: 2, partitionDiscoveryIntervalMs: 300 }), undefined);
    const first = await drain(readers[0]!, (records) => records.length >= 1);
    t.same(first.records.map((r) => r.value), ['p0-a']);
    await (await kafka.admin()).createPartitions({ topicPartitions: [{ topic, count: 4 }] });
    // Idempotent: a send to a partition whose leader is still being elected is retried, and must not land twice.
    const producer = kafka.kafka.producer({ idempotent: true });
    await producer.connect();
    t.teardown(() => producer.disconnect());
    await producer.send({ topic, messages: [1, 2, 3].map((partition) => ({ partition, value: JSON.stringify(`p${partition}`) })) });
    const even = await drain(readers[0]!, (records) => records.length >= 1, 30_000);
    const odd = await drain(readers[1]!, (records) => records.length >= 2, 30_000);
    t.same(even.records.map((r) => [r.partition, r.value]), [[2, 'p2']], 'split 0 found partition 2');
    t.same(odd.records.map((r) => [r.partition, r.value]).sort(), [[1, 'p1'], [3, 'p3']], 'split 1, which owned nothing at first, found partitions 1 and 3');
    t.match(readers[1]!.position().next[topic], { 1: 1, 3: 1 }, 'and records them in its position');
  });

  void t.test('an undecodable record is rejected with the reason and its coordinates; the position moves past it', async (t) => {
    const kafka = kafkaFor(t);
    const topic = await kafka.topic('ingress-bad', 1);
    await kafka.produce(topic, [{ value: '1' }, { key: 'bad', value: 'nope' }, { value: null }, { value: '2' }]);
    const [reader] = await openAll(t, kafkaIngress('in', { brokers, topics: topic, splits: 1, stopAtEnd: true }), undefined);
    const { records, rejected } = await drain(reader!);
    t.same(records.map((r) => r.value), [1, 2], 'the good records are read');
    t.equal(rejected.length, 2, 'the bad value and the tombstone are rejected');
    t.match(rejected[0], { reason: new RegExp(`${topic}/0 offset 1 is not valid json`), raw: { topic, partition: 0, offset: 1, key: 'bad', valueBase64: Buffer.from('nope').toString('base64') } });
    t.match(rejected[1], { reason: /offset 2 has no value/ });
    t.same(reader!.position().next[topic], { 0: 4 }, 'the position is past all four');
  });

  void t.test('a topic that does not exist is named in the error', async (t) => {
    const ingress = kafkaIngress('in', { brokers, topics: 'eddy-test-no-such-topic' });
    await t.rejects(Promise.resolve(ingress.planSplits(undefined)), { code: 'EDDY_SOURCE_FAILED', message: /eddy-test-no-such-topic do not exist/ });
  });
}
