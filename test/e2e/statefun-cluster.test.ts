// The Kafka bank job on a real Apache Flink StateFun 3.3.0 (scripts/statefun: its harness, a Flink
// MiniCluster) behind `eddy serve`, with the module.yaml `eddy statefun-module` writes: requests
// from a Kafka topic through StateFun's Kafka ingress and the served routers, one response per
// request through StateFun's exactly-once Kafka egress, checked against the model (read_committed).
import { join } from 'node:path';
import type { Message } from 'kafkajs';
import type { ChaosRequest } from '../fixtures/chaos-kafka-bank-job.js';
import t, { type Test } from 'tap';
import { sleep, tempDir } from '../fixtures/harness.js';
import { asMessages, type BankRun, bankRequests, judge } from '../fixtures/kafka-bank-model.js';
import { haveBroker, kafkaFor, type ReadBack } from '../fixtures/kafka-harness.js';
import { startServe, startStatefun, stopServe, writeModule } from '../fixtures/statefun-harness.js';

// The harness tests run one after another in this file (two Flink JVMs at once on 2 cores starve each
// other); each takes a minute or more while the rest of the suite loads the machine.
t.setTimeout(900_000);

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

// 2PC transfers, sagas and 2PC reads of every account on a real Apache Flink StateFun 3.3.0
// (scripts/statefun) behind `eddy serve`, with Kafka in and out (test/fixtures/chaos-kafka-bank-job.ts),
// and a Flink failover mid-way: every request answered once (read_committed), every committed 2PC
// read of the 2PC accounts sums to their money, and the final balances are what the committed
// transfers say.
const CHAOS_JOB = 'test/fixtures/chaos-kafka-bank-job.ts';
const ACCOUNTS = 8;
const INITIAL = 1000;
const TOTAL = ACCOUNTS * INITIAL;
const accountId = (i: number): string => `acct-${i}`;

interface ChaosResponse {
  requestId: string;
  op: string;
  status: number;
  account?: string;
  balance?: number;
}

/** StateFun's Kafka ingress needs a key on every record: the instance the request goes to. */
const asMessage = (request: ChaosRequest): Message => ({ key: request.kind === 'account' ? request.account : request.coordinator, value: JSON.stringify(request) });

/**
 * 2PC transfers and 2PC reads over the first TPC_ACCOUNTS accounts, sagas over the others: a saga
 * holds no locks, so a read may see its debit before its credit (as in `eddy run`); reads must be
 * consistent with the 2PC transfers.
 */
const TPC_ACCOUNTS = 5;

