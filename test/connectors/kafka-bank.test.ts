// The bank job over Kafka end to end, against the real broker: requests from a topic, one response
// per request on another, exactly once (read_committed) across worker kills and across a restore on
// another number of workers, and bad records in the dead-letter topic.
import t from 'tap';
import { kafkaBankJob } from '../../examples/bank/kafka-job.js';
import type { SubmitOptions } from '../../index.js';
import { LogLines, run, sleep, tempDir, within } from '../fixtures/harness.js';
import { asMessages, bankRequests, judge } from '../fixtures/kafka-bank-model.js';
import { brokers, haveBroker, kafkaFor } from '../fixtures/kafka-harness.js';
import { seededRandom } from '../../examples/bank/workload.js';
import { DeadLetterHeaders } from '../../index.js';

type Kafka = ReturnType<typeof kafkaFor>;

async function bankTopics(kafka: Kafka) {
  return {
    brokers,
    requests: await kafka.topic('bank-requests', 4),
    responses: await kafka.topic('bank-responses', 2),
    deadLetters: await kafka.topic('bank-dead-letters', 1),
    splits: 4,
  };
}

/** Reads `topic` (read_committed) until it holds `count` records or `timeoutMs` passes. */
async function waitForRecords(kafka: Kafka, topic: string, count: number, timeoutMs: number): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  let have = 0;
  while (Date.now() < deadline) {
    have = (await kafka.readAll(topic, 'read_committed')).length;
    if (have >= count) return have;
    await sleep(300);
  }
  return have;
}

