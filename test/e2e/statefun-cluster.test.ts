// The Kafka bank job on a real Apache Flink StateFun 3.3.0 (scripts/statefun: its harness, a Flink
// MiniCluster) behind `eddy serve`, with the module.yaml `eddy statefun-module` writes: requests
// from a Kafka topic through StateFun's Kafka ingress and the served routers, one response per
// request through StateFun's exactly-once Kafka egress, checked against the model (read_committed).
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { sleep, tempDir } from '../fixtures/harness.js';
import { asMessages, type BankRun, bankRequests, judge } from '../fixtures/kafka-bank-model.js';
import { haveBroker, kafkaFor, type ReadBack } from '../fixtures/kafka-harness.js';
import { startServe, startStatefun, stopServe, writeModule } from '../fixtures/statefun-harness.js';

type Kafka = ReturnType<typeof kafkaFor>;

async function bankEnv(kafka: Kafka): Promise<NodeJS.ProcessEnv> {
  return {
    ...process.env,
    BANK_REQUESTS_TOPIC: await kafka.topic('sf-requests', 2),
    BANK_RESPONSES_TOPIC: await kafka.topic('sf-responses', 2),
    BANK_DEAD_LETTERS_TOPIC: await kafka.topic('sf-dead-letters', 1),
  };
}

/** Reads the responses (read_committed) until there are `count` or `timeoutMs` passed. */
async function responses(kafka: Kafka, topic: string, count: number, timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const records = await kafka.readAll(topic, 'read_committed');
    if (records.length >= count || Date.now() > deadline) return records;
    await sleep(500);
  }
}

/** Against the model: every request answered once, as the model says (no state change lost or applied twice), balances adding up. */
function checkResponses(t: Test, bank: BankRun, records: ReadBack[]): void {
  const verdict = judge(bank, records);
  t.equal(verdict.responses, bank.requests.length, 'one response per request');
  t.same(verdict.duplicates, [], 'none twice');
  t.same(verdict.missing, [], 'none missing');
  t.same(verdict.wrong, [], 'each the model\'s answer');
  t.equal(verdict.totalBalance, verdict.expectedTotalBalance, 'the balances add up');
}

const JOB = 'examples/bank/kafka-job.ts';

if (haveBroker(t)) {
  void t.test('the Kafka bank job on StateFun behind eddy serve: each request answered once, as the model says', async (t) => {
    const kafka = kafkaFor(t);
    const env = await bankEnv(kafka);
    const dir = tempDir(t, 'statefun');
    const serve = await startServe(t, [JOB, '--port', '0'], env);
    const module = join(dir, 'module.yaml');
    await writeModule(JOB, ['--endpoint', serve.url], module, env);
    await startStatefun(t, module, dir);

    const bank = bankRequests(20, 600, 7);
    await kafka.produce(env.BANK_REQUESTS_TOPIC!, asMessages(bank.requests));
    checkResponses(t, bank, await responses(kafka, env.BANK_RESPONSES_TOPIC!, bank.requests.length, 120_000));
    const served = await stopServe(serve);
    t.ok(served.handshakes >= 1, 'StateFun learned the state specs through the missing-state handshake');
    t.ok(served.invocations >= bank.requests.length * 2, 'each request ran its router function and its account function');
    t.equal(served.failed, 0, 'no request failed');
  });

  void t.test('a Flink failover mid-way (the endpoint dies, StateFun fails the job and restores its checkpoint): still each request answered once', async (t) => {
    const kafka = kafkaFor(t);
    const env = await bankEnv(kafka);
    const dir = tempDir(t, 'statefun-failover');
    const first = await startServe(t, [JOB, '--port', '0'], env);
    const port = new URL(first.url).port;
    const module = join(dir, 'module.yaml');
    // A short call deadline: a call that cannot reach the endpoint within it fails the task, and Flink
    // restarts the job from its last checkpoint (rewinding the Kafka ingress, aborting the egress's
    // open transaction, re-sending the calls in flight).
    await writeModule(JOB, ['--endpoint', first.url, '--call-timeout', '3s'], module, env);
    await startStatefun(t, module, dir);

    const bank = bankRequests(20, 4000, 11);
    const firstPart = Math.floor(bank.requests.length / 2);
    await kafka.produce(env.BANK_REQUESTS_TOPIC!, asMessages(bank.requests.slice(0, firstPart)));
    const before = await responses(kafka, env.BANK_RESPONSES_TOPIC!, 1, 120_000);
    first.child.kill('SIGKILL');
    await first.exited;
    t.ok(before.length > 0, `the endpoint died with responses flowing (${before.length} of the first ${firstPart} visible)`);
    // Records that arrive while the endpoint is down: StateFun's calls for them fail.
    await kafka.produce(env.BANK_REQUESTS_TOPIC!, asMessages(bank.requests.slice(firstPart)));
    // Down for longer than the call deadline: the job fails over at least once.
    await sleep(6_000);
    const second = await startServe(t, [JOB, '--port', port], env);

    checkResponses(t, bank, await responses(kafka, env.BANK_RESPONSES_TOPIC!, bank.requests.length, 180_000));
    const served = await stopServe(second);
    // StateFun keeps the state specs it learned in memory: only a restarted job asks again.
    t.ok(served.handshakes >= 1, `the job was restored (StateFun asked the new endpoint for the state specs again: ${served.handshakes} handshakes)`);
    t.equal(served.failed, 0, 'the new endpoint failed no request');
  });
}
