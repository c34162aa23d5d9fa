// A broker stalled (SIGSTOP) for longer than the sink's transaction timeout, the consumers' session
// timeout and the job's connectorRetryDeadlineMs, under the Kafka bank job checkpointing every 200 ms:
// the attempt fails, the job restores (counted in restarts), publishes the epochs it had not got out
// on a fresh producer, and a read_committed consumer sees every response exactly once. The broker is
// this test's own (the shared one is never paused).
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { kafkaBankJob } from '../../examples/bank/kafka-job.js';
import { LogLines, run, sleep, tempDir, within } from '../fixtures/harness.js';
import { asMessages, bankRequests, judge } from '../fixtures/kafka-bank-model.js';

const repo = join(import.meta.dirname, '..', '..');
const stateFile = join(tempDir(t, 'stall-broker'), 'broker.env');
const env = { ...process.env, EDDY_KAFKA_STATE: stateFile };
const address = execFileSync(join(repo, 'scripts', 'kafka'), ['start'], { env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim().split('\n').at(-1)!;
const pid = Number(/^KAFKA_PID=(\d+)$/m.exec(readFileSync(stateFile, 'utf8'))![1]);
t.teardown(() => {
  try {
    process.kill(pid, 'SIGCONT');
  } catch {
    // already gone
  }
  execFileSync(join(repo, 'scripts', 'kafka'), ['stop'], { env, stdio: 'inherit' });
});
// The harness reads EDDY_KAFKA_BROKERS when it is imported: point it at this test's broker first.
process.env.EDDY_KAFKA_BROKERS = address;
const { kafkaFor } = await import('../fixtures/kafka-harness.js');


/**
 * Runs the bank job, stalls the broker for `stallMs` while a checkpoint's responses are being
 * published, and counts every response (read_committed) against the model. Returns the restarts.
 */
async function stallRun(t: Test, stallMs: number, connectorRetryDeadlineMs: number): Promise<number> {
  const kafka = kafkaFor(t);
  const config = {
    brokers: address,
    requests: await kafka.topic('stall-requests', 4),
    responses: await kafka.topic('stall-responses', 2),
    deadLetters: await kafka.topic('stall-dead-letters', 1),
    splits: 4,
    transactionTimeoutMs: 5_000,
  };
  const bank = bankRequests(30, 2400, 11);
  const messages = asMessages(bank.requests);
  const logs = new LogLines();
  const handle = run(t, kafkaBankJob(config), {
    workers: 2,
    checkpointDir: tempDir(t, 'stall-chk'),
    checkpointIntervalMs: 200,
    connectorRetryDeadlineMs,
    log: logs.log,
  });
  const produce = async (from: number, to: number): Promise<void> => {
    for (let i = from; i < to; i += 100) {
      await kafka.produce(config.requests, messages.slice(i, Math.min(to, i + 100)));
      await sleep(50);
    }
  };
  await produce(0, 1200);
  // Output in flight when the broker stops: epochs completed, their transactions under way.
  await within(
    (async () => {
      while (handle.checkpoints().length < 3) await sleep(50);
    })(),
    60_000,
    'three checkpoints',
  );
  // Responses that are being published when the broker stops: their requests were just read.
  const before = (await kafka.readAll(config.responses, 'read_committed')).length;
  await kafka.produce(config.requests, messages.slice(1200, 1400));
  await sleep(150);
  t.comment(`SIGSTOP broker ${pid} for ${stallMs} ms (${before} responses out)`);
  process.kill(pid, 'SIGSTOP');
  await sleep(stallMs);
  process.kill(pid, 'SIGCONT');
  t.comment('SIGCONT');
  await produce(1400, messages.length);
  let have = 0;
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline && have < messages.length) {
    have = (await kafka.readAll(config.responses, 'read_committed').catch(() => [])).length;
    if (handle.status().state === 'failed') break;
    await sleep(500);
  }
  t.not(handle.status().state, 'failed', 'the job did not fail');
  const summary = await within(handle.stop(), 90_000, 'stopping the job');
  const records = await kafka.readAll(config.responses, 'read_committed', messages.length);
  const verdict = judge(bank, records);
  const seen = new Map<string, number>();
  for (const r of records) {
    const id = (JSON.parse(r.value ?? 'null') as { requestId: string }).requestId;
    seen.set(id, (seen.get(id) ?? 0) + 1);
  }
  const duplicated = [...seen.values()].reduce((n, c) => n + c - 1, 0);
  const lost = bank.requests.filter((r) => !seen.has(r.requestId)).length;
  t.comment(`responses ${records.length} of ${messages.length}; lost ${lost}, duplicated ${duplicated}; restarts ${summary.restarts}`);
  t.equal(lost, 0, 'no response lost');
  t.equal(duplicated, 0, 'no response duplicated');
  t.same(verdict.wrong, [], "each the model's answer (no request applied twice)");
  for (const line of logs.matching(/failed|restoring|again|retrying/)) t.comment(line.slice(0, 300));
  return summary.restarts;
}

void t.test('a broker stalled longer than the transaction timeout and the retry deadline: nothing lost, nothing duplicated, the job restores and goes on', async (t) => {
  const restarts = await stallRun(t, 15_000, 8_000);
  t.ok(restarts >= 1, `the attempt failed and the job restored its last checkpoint (${restarts} restarts)`);
});

void t.test('a broker stalled longer than the transaction and session timeouts but within the retry deadline: retried in place, nothing lost or duplicated, no restore', async (t) => {
  const restarts = await stallRun(t, 12_000, 60_000);
  t.equal(restarts, 0, 'the sinks and sources retried; the job never restored');
});
