/**
 * The same job three ways, in one run: the YCSB write workload over --keys ids (default 1,000),
 * Kafka in and Kafka out, exactly-once with checkpoints every second, on this machine's cores:
 * - `eddy run`: the job embedded in Eddy (2 workers);
 * - `eddy serve` behind Apache Flink StateFun 3.3.0 (scripts/statefun, parallelism 2), with the
 *   module.yaml `eddy statefun-module` writes;
 * - StateFun calling the same function written with the official Python SDK (scripts/statefun-python).
 *
 * Per system: the highest throughput (requests produced all at once, until a read_committed consumer
 * has every response), the latency at a fixed 1,000 requests/s (request sent to response received by
 * the read_committed consumer, so it includes the wait for the checkpoint that publishes it), and
 * the CPU time per request of each process involved: the function's process (Eddy's, eddy serve's,
 * Python's) and StateFun's JVM. Does not measure: a cluster of several machines, or the broker on
 * machines of its own (it shares the cores here).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import * as hdr from 'hdr-histogram-js';
import { type Kafka, Partitioners, type Producer } from 'kafkajs';
import { stringify } from 'yaml';
import { engine } from '../index.js';
import { writeCharts } from './plot.js';
import { benchKafka, type BenchFlags, printTable, round, type Row, writeResults } from './harness.js';
import { kafkaYcsbJob } from './kafka-job.js';
import { kafkaRequestKey, kafkaRequestValue } from './ycsb-records.js';

const run = promisify(execFile);
const repo = new URL('..', import.meta.url).pathname;
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const LATENCY_RATE = 1000;
const TICKS_PER_SEC = 5;

/** CPU seconds (user + system) a process has used so far, from /proc. */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  // utime and stime are fields 14 and 15 of stat, 12 and 13 after the command name; in clock ticks (100 a second on Linux).
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

interface Topics {
  brokers: string;
  requests: string;
  responses: string;
}

/** One system under test, started on fresh topics: the processes whose CPU counts, and how to stop it. */
interface Started {
  /** Processes by role, e.g. { function: pid, statefun: pid }. */
  pids: Record<string, number>;
  /** HTTP calls from StateFun to the function process per request (absent when embedded). */
  callsPerRequest?: number;
  stop(): Promise<void>;
}

interface System {
  name: string;
  start(topics: Topics, dir: string): Promise<Started>;
}

