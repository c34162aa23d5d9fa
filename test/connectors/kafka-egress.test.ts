// The Kafka egress as a write-ahead sink (DESIGN.md section 8), driven directly through the Sink
// contract against the real broker: each publishEpoch is one transaction with its marker, the marker
// is what publishedEpoch reads, a restarted sink fences the old one, and nothing is published twice.
import t from 'tap';
import { randomUUID } from 'node:crypto';
import { Partitioners } from 'kafkajs';
import { kafkaEgress, type KafkaSink, type Sink } from '../../index.js';
import { LogLines, within } from '../fixtures/harness.js';
import { brokers, haveBroker, kafkaFor } from '../fixtures/kafka-harness.js';

interface Out {
  id: string;
  n: number;
}

type Teardowns = Parameters<typeof kafkaFor>[0];

/** Opens a sink of egress `out` of job `job`; closed at teardown. */
async function openSink(t: Teardowns, topic: string, context: { job: string; exactlyOnce?: boolean; epochScope?: string; log?: (line: string) => void }): Promise<KafkaSink<Out>> {
  const egress = kafkaEgress<Out>('out', { brokers, topic, key: (r) => r.id });
  const sink = (await egress.openSink({
    job: context.job,
    egress: 'out',
    exactlyOnce: context.exactlyOnce ?? true,
    epochScope: context.epochScope ?? 'scope-a',
    retryDeadlineMs: 60_000,
    log: context.log ?? (() => {}),
  })) as KafkaSink<Out>;
  t.teardown(() => sink.close());
  return sink;
}

const values = (records: ReadonlyArray<{ value: string | null }>): string[] => records.map((r) => (JSON.parse(r.value ?? 'null') as Out).id);

void t.test('option mistakes name the field and the fix', async (t) => {
  t.throws(() => kafkaEgress('out', { brokers: ['127.0.0.1:9092'] } as never), { code: 'EDDY_INVALID_OPTION', message: /kafkaEgress\(out\)\.topic/ });
  t.throws(() => kafkaEgress('out', { brokers: [], topic: 'x' }), { code: 'EDDY_INVALID_OPTION', message: /brokers is empty/ });
  t.throws(() => kafkaEgress('out', { brokers: 'localhost', topic: 'x' }), { code: 'EDDY_INVALID_OPTION', message: /brokers has "localhost"/ });
  t.throws(() => kafkaEgress('out', { brokers: 'localhost:9092', topic: 'bad topic' }), { code: 'EDDY_INVALID_OPTION', message: /topic is "bad topic"/ });
  t.throws(() => kafkaEgress('out', { brokers: 'localhost:9092', topic: 'x', transactionTimeoutMs: 5 }), { code: 'EDDY_INVALID_OPTION', message: /transactionTimeoutMs/ });
});

void t.test('an unreachable broker fails openSink within the connect timeout, naming the brokers and the fix', async (t) => {
  const egress = kafkaEgress<Out>('out', { brokers: '127.0.0.1:1', topic: 'nowhere', connectTimeoutMs: 1500 });
  const opening = Promise.resolve(egress.openSink({ job: 'j', egress: 'out', exactlyOnce: true, epochScope: 's', retryDeadlineMs: 60_000, log: () => {} }));
  await t.rejects(within(opening, 20_000, 'openSink against a closed port'), {
    code: 'EDDY_SINK_FAILED',
    message: /cannot reach the Kafka brokers 127\.0\.0\.1:1 .*scripts\/kafka start/,
  });
});