function workload(seed: number, count: number): ChaosRequest[] {
  let state = seed;
  const random = (): number => ((state = (state * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  const tpcAccounts = Array.from({ length: TPC_ACCOUNTS }, (_, i) => accountId(i));
  const pair = (first: number, size: number): [string, string] => {
    const from = Math.floor(random() * size);
    const to = (from + 1 + Math.floor(random() * (size - 1))) % size;
    return [accountId(first + from), accountId(first + to)];
  };
  return Array.from({ length: count }, (_, i): ChaosRequest => {
    const pick = random();
    if (pick < 0.2) return { kind: 'read', coordinator: `reader-${i % 4}`, message: { requestId: `read-${i}`, accounts: tpcAccounts } };
    const saga = pick >= 0.65;
    const [from, to] = saga ? pair(TPC_ACCOUNTS, ACCOUNTS - TPC_ACCOUNTS) : pair(0, TPC_ACCOUNTS);
    const message = { requestId: `transfer-${i}`, from, to, amount: 1 + Math.floor(random() * 400) };
    return { kind: saga ? 'saga' : '2pc', coordinator: `coordinator-${i % 12}`, message };
  });
}

async function until(kafka: ReturnType<typeof kafkaFor>, topic: string, done: (responses: ChaosResponse[]) => boolean, timeoutMs: number): Promise<{ records: ReadBack[]; responses: ChaosResponse[] }> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const records = await kafka.readAll(topic, 'read_committed');
    const responses = records.map((record) => JSON.parse(record.value ?? 'null') as ChaosResponse);
    if (done(responses) || Date.now() > deadline) return { records, responses };
    await sleep(500);
  }
}

if (haveBroker(t)) {
  void t.test('2PC transfers, sagas and 2PC reads on a real StateFun behind eddy serve, through a Flink failover: each answered once, every committed read consistent, the money conserved', async (t) => {
    const kafka = kafkaFor(t);
    const env = {
      ...process.env,
      CHAOS_REQUESTS_TOPIC: await kafka.topic('sf-tx-requests', 2),
      CHAOS_RESPONSES_TOPIC: await kafka.topic('sf-tx-responses', 2),
      CHAOS_DEAD_LETTERS_TOPIC: await kafka.topic('sf-tx-dead-letters', 1),
    };
    const dir = tempDir(t, 'statefun-tx');
    const first = await startServe(t, [CHAOS_JOB, '--port', '0'], env);
    const port = new URL(first.url).port;
    const module = join(dir, 'module.yaml');
    await writeModule(CHAOS_JOB, ['--endpoint', first.url, '--call-timeout', '3s'], module, env);
    await startStatefun(t, module, dir);

    const inserts: ChaosRequest[] = Array.from({ length: ACCOUNTS }, (_, i) => ({
      kind: 'account',
      account: accountId(i),
      message: { op: 'insert', requestId: `insert-${i}`, record: { fields: [], balance: INITIAL } },
    }));
    await kafka.produce(env.CHAOS_REQUESTS_TOPIC, inserts.map(asMessage));
    await until(kafka, env.CHAOS_RESPONSES_TOPIC, (r) => r.filter((x) => x.requestId.startsWith('insert-')).length === ACCOUNTS, 120_000);

    const requests = workload(5, 240);
    const half = requests.length / 2;
    await kafka.produce(env.CHAOS_REQUESTS_TOPIC, requests.slice(0, half).map(asMessage));
    const topLevel = new Set(requests.map((r) => r.message.requestId));
    const answered = (responses: ChaosResponse[]): number => responses.filter((r) => topLevel.has(r.requestId)).length;
    await until(kafka, env.CHAOS_RESPONSES_TOPIC, (r) => answered(r) > 0, 120_000);
    // The endpoint dies with transactions in flight; what arrives meanwhile fails its calls: Flink fails over.
    first.child.kill('SIGKILL');
    await first.exited;
    await kafka.produce(env.CHAOS_REQUESTS_TOPIC, requests.slice(half).map(asMessage));
    await sleep(6_000);
    const second = await startServe(t, [CHAOS_JOB, '--port', port], env);
    const { responses } = await until(kafka, env.CHAOS_RESPONSES_TOPIC, (r) => answered(r) >= requests.length, 300_000);

    const finals: ChaosRequest[] = Array.from({ length: ACCOUNTS }, (_, i) => ({ kind: 'account', account: accountId(i), message: { op: 'read', requestId: `final-${i}` } }));
    await kafka.produce(env.CHAOS_REQUESTS_TOPIC, finals.map(asMessage));
    const all = (await until(kafka, env.CHAOS_RESPONSES_TOPIC, (r) => r.filter((x) => x.requestId.startsWith('final-')).length === ACCOUNTS, 120_000)).responses;

    const byId = new Map<string, ChaosResponse[]>();
    for (const response of all) byId.set(response.requestId, [...(byId.get(response.requestId) ?? []), response]);
    const twice = [...byId].filter(([, list]) => list.length > 1).map(([id]) => id);
    t.same(twice.slice(0, 5), [], 'no response twice (transfers, reads, and every leg)');
    const missing = [...topLevel].filter((id) => !byId.has(id));
    t.same(missing.slice(0, 5), [], `every request answered (${answered(responses)} of ${requests.length} before the final reads)`);

    // Every committed read of all accounts sees all the money: its legs are the balances of one moment.
    const reads = requests.filter((r) => r.kind === 'read').map((r) => r.message.requestId);
    const committedReads = reads.filter((id) => byId.get(id)?.[0]?.status === 200);
    t.ok(committedReads.length > 0, `${committedReads.length} of ${reads.length} reads committed`);
    const inconsistent = committedReads.filter((id) => {
      const legs = Array.from({ length: TPC_ACCOUNTS }, (_, i) => byId.get(`${id}:${accountId(i)}`)?.[0]?.balance);
      return legs.some((balance) => balance === undefined) || legs.reduce((sum: number, balance) => sum + balance!, 0) !== TPC_ACCOUNTS * INITIAL;
    });
    t.same(inconsistent.slice(0, 5), [], 'every committed read sums to the money of its accounts (one moment of all of them)');

    // The final balances: the initial ones moved by exactly the transfers that committed (2PC) or succeeded (saga).
    const expected = new Map(Array.from({ length: ACCOUNTS }, (_, i) => [accountId(i), INITIAL]));
    const outcomes = { committed: 0, refused: 0 };
    for (const request of requests) {
      if (request.kind !== '2pc' && request.kind !== 'saga') continue;
      const status = byId.get(request.message.requestId)?.[0]?.status;
      if (status === 200) {
        outcomes.committed++;
        expected.set(request.message.from, expected.get(request.message.from)! - request.message.amount);
        expected.set(request.message.to, expected.get(request.message.to)! + request.message.amount);
      } else outcomes.refused++;
    }
    const finalBalances = new Map(Array.from({ length: ACCOUNTS }, (_, i) => [accountId(i), byId.get(`final-${i}`)?.[0]?.balance]));
    t.same(Object.fromEntries(finalBalances), Object.fromEntries(expected), `balances as the ${outcomes.committed} successful transfers say (${outcomes.refused} refused for funds)`);
    t.equal([...finalBalances.values()].reduce((sum: number, balance) => sum + (balance ?? 0), 0), TOTAL, 'the money is conserved');

    const served = await stopServe(second);
    t.ok(served.handshakes >= 1, `the job was restored (StateFun asked the new endpoint for the state specs again: ${served.handshakes} handshakes)`);
    t.equal(served.failed, 0, 'the new endpoint failed no request');
  });
}