/** Drives one system: load the records, a full-speed burst, then a fixed-rate run for latency. */
async function measureSystem(kafka: Kafka, brokers: string, system: System, flags: BenchFlags, keys: number, dir: string): Promise<Row> {
  const admin = kafka.admin();
  await admin.connect();
  const id = randomUUID().slice(0, 8);
  const topics = { brokers, requests: `eddy-bench-sf-requests-${id}`, responses: `eddy-bench-sf-responses-${id}` };
  await admin.createTopics({ topics: [{ topic: topics.requests, numPartitions: 4 }, { topic: topics.responses, numPartitions: 4 }], waitForLeaders: true });
  const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner, idempotent: true });
  await producer.connect();
  const sentAt = new Map<number, number>();
  let answered = 0;
  let latency: hdr.Histogram | undefined;
  const consumer = kafka.consumer({ groupId: `eddy-bench-sf-${id}`, readUncommitted: false, maxWaitTimeInMs: 20 });
  await consumer.connect();
  await consumer.subscribe({ topics: [topics.responses], fromBeginning: true });
  await consumer.run({
    eachBatch: async ({ batch }) => {
      const now = Date.now();
      for (const message of batch.messages) {
        const requestId = Number(message.key?.toString());
        const at = sentAt.get(requestId);
        if (at === undefined) continue;
        sentAt.delete(requestId);
        answered++;
        latency?.recordValue(Math.max(1, now - at));
      }
    },
  });
  let next = 0;
  const request = (op: 'insert' | 'write', key: string): { key: string; value: string } => {
    const requestId = next++;
    sentAt.set(requestId, Date.now());
    return { key, value: kafkaRequestValue(flags.seed, requestId, op, key) };
  };
  const send = async (p: Producer, messages: Array<{ key: string; value: string }>): Promise<void> => {
    for (let i = 0; i < messages.length; i += 2000) await p.send({ topic: topics.requests, acks: -1, messages: messages.slice(i, i + 2000) });
  };
  const waitAnswered = async (count: number, what: string, timeoutMs: number): Promise<void> => {
    const deadline = Date.now() + timeoutMs;
    while (answered < count) {
      if (Date.now() > deadline) throw new Error(`${system.name}: ${what}: ${answered} of ${count} answered within ${timeoutMs / 1000} s`);
      await sleep(10);
    }
  };

  const started = await system.start(topics, dir);
  try {
    await send(producer, Array.from({ length: keys }, (_, k) => request('insert', `user${k}`)));
    await waitAnswered(keys, 'loading the records', 180_000);

    // Full speed: a burst produced at once, timed until the last response is visible.
    const burst = Math.max(5000, Math.round(flags.durationS * 5000));
    const cpu0 = Object.fromEntries(Object.entries(started.pids).map(([role, pid]) => [role, cpuSeconds(pid)]));
    const t0 = performance.now();
    const base = answered;
    await send(producer, Array.from({ length: burst }, (_, i) => request('write', kafkaRequestKey(flags.seed, i, keys))));
    await waitAnswered(base + burst, 'the full-speed burst', 300_000);
    const seconds = (performance.now() - t0) / 1000;
    const cpuPerRequest = (role: string): number => round(((cpuSeconds(started.pids[role]!) - cpu0[role]!) * 1e6) / burst, 0);

    // Fixed rate for latency, open loop.
    latency = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 600_000, numberOfSignificantValueDigits: 3 });
    const before = answered;
    const ticks = Math.max(5, Math.round(flags.durationS * TICKS_PER_SEC));
    const start = Date.now();
    for (let tick = 0; tick < ticks; tick++) {
      const due = start + (tick * 1000) / TICKS_PER_SEC;
      if (due > Date.now()) await sleep(due - Date.now());
      await send(producer, Array.from({ length: LATENCY_RATE / TICKS_PER_SEC }, () => request('write', kafkaRequestKey(flags.seed, next, keys))));
    }
    await waitAnswered(before + (ticks * LATENCY_RATE) / TICKS_PER_SEC, 'the fixed-rate run', 120_000);

    const row: Row = {
      system: system.name,
      keys,
      requestsPerSec: round(burst / seconds, 0),
      [`p50Ms@${LATENCY_RATE}/s`]: latency.getValueAtPercentile(50),
      [`p99Ms@${LATENCY_RATE}/s`]: latency.getValueAtPercentile(99),
      functionCpuUsPerRequest: cpuPerRequest('function'),
      callsPerRequest: started.callsPerRequest ?? '-',
      functionCpuUsPerCall: started.callsPerRequest === undefined ? '-' : round(cpuPerRequest('function') / started.callsPerRequest, 0),
      statefunCpuUsPerRequest: started.pids.statefun === undefined ? '-' : cpuPerRequest('statefun'),
    };
    return row;
  } finally {
    await started.stop().catch((error: unknown) => console.error(`${system.name}: stopping: ${String(error)}`));
    await consumer.disconnect().catch(() => {});
    await producer.disconnect().catch(() => {});
    await admin.deleteTopics({ topics: [topics.requests, topics.responses] }).catch(() => {});
    await admin.disconnect().catch(() => {});
  }
}

/** The job embedded in this process, as `eddy run` runs it. */
const embedded: System = {
  name: 'eddy run (embedded)',
  async start(topics, dir) {
    const handle = engine.submit(kafkaYcsbJob(topics), { workers: 2, log: () => {}, checkpointDir: join(dir, `chk-${randomUUID().slice(0, 8)}`), checkpointIntervalMs: 1000 });
    void handle.done.catch((error: unknown) => console.error(`bench job failed: ${String(error)}`));
    return {
      pids: { function: process.pid },
      stop: async () => void (await handle.stop()),
    };
  },
};

/** Starts StateFun on `module` with a private state file; resolves with its PID. */
async function startStatefun(module: string, dir: string): Promise<{ pid: number; stop(): Promise<void> }> {
  const env = { ...process.env, EDDY_STATEFUN_STATE: join(dir, `harness-${randomUUID().slice(0, 8)}.env`), EDDY_STATEFUN_CHECKPOINT_MS: '1000' };
  const { stdout } = await run(join(repo, 'scripts', 'statefun'), ['start', module], { env, timeout: 600_000 });
  return { pid: Number(stdout.trim()), stop: async () => void (await run(join(repo, 'scripts', 'statefun'), ['stop'], { env })) };
}