if (haveBroker(t)) {
  void t.test('publishEpoch publishes an epoch\'s records and its marker in one transaction; publishedEpoch reads the marker', async (t) => {
    const kafka = kafkaFor(t);
    const topic = await kafka.topic('egress-epochs', 2);
    const sink = await openSink(t, topic, { job: `job-${randomUUID().slice(0, 8)}` });
    t.equal(await sink.publishedEpoch!(), 0, 'a fresh scope has published nothing');
    await sink.publishEpoch!(1, [{ id: 'a', n: 1 }, { id: 'b', n: 2 }]);
    await sink.publishEpoch!(2, []);
    await sink.publishEpoch!(3, [{ id: 'c', n: 3 }]);
    t.equal(await sink.publishedEpoch!(), 3, 'the marker follows the last published epoch, empty ones included');
    const committed = await kafka.readAll(topic, 'read_committed', 3);
    t.same(values(committed).sort(), ['a', 'b', 'c'], 'a read_committed consumer sees every record once');
    t.same(committed.map((r) => r.key).sort(), ['a', 'b', 'c'], 'with the key from the key option');
    const metrics = sink.metrics();
    t.equal(metrics.transactions, 3, 'one transaction per epoch');
    t.equal(metrics.recordsOut, 3);
    t.equal(metrics.publishedEpoch, 3);
    t.equal(metrics.commitLatencyMs.count, 3, 'commit latency is measured per transaction');
  });

  void t.test('a restarted sink fences the old producer, and epochs at or below the marker are not published again', async (t) => {
    const kafka = kafkaFor(t);
    const topic = await kafka.topic('egress-fence');
    const job = `job-${randomUUID().slice(0, 8)}`;
    const first = await openSink(t, topic, { job });
    await first.publishEpoch!(1, [{ id: 'e1', n: 1 }]);
    await first.publishEpoch!(2, [{ id: 'e2', n: 2 }]);

    const second = await openSink(t, topic, { job });
    t.equal(await second.publishedEpoch!(), 2, 'the restarted sink reads the marker of epoch 2');
    // What the engine does after a restore that finds fewer epochs published than it thought.
    await second.publishEpoch!(1, [{ id: 'e1', n: 1 }]);
    await second.publishEpoch!(2, [{ id: 'e2', n: 2 }]);
    await second.publishEpoch!(3, [{ id: 'e3', n: 3 }]);
    await t.rejects(first.publishEpoch!(4, [{ id: 'zombie', n: 4 }]), { code: 'EDDY_SINK_FAILED' }, 'the old producer is fenced');
    t.equal(await second.publishedEpoch!(), 3);
    t.same(values(await kafka.readAll(topic, 'read_committed', 3)), ['e1', 'e2', 'e3'], 'every epoch once, in order, nothing from the fenced producer');
  });

  void t.test('a transaction left open by a crash is aborted when the sink restarts, and the epoch is published once', async (t) => {
    const kafka = kafkaFor(t);
    const topic = await kafka.topic('egress-crash');
    const job = `job-${randomUUID().slice(0, 8)}`;
    const first = await openSink(t, topic, { job });
    await first.publishEpoch!(1, [{ id: 'e1', n: 1 }]);
    // The crash: epoch 2 sent with its marker, never committed, by the same transactional id.
    const crashed = kafka.kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner, transactionalId: `eddy-${job}-out`, idempotent: true, maxInFlightRequests: 1 });
    await crashed.connect();
    t.teardown(() => crashed.disconnect());
    const open = await crashed.transaction();
    await open.send({ topic, messages: [{ key: 'e2', value: JSON.stringify({ id: 'e2', n: 2 }) }] });
    await open.sendOffsets({ consumerGroupId: `eddy-epochs-${job}-out-scope-a`, topics: [{ topic, partitions: [{ partition: 0, offset: '2' }] }] });

    const restarted = await openSink(t, topic, { job });
    t.equal(await restarted.publishedEpoch!(), 1, 'the uncommitted marker does not count');
    await restarted.publishEpoch!(2, [{ id: 'e2', n: 2 }]);
    t.same(values(await kafka.readAll(topic, 'read_committed', 2)), ['e1', 'e2'], 'read_committed: epoch 2 exactly once');
    t.same(values(await kafka.readAll(topic, 'read_uncommitted', 3)), ['e1', 'e2', 'e2'], 'read_uncommitted: the aborted copy is in the log (so the check above is not vacuous)');
  });

  void t.test('an epoch larger than the broker\'s largest message goes out whole, in one transaction', async (t) => {
    const kafka = kafkaFor(t);
    const topic = await kafka.topic('egress-big');
    const sink = await openSink(t, topic, { job: `job-${randomUUID().slice(0, 8)}` });
    const pad = 'x'.repeat(1000);
    const records = Array.from({ length: 3000 }, (_, n) => ({ id: `r${n}`, n, pad }));
    await sink.publishEpoch!(1, records);
    const committed = await kafka.readAll(topic, 'read_committed', records.length);
    t.equal(committed.length, records.length, '3 MB in one epoch (the broker takes 1 MB per batch) all arrive');
    t.equal(sink.metrics().transactions, 1, 'in one transaction');
  });

  void t.test('each epoch scope has its own marker', async (t) => {
    const kafka = kafkaFor(t);
    const topic = await kafka.topic('egress-scope');
    const job = `job-${randomUUID().slice(0, 8)}`;
    const a = await openSink(t, topic, { job, epochScope: 'scope-a' });
    await a.publishEpoch!(5, [{ id: 'a5', n: 5 }]);
    await a.close();
    const b = await openSink(t, topic, { job, epochScope: 'scope-b' });
    t.equal(await b.publishedEpoch!(), 0, 'a new checkpoint lineage starts from nothing');
    await b.publishEpoch!(1, [{ id: 'b1', n: 1 }]);
    t.same(values(await kafka.readAll(topic, 'read_committed', 2)), ['a5', 'b1']);
  });

  void t.test('without checkpoints, write sends at once (at-least-once) and the log says so once', async (t) => {
    const kafka = kafkaFor(t);
    const topic = await kafka.topic('egress-alo');
    const logs = new LogLines();
    const sink: Sink<Out> = await openSink(t, topic, { job: `job-${randomUUID().slice(0, 8)}`, exactlyOnce: false, log: logs.log });
    await sink.write([{ id: 'x', n: 1 }]);
    await sink.write([{ id: 'y', n: 2 }]);
    t.same(values(await kafka.readAll(topic, 'read_uncommitted', 2)), ['x', 'y']);
    t.equal(logs.matching(/at-least-once/).length, 1, 'one warning');
    t.match(logs.lines[0], /checkpointDir/, 'which says how to get exactly-once');
  });

  void t.test('a topic that does not exist is named in the error', async (t) => {
    const egress = kafkaEgress<Out>('out', { brokers, topic: `eddy-test-missing-${randomUUID().slice(0, 8)}` });
    await t.rejects(Promise.resolve(egress.openSink({ job: 'j', egress: 'out', exactlyOnce: true, epochScope: 's', retryDeadlineMs: 60_000, log: () => {} })), {
      code: 'EDDY_SINK_FAILED',
      message: /topic eddy-test-missing-\S+ does not exist/,
    });
  });
}