if (haveBroker(t)) {
  void t.test('round trip: every request on the input topic gets its one right response on the output topic', async (t) => {
    const kafka = kafkaFor(t);
    const config = await bankTopics(kafka);
    const bank = bankRequests(20, 400, 1);
    await kafka.produce(config.requests, asMessages(bank.requests));
    const logs = new LogLines();
    const handle = run(t, kafkaBankJob(config), { workers: 2, log: logs.log, inputs: { requests: { stopAtEnd: true } } });
    const summary = await within(handle.done, 60_000, 'the bank job');
    t.equal(summary.endedBy, 'end-of-input', 'the job ended at the end offsets of the input');
    const verdict = judge(bank, await kafka.readAll(config.responses, 'read_uncommitted', bank.requests.length));
    t.equal(verdict.responses, bank.requests.length, 'one response per request');
    t.same(verdict.missing, [], 'none missing');
    t.same(verdict.wrong, [], 'each the model\'s answer');
    t.equal(logs.matching(/egress responses .*at-least-once/).length, 1, 'without checkpoints the egress warned, once, that its output is at-least-once');
    const sum = (name: string, labels: Record<string, string> = {}): number =>
      summary.connectors.filter((m) => m.name === name && Object.entries(labels).every(([k, v]) => m.labels[k] === v)).reduce((n, m) => n + m.value, 0);
    t.equal(sum('eddy_kafka_records_in_total', { ingress: 'requests' }), bank.requests.length, 'the connector metrics count every request read');
    t.equal(sum('eddy_kafka_records_out_total', { egress: 'responses' }), bank.requests.length, 'and every response published');
    t.equal(summary.connectors.filter((m) => m.name === 'eddy_kafka_consumer_lag').length, 4, 'lag is reported per input partition');
    t.equal(sum('eddy_kafka_consumer_lag'), 0, 'and is 0 at the end of the input');
  });

  void t.test('exactly once: workers killed at seeded random moments, a read_committed consumer sees each response once and the balances add up', async (t) => {
    const seed = Number(process.env.EDDY_TEST_SEED ?? 5);
    t.comment(`seed ${seed} (EDDY_TEST_SEED)`);
    const random = seededRandom(seed);
    const kafka = kafkaFor(t);
    const config = await bankTopics(kafka);
    const bank = bankRequests(30, 3000, seed);
    const logs = new LogLines();
    const handle = run(t, kafkaBankJob(config), {
      workers: 2,
      checkpointDir: tempDir(t, 'kafka-eo'),
      checkpointIntervalMs: 150,
      maxRestarts: 10,
      log: logs.log,
    });
    // The input arrives while the job runs (a live topic), so the kills land mid-stream.
    const producing = (async () => {
      const messages = asMessages(bank.requests);
      for (let i = 0; i < messages.length; i += 150) {
        await kafka.produce(config.requests, messages.slice(i, i + 150));
        await sleep(100);
      }
    })();
    const kills = 3;
    for (let k = 0; k < kills; k++) {
      await within(
        (async () => {
          while (handle.checkpoints().length === 0) await sleep(20);
        })(),
        30_000,
        'a first checkpoint',
      );
      await sleep(150 + Math.floor(random() * 600));
      const worker = Math.floor(random() * 2);
      t.comment(`kill ${k + 1}: worker ${worker}`);
      await handle.killWorker(worker);
    }
    await producing;
    const have = await waitForRecords(kafka, config.responses, bank.requests.length, 90_000);
    t.equal(have, bank.requests.length, 'every response became visible to read_committed');
    const summary = await within(handle.stop(), 60_000, 'stopping the job');
    t.equal(summary.restarts, kills, 'the job restored a checkpoint after each kill');
    const verdict = judge(bank, await kafka.readAll(config.responses, 'read_committed', bank.requests.length));
    t.same(verdict.duplicates, [], 'no response twice');
    t.same(verdict.missing, [], 'none missing');
    t.same(verdict.wrong, [], 'each the model\'s answer (no request applied twice)');
    t.equal(verdict.totalBalance, verdict.expectedTotalBalance, `total balance conserved (${verdict.totalBalance})`);
    const uncommitted = (await kafka.readAll(config.responses, 'read_uncommitted')).length;
    t.comment(`read_uncommitted sees ${uncommitted} records (aborted attempts included), read_committed ${verdict.responses}`);
  });

  void t.test('a checkpoint of the Kafka-sourced job restores on another number of workers at the checkpointed offsets', async (t) => {
    const kafka = kafkaFor(t);
    const config = await bankTopics(kafka);
    const bank = bankRequests(20, 600, 7);
    const half = 20 + 300;
    const checkpointDir = tempDir(t, 'kafka-rescale');
    const options: SubmitOptions = { checkpointDir, checkpointIntervalMs: 200 };
    await kafka.produce(config.requests, asMessages(bank.requests.slice(0, half)));
    const first = run(t, kafkaBankJob(config), { ...options, workers: 3 });
    t.equal(await waitForRecords(kafka, config.responses, half, 60_000), half, 'the first run on 3 workers answered the first half');
    await within(first.stop(), 60_000, 'stopping the first run'); // ends with a final checkpoint
    await kafka.produce(config.requests, asMessages(bank.requests.slice(half)));
    const second = run(t, kafkaBankJob(config), { ...options, workers: 1, restoreFrom: 'latest', inputs: { requests: { stopAtEnd: true } } });
    await within(second.done, 60_000, 'the restored run on 1 worker');
    const verdict = judge(bank, await kafka.readAll(config.responses, 'read_committed', bank.requests.length));
    t.equal(verdict.responses, bank.requests.length, 'one response per request over both runs');
    t.same(verdict.duplicates, [], 'the restored run did not read the first half again');
    t.same(verdict.missing, [], 'nor skip any of the second');
    t.same(verdict.wrong, [], 'and its state continued from the checkpoint');
  });

  void t.test('records that are not JSON go to the dead-letter topic with the reason in headers; the job goes on', async (t) => {
    const kafka = kafkaFor(t);
    const config = await bankTopics(kafka);
    const bank = bankRequests(5, 100, 3);
    const messages = asMessages(bank.requests);
    const bad = [
      { key: 'account-1', value: 'not json {' },
      { key: 'account-2', value: '{"requestId": "x", ' },
    ];
    messages.splice(40, 0, bad[0]!);
    messages.splice(80, 0, bad[1]!);
    await kafka.produce(config.requests, messages);
    const handle = run(t, kafkaBankJob(config), { workers: 2, checkpointDir: tempDir(t, 'kafka-dlq'), inputs: { requests: { stopAtEnd: true } } });
    await within(handle.done, 60_000, 'the bank job with bad records');
    const verdict = judge(bank, await kafka.readAll(config.responses, 'read_committed', bank.requests.length));
    t.equal(verdict.responses, bank.requests.length, 'every good request was answered');
    t.same(verdict.wrong, [], 'rightly');
    const letters = await kafka.readAll(config.deadLetters, 'read_committed', bad.length);
    t.same(letters.map((l) => l.value).sort(), bad.map((b) => b.value).sort(), 'each bad record is in the dead-letter topic once, its value as it was');
    for (const letter of letters) {
      t.match(letter.headers[DeadLetterHeaders.reason], /is not valid json/, 'the reason is in a header');
      t.equal(letter.headers[DeadLetterHeaders.code], 'EDDY_UNDECODABLE_PAYLOAD');
      t.equal(letter.headers[DeadLetterHeaders.topic], config.requests, 'with its source topic');
      t.ok(Number(letter.headers[DeadLetterHeaders.offset]) >= 0, 'and offset');
      t.equal(letter.key, bad.find((b) => b.value === letter.value)?.key, 'and its key');
    }
  });
}