/** Starts a child process and resolves once `ready` matches its stderr. */
function startChild(command: string, args: string[], env: NodeJS.ProcessEnv, ready: RegExp): Promise<{ child: ChildProcess; match: RegExpExecArray }> {
  const child = spawn(command, args, { cwd: repo, env, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${command} ${args.join(' ')} did not start within 60 s: ${stderr}`)), 60_000);
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
      const match = ready.exec(stderr);
      if (match !== null) {
        clearTimeout(timer);
        resolve({ child, match });
      }
    });
    child.on('exit', (code) => reject(new Error(`${command} exited ${code}: ${stderr}`)));
  });
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await exited;
}

/**
 * The same job module served by `eddy serve` (handlers on `workers` threads, or its default of one per
 * core), behind StateFun with the module.yaml `eddy statefun-module` writes.
 */
const served = (workers?: number): System => ({
  name: `eddy serve${workers === undefined ? '' : ` --workers ${workers}`} + StateFun`,
  async start(topics, dir) {
    const env = { ...process.env, EDDY_BENCH_REQUESTS_TOPIC: topics.requests, EDDY_BENCH_RESPONSES_TOPIC: topics.responses, EDDY_KAFKA_BROKERS: topics.brokers };
    const job = join(repo, 'bench', 'kafka-job.ts');
    const { child, match } = await startChild(process.execPath, [join(repo, 'bin', 'eddy.js'), 'serve', job, '--port', '0', ...(workers === undefined ? [] : ['--workers', String(workers)])], env, /at (http:\/\/\S+)/);
    try {
      const module = join(dir, `module-${randomUUID().slice(0, 8)}.yaml`);
      const { stdout } = await run(process.execPath, [join(repo, 'bin', 'eddy.js'), 'statefun-module', job, '--endpoint', match[1]!], { cwd: repo, env });
      writeFileSync(module, stdout);
      const statefun = await startStatefun(module, dir);
      return {
        pids: { function: child.pid!, statefun: statefun.pid },
        // StateFun's Kafka ingress calls the served router function, which sends to the record function.
        callsPerRequest: 2,
        stop: async () => {
          await statefun.stop();
          await stopChild(child);
        },
      };
    } catch (error) {
      await stopChild(child);
      throw error;
    }
  },
});

/** The same function written with the official Python SDK (bench/statefun_ycsb.py), behind StateFun. */
const python: System = {
  name: 'Python SDK + StateFun',
  async start(topics, dir) {
    const env = { ...process.env, EDDY_BENCH_RESPONSES_TOPIC: topics.responses };
    const state = join(dir, `python-${randomUUID().slice(0, 8)}.env`);
    const { stdout } = await run(join(repo, 'scripts', 'statefun-python'), ['start', join(repo, 'bench', 'statefun_ycsb.py')], { env: { ...env, EDDY_STATEFUN_PYTHON_STATE: state }, timeout: 600_000 });
    const [url, pid] = stdout.trim().split(/\s+/) as [string, string];
    const stopPython = async (): Promise<void> => void (await run(join(repo, 'scripts', 'statefun-python'), ['stop'], { env: { ...env, EDDY_STATEFUN_PYTHON_STATE: state } }));
    try {
      const module = join(dir, `module-py-${randomUUID().slice(0, 8)}.yaml`);
      const transport = { type: 'io.statefun.transports.v1/async', call: '2min', connect: '10s' };
      const documents = [
        { kind: 'io.statefun.endpoints.v2/http', spec: { functions: 'ycsb/*', urlPathTemplate: url, transport } },
        {
          kind: 'io.statefun.kafka.v1/ingress',
          spec: {
            id: 'eddy.ingress/requests',
            address: topics.brokers,
            consumerGroupId: `eddy-bench-py-${randomUUID().slice(0, 8)}`,
            startupPosition: { type: 'earliest' },
            properties: [{ 'isolation.level': 'read_committed' }],
            topics: [{ topic: topics.requests, valueType: 'ycsb/Request', targets: ['ycsb/record'] }],
          },
        },
        { kind: 'io.statefun.kafka.v1/egress', spec: { id: 'eddy/responses', address: topics.brokers, deliverySemantic: { type: 'exactly-once', transactionTimeout: '60000ms' } } },
      ];
      writeFileSync(module, documents.map((document) => stringify(document)).join('---\n'));
      const statefun = await startStatefun(module, dir);
      return {
        pids: { function: Number(pid), statefun: statefun.pid },
        callsPerRequest: 1,
        stop: async () => {
          await statefun.stop();
          await stopPython();
        },
      };
    } catch (error) {
      await stopPython();
      throw error;
    }
  },
};

export async function runStatefunBench(flags: BenchFlags, command: string): Promise<void> {
  const bench = benchKafka('statefun');
  if (bench === undefined) return;
  const { brokers, kafka } = bench;
  const dir = mkdtempSync(join(tmpdir(), 'eddy-bench-statefun-'));
  const rows: Row[] = [];
  try {
    for (const keys of flags.keys) {
      for (const system of [embedded, served(), served(0), python]) {
        const row = await measureSystem(kafka, brokers, system, flags, keys, dir);
        rows.push(row);
        if (flags.json) console.log(JSON.stringify(row));
        else console.error(`statefun: ${system.name}: ${row.requestsPerSec} requests/s`);
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const table = printTable(rows);
  if (!flags.json) console.log(table);
  const charts = !flags.plot
    ? ''
    : await writeCharts([
        {
          name: 'statefun-throughput',
          title: 'The same Kafka job on Eddy and on Flink StateFun: throughput',
          rows,
          spec: {
            mark: 'bar',
            encoding: {
              y: { field: 'system', type: 'nominal', title: '', sort: null },
              x: { field: 'requestsPerSec', type: 'quantitative', title: 'throughput (requests/s, exactly-once)' },
            },
          },
        },
        {
          name: 'statefun-cpu',
          title: 'The same Kafka job on Eddy and on Flink StateFun: CPU per request',
          rows: rows.flatMap((r) => [
            { system: r.system, process: 'function (Eddy, eddy serve, Python)', us: Number(r.functionCpuUsPerRequest) },
            ...(r.statefunCpuUsPerRequest === '-' ? [] : [{ system: r.system, process: 'StateFun (Flink JVM)', us: Number(r.statefunCpuUsPerRequest) }]),
          ]),
          spec: {
            mark: 'bar',
            encoding: {
              y: { field: 'system', type: 'nominal', title: '', sort: null },
              x: { field: 'us', type: 'quantitative', title: 'CPU time per request (µs)', stack: 'zero' },
              color: { field: 'process', type: 'nominal', title: 'process' },
            },
          },
        },
      ]);
  if (flags.write) {
    writeResults(
      'The same job on Eddy and on Flink StateFun',
      command,
      table,
      'One YCSB write workload (replace one of 10 fields of a record, answer with the request id) over Kafka, exactly-once with checkpoints ' +
        'every second, three ways: embedded in `eddy run` (2 workers); the same job module served by `eddy serve` (a worker thread per core, ' +
        'and with `--workers 0`: the handlers on its HTTP thread) ' +
        'behind Apache Flink StateFun 3.3.0 (its harness: a Flink MiniCluster in one JVM, parallelism 2, `execution.buffer-timeout` 5 ms); and ' +
        'the same function written with the official Python SDK (apache-flink-statefun 3.3.0 on Python 3.10, aiohttp) behind the same StateFun. ' +
        'Everything (broker, StateFun, the function process, the generator and the read_committed consumer) shares the machine\'s cores. ' +
        '`requestsPerSec`: a burst produced at once, until every response is visible. Latency: at a fixed rate, from sending the request to ' +
        'receiving its response read_committed, so it includes the wait for the checkpoint that publishes it. CPU per request: user + ' +
        'system time of that process during the burst, divided by the requests (the embedded row is the whole benchmark process: the ' +
        'engine with its Kafka clients, plus the generator and consumer). Behind StateFun each request is two calls to `eddy serve`: ' +
        'StateFun\'s Kafka ingress hands the record to the served router function, which sends the message to the record function.',
      charts,
    );
  }
}
