/**
 * YCSB over Kafka (the seed thesis's setup, on one machine): an open-loop generator produces requests
 * (50% reads, 50% writes, uniform keys) into the input topic at a fixed rate, 5 ticks a second; the
 * job answers each on the output topic; a read_committed consumer matches responses to requests.
 * Per run: the Kafka ingress, the engine with LevelDB state, and the Kafka egress, at-least-once
 * (no checkpoints) and exactly-once with checkpoints every 100 ms and 1 s.
 *
 * Measures, per input rate step: the share of the step's requests answered by the end of the step
 * plus a grace period (a step is sustained at >= 95%; the rate is stepped up until one is not), and
 * two latencies from the request's Kafka timestamp: to the response's Kafka timestamp (what the
 * thesis reports; with exactly-once the response is produced when its checkpoint completes) and to
 * the moment the read_committed consumer receives it (what a downstream reader sees). Does not
 * measure: the broker on another machine (here it shares the 2 cores with the workers, the job
 * manager, the generator and the consumer), replication, or transactions in the workload.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as hdr from 'hdr-histogram-js';
import { type Kafka, Partitioners } from 'kafkajs';
import { engine, type JobHandle } from '../index.js';
import { writeCharts } from './plot.js';
import { benchKafka, type BenchFlags, printTable, round, type Row, writeResults } from './harness.js';
import { kafkaYcsbJob } from './kafka-job.js';
import { kafkaRequestKey, kafkaRequestValue } from './ycsb-records.js';

const RATES = [1000, 2000, 3000, 4500, 6000, 8000, 10_000, 13_000, 16_000, 20_000, 25_000];
const TICKS_PER_SEC = 5;
const MODES = [
  { mode: 'at-least-once', checkpointIntervalMs: undefined },
  { mode: 'exactly-once', checkpointIntervalMs: 100 },
  { mode: 'exactly-once', checkpointIntervalMs: 1000 },
] as const;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const histogram = (): hdr.Histogram => hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 600_000, numberOfSignificantValueDigits: 3 });

interface Step {
  rate: number;
  sent: number;
  answered: number;
  append: hdr.Histogram;
  visible: hdr.Histogram;
}

/** Request bookkeeping and the read_committed consumer that matches responses to requests. */
class Tracker {
  private readonly sentAt: number[] = [];
  private readonly stepOf: Array<Step | undefined> = [];
  private readonly seen = new Set<number>();
  answered = 0;

  request(id: number, at: number, step: Step | undefined): void {
    this.sentAt[id] = at;
    this.stepOf[id] = step;
    if (step !== undefined) step.sent++;
  }

  response(id: number, timestamp: number, now: number): void {
    if (this.seen.has(id) || this.sentAt[id] === undefined) return;
    this.seen.add(id);
    this.answered++;
    const step = this.stepOf[id];
    if (step === undefined) return;
    step.answered++;
    step.append.recordValue(Math.max(1, timestamp - this.sentAt[id]));
    step.visible.recordValue(Math.max(1, now - this.sentAt[id]));
  }
}

