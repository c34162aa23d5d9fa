// The real Kafka broker the connector tests run against: checks with kafkajs that the broker named by
// EDDY_KAFKA_BROKERS does what the Kafka connectors rely on (DESIGN.md section 8): topics, produce and
// consume in a group, transactions that also commit a consumer-group offset (sendOffsets, the
// write-ahead sink's epoch marker), and read_committed consumers that skip aborted transactions.
// `npm test` starts a broker (scripts/with-kafka); by hand: `scripts/kafka start`.
import t, { type Test } from 'tap';
import { randomUUID } from 'node:crypto';
import { Kafka, logLevel, Partitioners } from 'kafkajs';
import type { Admin, Consumer, EachMessagePayload, Producer } from 'kafkajs';

const brokerList = (process.env.EDDY_KAFKA_BROKERS ?? '')
  .split(',')
  .map((b) => b.trim())
  .filter((b) => b !== '');

const HOW_TO_PROVIDE_A_BROKER =
  'EDDY_KAFKA_BROKERS is not set, so there is no Kafka broker to test against. ' +
  '`npm test` starts one itself (scripts/with-kafka; it needs Java 17+ and, once, Maven to fetch Kafka). ' +
  'To run this file alone: `scripts/with-kafka npx tap test/connectors/kafka-broker.test.ts`, or ' +
  '`scripts/kafka start` (prints 127.0.0.1:PORT), `EDDY_KAFKA_BROKERS=127.0.0.1:PORT npx tap ...`, `scripts/kafka stop`. ' +
  'Or set EDDY_KAFKA_BROKERS=host:port[,host:port] to a broker of your own.';

interface Received {
  key: string | null;
  value: string | null;
  partition: number;
  offset: string;
}

/** A kafkajs client for one test; every admin, producer and consumer it makes is disconnected at teardown. */
function kafkaFor(t: Test) {
  const kafka = new Kafka({
    clientId: `eddy-kafka-broker-test-${randomUUID().slice(0, 8)}`,
    brokers: brokerList,
    logLevel: logLevel.NOTHING, // kafkajs logs retried protocol errors at ERROR; failures surface as rejections
    connectionTimeout: 3000,
    retry: { retries: 8, initialRetryTime: 200 },
  });
  const clients: { disconnect(): Promise<void> }[] = [];
  t.teardown(async () => {
    await Promise.allSettled(clients.map((c) => c.disconnect()));
  });
  const track = <C extends { disconnect(): Promise<void> }>(client: C): C => {
    clients.push(client);
    return client;
  };
  return {
    admin: async (): Promise<Admin> => {
      const admin = track(kafka.admin());
      await admin.connect();
      return admin;
    },
    producer: async (transactionalId?: string): Promise<Producer> => {
      const producer = track(
        kafka.producer({
          createPartitioner: Partitioners.DefaultPartitioner,
          ...(transactionalId === undefined
            ? {}
            : { transactionalId, idempotent: true, maxInFlightRequests: 1, transactionTimeout: 30_000 }),
        }),
      );
      await producer.connect();
      return producer;
    },
    /**
     * Reads `topic` from the beginning in a fresh group until `done(received)` holds or `timeoutMs`
     * passes, then stops the consumer and returns what it read.
     */
    consume: async (
      topic: string,
      opts: { readUncommitted: boolean; done: (received: Received[]) => boolean; timeoutMs?: number },
    ): Promise<Received[]> => {
      const consumer: Consumer = track(
        kafka.consumer({ groupId: `eddy-test-${randomUUID()}`, readUncommitted: opts.readUncommitted, maxWaitTimeInMs: 200 }),
      );
      await consumer.connect();
      await consumer.subscribe({ topic, fromBeginning: true });
      const received: Received[] = [];
      const seen = new Set<string>();
      let finish = () => {};
      const finished = new Promise<void>((resolve) => (finish = resolve));
      await consumer.run({
        eachMessage: async ({ message, partition }: EachMessagePayload) => {
          // A consumer group is at-least-once: a rebalance in a fresh group can deliver a record again.
          // A record is its (partition, offset); keep each once.
          if (seen.has(`${partition}:${message.offset}`)) return;
          seen.add(`${partition}:${message.offset}`);
          received.push({
            key: message.key?.toString('utf8') ?? null,
            value: message.value?.toString('utf8') ?? null,
            partition,
            offset: message.offset,
          });
          if (opts.done(received)) finish();
        },
      });
      const timeoutMs = opts.timeoutMs ?? 30_000;
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)));
      await Promise.race([finished, timedOut]);
      clearTimeout(timer);
      await consumer.stop();
      return received;
    },
  };
}

