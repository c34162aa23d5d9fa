/**
 * Feeds and reads the bank job over Kafka (examples/bank/kafka-job.ts), as docs/connectors.md shows:
 *
 *   npx tsx examples/bank/kafka-client.ts produce [accounts] [operations]   # creates the topics, produces requests
 *   npx tsx examples/bank/kafka-client.ts consume                           # reads responses read_committed, counts them
 *
 * Brokers and topics come from the environment, as for the job (EDDY_KAFKA_BROKERS, BANK_*_TOPIC).
 */
import { Kafka, logLevel, Partitioners } from 'kafkajs';
import type { Response } from './account.js';
import { kafkaBankConfigFromEnv } from './kafka-job.js';
import { insertRequests, operationRequests } from './workload.js';

const config = kafkaBankConfigFromEnv();
const kafka = new Kafka({ clientId: 'bank-client', brokers: String(config.brokers).split(','), logLevel: logLevel.NOTHING });

async function produce(accounts: number, operations: number): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [config.requests, config.responses, config.deadLetters].map((topic) => ({ topic, numPartitions: 8 })) });
  await admin.disconnect();
  // Idempotent: a send retried after a timeout (a topic just created has no leader yet) is written once.
  const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner, idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  // Keyed by account (or coordinator), so each one's requests stay in order.
  const requests = [...insertRequests(accounts, 42), ...operationRequests({ accounts, operations, seed: 42, mix: { read: 0.4, write: 0.1, add: 0.2, subtract: 0.2, transfer2pc: 0.05, transferSaga: 0.05 } })];
  for (let i = 0; i < requests.length; i += 1000) {
    const batch = requests.slice(i, i + 1000);
    await producer.send({ topic: config.requests, messages: batch.map((r) => ({ key: r.account, value: JSON.stringify(r) })) });
  }
  await producer.disconnect();
  console.log(`produced ${requests.length} requests to ${config.requests}`);
}

async function consume(): Promise<void> {
  // read_committed (kafkajs's default): only output of completed checkpoints, each record once.
  const consumer = kafka.consumer({ groupId: `bank-client-${process.pid}`, readUncommitted: false });
  await consumer.connect();
  await consumer.subscribe({ topic: config.responses, fromBeginning: true });
  const byStatus = new Map<number, number>();
  const seen = new Set<string>();
  let duplicates = 0;
  await consumer.run({
    eachMessage: async ({ message }) => {
      const response = JSON.parse(message.value?.toString() ?? 'null') as Response;
      if (seen.has(response.requestId)) duplicates++;
      seen.add(response.requestId);
      byStatus.set(response.status, (byStatus.get(response.status) ?? 0) + 1);
    },
  });
  const timer = setInterval(() => console.log(`${seen.size} answered, by status ${JSON.stringify(Object.fromEntries(byStatus))}, ${duplicates} duplicates`), 1000);
  process.once('SIGINT', () => {
    clearInterval(timer);
    void consumer.disconnect().then(() => process.exit(0));
  });
}

const [command, accounts = '1000', operations = '10000'] = process.argv.slice(2);
if (command === 'produce') await produce(Number(accounts), Number(operations));
else if (command === 'consume') await consume();
else {
  console.error('usage: kafka-client.ts produce [accounts] [operations] | consume');
  process.exitCode = 2;
}