async function runMode(kafka: Kafka, brokers: string, flags: BenchFlags, keys: number, mode: (typeof MODES)[number], dir: string): Promise<Row[]> {
  const admin = kafka.admin();
  await admin.connect();
  const id = randomUUID().slice(0, 8);
  const requests = `eddy-bench-requests-${id}`;
  const responses = `eddy-bench-responses-${id}`;
  await admin.createTopics({ topics: [{ topic: requests, numPartitions: 4 }, { topic: responses, numPartitions: 4 }], waitForLeaders: true });
  const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner, idempotent: true });
  await producer.connect();
  const consumer = kafka.consumer({ groupId: `eddy-bench-${id}`, readUncommitted: false, maxWaitTimeInMs: 50 });
  const tracker = new Tracker();
  await consumer.connect();
  await consumer.subscribe({ topics: [responses], fromBeginning: true });
  await consumer.run({
    eachBatch: async ({ batch }) => {
      const now = Date.now();
      for (const message of batch.messages) tracker.response(Number(message.key?.toString()), Number(message.timestamp), now);
    },
  });

  let handle: JobHandle | undefined;
  const rows: Row[] = [];
  try {
    const checkpointDir = mode.checkpointIntervalMs === undefined ? undefined : join(dir, `chk-${id}`);
    handle = engine.submit(kafkaYcsbJob({ brokers, requests, responses }), {
      workers: 2,
      log: () => {},
      ...(checkpointDir === undefined ? {} : { checkpointDir, checkpointIntervalMs: mode.checkpointIntervalMs }),
    });
    const started = handle;
    void started.done.catch((error: unknown) => console.error(`bench job failed: ${String(error)}`));
    let next = 0;
    const value = (requestId: number, op: 'insert' | 'read' | 'write', key: string): string => kafkaRequestValue(flags.seed, requestId, op, key);
    // Load: one insert per key, answered before the timed steps.
    const inserts = Array.from({ length: keys }, (_, k) => {
      const requestId = next++;
      const at = Date.now();
      tracker.request(requestId, at, undefined);
      return { key: `user${k}`, value: value(requestId, 'insert', `user${k}`), timestamp: String(at) };
    });
    for (let i = 0; i < inserts.length; i += 2000) await producer.send({ topic: requests, acks: -1, messages: inserts.slice(i, i + 2000) });
    const loadDeadline = Date.now() + 60_000;
    while (tracker.answered < keys) {
      if (Date.now() > loadDeadline) throw new Error(`the load phase did not finish within 60 s (${tracker.answered} of ${keys})`);
      await sleep(50);
    }

    const graceMs = 1000 + 2 * (mode.checkpointIntervalMs ?? 0);
    let maxSustained = 0;
    for (const rate of RATES) {
      const step: Step = { rate, sent: 0, answered: 0, append: histogram(), visible: histogram() };
      const t0 = Date.now();
      for (let tick = 0; tick < flags.durationS * TICKS_PER_SEC; tick++) {
        // Open loop: each tick's batch goes out at its scheduled time, however long the last one took.
        const due = t0 + (tick * 1000) / TICKS_PER_SEC;
        if (due > Date.now()) await sleep(due - Date.now());
        const at = Date.now();
        const count = Math.floor(rate / TICKS_PER_SEC);
        const messages = Array.from({ length: count }, () => {
          const requestId = next++;
          const key = kafkaRequestKey(flags.seed, requestId, keys);
          tracker.request(requestId, at, step);
          return { key, value: value(requestId, requestId % 2 === 0 ? 'read' : 'write', key), timestamp: String(at) };
        });
        await producer.send({ topic: requests, acks: -1, messages });
      }
      const end = t0 + flags.durationS * 1000 + graceMs;
      while (Date.now() < end && step.answered < step.sent) await sleep(20);
      const share = step.answered / step.sent;
      const sustained = share >= 0.95;
      if (sustained) maxSustained = rate;
      const q = (h: hdr.Histogram, p: number): number => round(h.getValueAtPercentile(p), 0);
      const row: Row = {
        mode: mode.mode,
        checkpointMs: mode.checkpointIntervalMs ?? '-',
        rate,
        answered: `${Math.round(share * 100)}%`,
        appendP50Ms: q(step.append, 50),
        appendP99Ms: q(step.append, 99),
        visibleP50Ms: q(step.visible, 50),
        visibleP99Ms: q(step.visible, 99),
      };
      rows.push(row);
      if (flags.json) console.log(JSON.stringify(row));
      else console.error(`kafka ${mode.mode} ${mode.checkpointIntervalMs ?? '-'} ms: ${rate}/s -> ${row.answered} answered, visible p50 ${row.visibleP50Ms} ms p99 ${row.visibleP99Ms} ms`);
      if (!sustained) break;
    }
    for (const row of rows) row.maxSustained = maxSustained;
  } finally {
    await handle?.stop().catch(() => {});
    await consumer.disconnect().catch(() => {});
    await producer.disconnect().catch(() => {});
    await admin.deleteTopics({ topics: [requests, responses] }).catch(() => {});
    await admin.disconnect().catch(() => {});
  }
  return rows;
}

export async function runKafkaBench(flags: BenchFlags, command: string): Promise<void> {
  const bench = benchKafka('kafka');
  if (bench === undefined) return;
  const { brokers, kafka } = bench;
  const dir = mkdtempSync(join(tmpdir(), 'eddy-bench-kafka-'));
  const rows: Row[] = [];
  try {
    for (const keys of flags.keys) for (const mode of MODES) rows.push(...(await runMode(kafka, brokers, flags, keys, mode, dir)));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const table = printTable(rows);
  if (!flags.json) console.log(table);
  const charts = !flags.plot
    ? ''
    : await writeCharts([
        {
          name: 'kafka-latency',
          title: 'YCSB over Kafka: latency percentiles against input rate',
          rows: rows.flatMap((r) =>
            (['visibleP50Ms', 'visibleP99Ms'] as const).map((p) => ({
              rate: r.rate,
              run: `${String(r.mode)}${r.checkpointMs === '-' ? '' : `, checkpoint ${String(r.checkpointMs)} ms`}, ${String(r.answered)} answered`.replace(/, \d+% answered$/, ''),
              percentile: p === 'visibleP50Ms' ? 'p50' : 'p99',
              ms: Math.max(1, Number(r[p])),
            })),
          ),
          spec: {
            mark: { type: 'line', point: true },
            encoding: {
              x: { field: 'rate', type: 'quantitative', title: 'input rate (requests/s)' },
              y: { field: 'ms', type: 'quantitative', title: 'request to read_committed response (ms, log)', scale: { type: 'log' } },
              color: { field: 'run', type: 'nominal', title: 'run' },
              strokeDash: { field: 'percentile', type: 'nominal' },
            },
          },
        },
      ]);
  if (flags.write) {
    writeResults(
      'YCSB over Kafka',
      command,
      table,
      `The Kafka broker (single node, KRaft, scripts/kafka) runs on the same 2 cores as the job (2 workers), its job manager, the generator and ` +
        `the measuring consumer. Input: 4 partitions, output: 4 partitions; ${flags.keys.join(', ')} keys, loaded first; then 50% reads and 50% ` +
        `writes over uniform keys, produced open-loop in 5 ticks a second for ${flags.durationS} s per rate step. \`answered\` is the share of a ` +
        'step\'s requests whose response a read_committed consumer had received by the end of the step plus a grace period (1 s plus two ' +
        'checkpoint intervals); the rate is stepped up until it is below 95%, and `maxSustained` is the highest rate at or above it. ' +
        '`append` latency is from the request\'s Kafka timestamp (set by the generator) to the response\'s (set by the egress when it ' +
        'publishes: with exactly-once, after the checkpoint ends the epoch), as the seed thesis measured; `visible` is to the moment the ' +
        'read_committed consumer received the response, which with exactly-once includes the wait for the checkpoint and its ' +
        'transaction. Latency figures of a step that was not sustained include the growing backlog.',
      charts,
    );
  }
}