const uniqueTopic = (what: string) => `eddy-test-${what}-${randomUUID()}`;

if (brokerList.length === 0) {
  void t.test('a Kafka broker is available for the connector tests', async (t) => {
    t.fail(HOW_TO_PROVIDE_A_BROKER);
  });
} else {
  void t.test('creates a topic, produces records and consumes them in a consumer group', async (t) => {
    const kafka = kafkaFor(t);
    const admin = await kafka.admin();
    const topic = uniqueTopic('plain');
    t.equal(await admin.createTopics({ topics: [{ topic, numPartitions: 3 }], waitForLeaders: true }), true, 'topic created');
    t.ok((await admin.listTopics()).includes(topic), 'the broker lists the new topic');

    const producer = await kafka.producer();
    const sent = Array.from({ length: 30 }, (_, i) => ({ key: `k${i % 7}`, value: `v${i}` }));
    const acks = await producer.send({ topic, acks: -1, messages: sent });
    t.ok(acks.length > 0 && acks.every((a) => a.errorCode === 0), 'the broker acknowledged the batch');

    const received = await kafka.consume(topic, { readUncommitted: false, done: (r) => r.length >= sent.length });
    t.equal(received.length, sent.length, 'every record came back');
    t.same(received.map((r) => r.value).sort(), sent.map((m) => m.value).sort(), 'the same values');
    const partitionsOfKey = new Map<string, Set<number>>();
    for (const r of received) {
      const key = r.key ?? '';
      partitionsOfKey.set(key, (partitionsOfKey.get(key) ?? new Set()).add(r.partition));
    }
    t.ok([...partitionsOfKey.values()].every((ps) => ps.size === 1), 'all records of a key are in one partition');
    for (const p of new Set(received.map((r) => r.partition))) {
      const values = received.filter((r) => r.partition === p).map((r) => Number((r.value ?? '').slice(1)));
      t.same(values, [...values].sort((a, b) => a - b), `partition ${p} keeps the send order`);
    }
  });

  void t.test('a transactional producer commits records and a consumer-group offset (sendOffsets) atomically', async (t) => {
    const kafka = kafkaFor(t);
    const admin = await kafka.admin();
    const topic = uniqueTopic('txn-out');
    const markerGroup = `eddy-test-marker-${randomUUID()}`;
    await admin.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true });

    const transactionalId = `eddy-test-txn-${randomUUID()}`;
    const producer = await kafka.producer(transactionalId);
    for (const epoch of [1, 2]) {
      const txn = await producer.transaction();
      await txn.send({ topic, messages: [{ key: 'e', value: `epoch-${epoch}-a` }, { key: 'e', value: `epoch-${epoch}-b` }] });
      await txn.sendOffsets({ consumerGroupId: markerGroup, topics: [{ topic, partitions: [{ partition: 0, offset: String(epoch) }] }] });
      await txn.commit();
    }
    // commit() returns once the coordinator has decided; the offset becomes readable when its markers
    // are written, a moment later. A new producer's InitProducerId waits for that, which is what the
    // sink does before it reads its marker (KafkaSinkImpl.newProducer).
    const next = await kafka.producer(transactionalId);
    await (await next.transaction()).abort();

    const offsets = await admin.fetchOffsets({ groupId: markerGroup, topics: [topic] });
    t.same(
      offsets.map((o) => ({ topic: o.topic, partitions: o.partitions.map((p) => ({ partition: p.partition, offset: p.offset })) })),
      [{ topic, partitions: [{ partition: 0, offset: '2' }] }],
      'the marker group holds the offset committed by the last transaction',
    );
    const received = await kafka.consume(topic, { readUncommitted: false, done: (r) => r.length >= 4 });
    t.same(
      received.map((r) => r.value),
      ['epoch-1-a', 'epoch-1-b', 'epoch-2-a', 'epoch-2-b'],
      'a read_committed consumer sees both committed transactions in order',
    );
  });

  void t.test('a read_committed consumer sees committed records but not those of an aborted transaction', async (t) => {
    const kafka = kafkaFor(t);
    const admin = await kafka.admin();
    const topic = uniqueTopic('txn-abort');
    const markerGroup = `eddy-test-marker-${randomUUID()}`;
    await admin.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true });

    const producer = await kafka.producer(`eddy-test-txn-${randomUUID()}`);
    const committed1 = await producer.transaction();
    await committed1.send({ topic, messages: [{ value: 'committed-1' }] });
    await committed1.sendOffsets({ consumerGroupId: markerGroup, topics: [{ topic, partitions: [{ partition: 0, offset: '1' }] }] });
    await committed1.commit();

    const aborted = await producer.transaction();
    await aborted.send({ topic, messages: [{ value: 'aborted-1' }, { value: 'aborted-2' }] });
    await aborted.sendOffsets({ consumerGroupId: markerGroup, topics: [{ topic, partitions: [{ partition: 0, offset: '99' }] }] });
    await aborted.abort();

    const committed2 = await producer.transaction();
    await committed2.send({ topic, messages: [{ value: 'committed-2' }] });
    await committed2.commit();

    // the aborted records lie between the committed ones in the log, so seeing committed-2 means the
    // read_committed consumer has gone past them
    const readCommitted = await kafka.consume(topic, {
      readUncommitted: false,
      done: (r) => r.some((m) => m.value === 'committed-2'),
    });
    t.same(readCommitted.map((r) => r.value), ['committed-1', 'committed-2'], 'read_committed: only the committed records');

    const readUncommitted = await kafka.consume(topic, { readUncommitted: true, done: (r) => r.length >= 4 });
    t.same(
      readUncommitted.map((r) => r.value),
      ['committed-1', 'aborted-1', 'aborted-2', 'committed-2'],
      'read_uncommitted: the aborted records are in the log (so the check above is not vacuous)',
    );

    const offsets = await admin.fetchOffsets({ groupId: markerGroup, topics: [topic] });
    t.equal(offsets[0]?.partitions[0]?.offset, '1', 'the offset sent in the aborted transaction was not committed');
  });

  void t.test('a new producer with the same transactional id aborts the open transaction and fences the old producer', async (t) => {
    const kafka = kafkaFor(t);
    const admin = await kafka.admin();
    const topic = uniqueTopic('txn-fence');
    await admin.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true });
    const transactionalId = `eddy-test-txn-${randomUUID()}`;

    const old = await kafka.producer(transactionalId);
    const oldTxn = await old.transaction();
    await oldTxn.send({ topic, messages: [{ value: 'from-the-old-producer' }] });

    const restarted = await kafka.producer(transactionalId); // InitProducerId: aborts the open one, bumps the epoch
    const txn = await restarted.transaction();
    await txn.send({ topic, messages: [{ value: 'from-the-restarted-producer' }] });
    await txn.commit();

    await t.rejects(oldTxn.commit(), 'the fenced producer cannot commit');

    const readCommitted = await kafka.consume(topic, {
      readUncommitted: false,
      done: (r) => r.some((m) => m.value === 'from-the-restarted-producer'),
    });
    t.same(readCommitted.map((r) => r.value), ['from-the-restarted-producer'], 'only the restarted producer\'s record is committed');
  });
}
