/**
 * The fault campaign (Jepsen's bank test is the model): a real Eddy job (test/chaos/runner.ts, a child
 * process) over a real Kafka broker the campaign starts itself (scripts/kafka, private state file),
 * a seeded workload of 2PC transfers, 2PC group reads, saga transfers and transfers that must fail,
 * faults at seeded random moments (the nemesis), and checks on what a read_committed consumer of the
 * output topic and a final 2PC read of every group see. Every random choice derives from `seed`.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { appendFileSync, closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { type Consumer, Kafka, logLevel, Partitioners, type Producer } from 'kafkajs';
import { randomRecord, seededRandom } from '../../examples/bank/workload.js';
import job, { type ChaosRequest } from '../fixtures/chaos-kafka-bank-job.js';

const run = promisify(execFile);
const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export const FAULT_KINDS = ['worker-kill', 'kill-during-restore', 'process-kill', 'broker-pause', 'broker-kill', 'checkpoint-corrupt', 'disk-full'] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

export interface CampaignOptions {
  seed: number;
  /** How long faults are injected; the drain and the final checks come after. */
  durationMs: number;
  /** Pause between faults, uniform in [min, max] ms. Default [4000, 9000]. */
  faultGapMs?: [number, number];
  /** Requests produced per second. Default 40. */
  rate?: number;
  /** How long to wait for the last answers after the faults stop. Default 120 s. */
  drainMs?: number;
  log?: (line: string) => void;
}

export interface Violation {
  check: string;
  requestId?: string;
  detail: string;
}

export interface FaultRecord {
  kind: FaultKind;
  /** ms since the campaign started. */
  at: number;
  detail: string;
  /** From the end of the fault to the next response a read_committed consumer saw; undefined: none came. */
  recoveryMs?: number;
  healedAt?: number;
}

export interface CampaignResult {
  seed: number;
  durationMs: number;
  faults: FaultRecord[];
  skipped: Array<{ kind: FaultKind; why: string }>;
  requests: number;
  answered: number;
  violations: Violation[];
  recovery: { medianMs: number; maxMs: number; unrecovered: number };
  /**
   * Responses published twice because a restore fell back past a corrupt checkpoint: the output of
   * the epochs after the good checkpoint was out already and is produced again, the documented
   * at-least-once of that fallback. Only a pair whose first copy was produced after the checkpoint the
   * restore falls back to had completed and before the process kill of that checkpoint-corrupt fault,
   * and whose second copy after the kill, counts here; any other duplicate is a violation.
   */
  republishedAfterFallback: number;
  /** Of those, requests whose second answer differs from the first (the older state decided otherwise). */
  answersChangedByFallback: number;
  /** Saga compensations the engine gave up on (EDDY_COMPENSATION_FAILED dead letters), accounted for in the checks. */
  compensationsAbandoned: number;
  workDir: string;
}

// --- workload ---------------------------------------------------------------------------------------

const GROUP_SIZE = 5;
const TPC_GROUPS = 4;
const SAGA_GROUPS = 2;
const INITIAL = 100;
const COORDINATORS = 32;

type Kind = '2pc' | 'saga' | 'read' | 'fail-funds' | 'fail-account' | 'fail-saga-account' | 'insert' | 'final-read';
interface Sent {
  id: string;
  kind: Kind;
  group: string;
  from?: string;
  to?: string;
  amount?: number;
  /** The send threw: the request may or may not be in the topic. */
  uncertain?: boolean;
  /** ms since the campaign started. */
  sentAt?: number;
}

const accountsOf = (group: string): string[] => Array.from({ length: GROUP_SIZE }, (_, i) => `${group}-a${i}`);
const tpcGroups = Array.from({ length: TPC_GROUPS }, (_, g) => `t${g}`);
const sagaGroups = Array.from({ length: SAGA_GROUPS }, (_, g) => `s${g}`);
const allGroups = [...tpcGroups, ...sagaGroups];

/** A dead letter as the job's Kafka dead-letter egress publishes it (JSON). */
interface DeadLetter {
  code: string;
  reason: string;
  target?: { type: string; id: string };
  payloadBase64?: string;
}

interface Response {
  requestId: string;
  op?: string;
  status: number;
  balance?: number;
}

// --- the campaign -----------------------------------------------------------------------------------

export async function runCampaign(options: CampaignOptions): Promise<CampaignResult> {
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  // Two streams from the one seed: the workload's and the nemesis's, so that the fault schedule of a
  // seed (kinds, gaps, targets) does not shift with how many requests went out meanwhile.
  const random = seededRandom(options.seed);
  const workloadRandom = seededRandom(options.seed ^ 0x5eed5eed);
  const pick = <T>(items: readonly T[], r = random): T => items[Math.floor(r() * items.length)]!;
  const between = (min: number, max: number, r = random): number => min + Math.floor(r() * (max - min + 1));
  const t0 = Date.now();
  const now = (): number => Date.now() - t0;
  log(`chaos: seed ${options.seed}, faults for ${options.durationMs} ms`);

  const workDir = mkdtempSync(join(tmpdir(), 'eddy-chaos-'));
  const violations: Violation[] = [];
  const skipped: CampaignResult['skipped'] = [];
  const faults: FaultRecord[] = [];
  /**
   * The process kills of checkpoint-corrupt faults (ms since start), each with the time the checkpoint
   * the restore falls back to was completed: output read between the two may be produced again.
   */
  const fallbacks: Array<{ killAt: number; goodSince: number }> = [];
  /** Which fault came last before `at` (ms), so that a violation names the fault it followed. */
  const lastFault = (at: number): string => {
    const before = faults.filter((f) => f.at <= at);
    const f = before.at(-1);
    return f === undefined ? 'before any fault' : `after fault ${before.length} (${f.kind} at ${(f.at / 1000).toFixed(1)} s)`;
  };
  const violate = (check: string, detail: string, requestId?: string, at = now()): void => {
    detail = `${detail}; ${lastFault(at)}`;
    violations.push({ check, detail, ...(requestId !== undefined && { requestId }) });
    log(`chaos: VIOLATION ${check}${requestId === undefined ? '' : ` ${requestId}`}: ${detail}`);
  };

  // A small filesystem of its own for state and checkpoints, so that it can be filled (disk-full).
  const disk = join(workDir, 'disk');
  mkdirSync(disk);
  let mounted = false;
  try {
    await run('mount', ['-t', 'tmpfs', '-o', 'size=96m', 'tmpfs', disk]);
    mounted = true;
  } catch (error) {
    skipped.push({ kind: 'disk-full', why: `mount -t tmpfs failed: ${String((error as Error).message).split('\n')[0]}` });
  }
  const stateDir = join(disk, 'state');
  const checkpointDir = join(disk, 'chk');

  // The broker.
  const brokerEnv = { ...process.env, EDDY_KAFKA_STATE: join(workDir, 'broker.env') };
  const kafkaScript = join(repo, 'scripts/kafka');
  const address = (await run(kafkaScript, ['start'], { env: brokerEnv, timeout: 180_000 })).stdout.trim();
  const brokerPid = (): number => Number(/KAFKA_PID=(\d+)/.exec(readFileSync(brokerEnv.EDDY_KAFKA_STATE, 'utf8'))?.[1]);
  log(`chaos: broker ${address}, work folder ${workDir}`);

  const kafka = new Kafka({ clientId: 'eddy-chaos', brokers: [address], logLevel: logLevel.NOTHING, retry: { initialRetryTime: 200, maxRetryTime: 2000, retries: 30 } });
  const admin = kafka.admin();
  let producer: Producer | undefined;
  let tail: Consumer | undefined;
  let child: ChildProcess | undefined;
  let brokerStopped = false;
  try {
    await admin.connect();
    const requestsTopic = 'chaos-requests';
    const responsesTopic = 'chaos-responses';
    const deadLettersTopic = 'chaos-dead-letters';
    await admin.createTopics({
      topics: [{ topic: requestsTopic, numPartitions: 4 }, { topic: responsesTopic, numPartitions: 2 }, { topic: deadLettersTopic, numPartitions: 1 }],
      waitForLeaders: true,
    });
    producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner, idempotent: true });
    await producer.connect();

    // Everything a read_committed consumer sees, by (partition, offset), with when it was seen.
    const seen = new Map<string, { response: Response; at: number; publishedAt: number }>();
    /** The same for the job's dead letters (key: `dead:<partition>:<offset>`). */
    const deadSeen = new Map<string, { letter: DeadLetter; at: number; publishedAt: number }>();
    const arrivals: number[] = [];
    const startTail = async (): Promise<void> => {
      const consumer = kafka.consumer({ groupId: `chaos-tail-${Date.now()}`, maxWaitTimeInMs: 100, sessionTimeout: 30_000 });
      tail = consumer;
      consumer.on(consumer.events.CRASH, ({ payload }) => {
        if (payload.restart) return;
        log(`chaos: the response reader crashed (${payload.error.message}); starting another`);
        void sleep(1000).then(() => (tail === consumer ? startTail().catch(() => {}) : undefined));
      });
      await consumer.connect();
      await consumer.subscribe({ topics: [responsesTopic, deadLettersTopic], fromBeginning: true });
      await consumer.run({
        eachMessage: async ({ topic, partition, message }) => {
          // When the job's sink produced the record (its CreateTime): a read_committed reader can see a
          // record long after it was committed, while an open transaction of a killed process holds
          // the partition's last stable offset until the restarted job's producer fences it.
          const publishedAt = Number(message.timestamp) - t0;
          if (topic === deadLettersTopic) {
            const key = `dead:${partition}:${message.offset}`;
            if (!deadSeen.has(key)) deadSeen.set(key, { letter: JSON.parse(message.value?.toString('utf8') ?? '{}') as DeadLetter, at: now(), publishedAt });
            return;
          }
          const key = `${partition}:${message.offset}`;
          if (seen.has(key)) return;
          const at = now();
          const text = message.value?.toString('utf8') ?? '';
          let response: Response;
          try {
            response = JSON.parse(text) as Response;
            if (typeof response?.requestId !== 'string') throw new Error('no requestId');
          } catch {
            // A record no request explains (e.g. replayed from a corrupted checkpoint): checked below.
            response = { requestId: `garbled@${key}`, status: -1, op: text.slice(0, 120) };
          }
          seen.set(key, { response, at, publishedAt });
          arrivals.push(at);
        },
      });
    };
    await startTail();

    // The job process.
    let workers = 2;
    let expectExit = false;
    let jobEvents: Array<Record<string, unknown>> = [];
    let operatorRestarts = 0;
    const startJob = (restore: boolean): void => {
      const args = ['--import', 'tsx', join(repo, 'test/chaos/runner.ts'), '--workers', String(workers), '--checkpoint-dir', checkpointDir, '--state-dir', stateDir];
      if (restore) args.push('--restore', 'latest');
      log(`chaos: ${now()} ms: job starts on ${workers} workers${restore ? ', --restore latest' : ''}`);
      const proc = spawn(process.execPath, args, {
        cwd: repo,
        env: { ...process.env, EDDY_KAFKA_BROKERS: address, CHAOS_REQUESTS_TOPIC: requestsTopic, CHAOS_RESPONSES_TOPIC: responsesTopic, CHAOS_DEAD_LETTERS_TOPIC: deadLettersTopic },
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      child = proc;
      expectExit = false;
      jobEvents = [];
      proc.stderr.on('data', (chunk: Buffer) => appendFileSync(join(workDir, 'job.log'), chunk));
      createInterface({ input: proc.stdout }).on('line', (line) => {
        try {
          const event = JSON.parse(line) as Record<string, unknown>;
          jobEvents.push(event);
          if (event.event === 'kill-refused') log(`chaos: worker kill refused: ${String(event.error)}`);
        } catch {
          appendFileSync(join(workDir, 'job.log'), `stdout: ${line}\n`);
        }
      });
      proc.on('exit', (code, signal) => {
        if (child !== proc || expectExit) return;
        const failed = jobEvents.find((e) => e.event === 'failed');
        if (signal !== null) violate('native-crash', `the job process died by ${signal}, which the campaign did not send (log: ${join(workDir, 'job.log')})`);
        else violate('job-failed', failed !== undefined ? `the job failed: ${String(failed.code)}: ${String(failed.error)}` : `the job process exited with code ${code}`);
        // Go on as an operator would: restore the latest checkpoint.
        if (++operatorRestarts > 30) return;
        void sleep(500).then(() => (child === proc ? startJob(true) : undefined));
      });
    };
    const killJob = async (): Promise<void> => {
      const proc = child;
      if (proc === undefined || proc.exitCode !== null || proc.signalCode !== null) return;
      expectExit = true;
      const exited = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGKILL');
      await exited;
    };
    startJob(false);

    // The requests.
    const sent = new Map<string, Sent>();
    let sequence = 0;
    const toRecord = (request: Sent): ChaosRequest => {
      const coordinator = `c-${sequence % COORDINATORS}`;
      switch (request.kind) {
        case 'read':
        case 'final-read':
          return { kind: 'read', coordinator, message: { requestId: request.id, accounts: accountsOf(request.group) } };
        case 'saga':
        case 'fail-saga-account':
          return { kind: 'saga', coordinator, message: { requestId: request.id, from: request.from!, to: request.to!, amount: request.amount! } };
        default:
          return { kind: '2pc', coordinator, message: { requestId: request.id, from: request.from!, to: request.to!, amount: request.amount! } };
      }
    };
    const send = async (requests: Sent[], records: Array<{ key: string; value: string }>): Promise<void> => {
      for (const r of requests) {
        r.sentAt = now();
        sent.set(r.id, r);
      }
      try {
        await producer!.send({ topic: requestsTopic, acks: -1, messages: records });
      } catch (error) {
        for (const r of requests) r.uncertain = true;
        log(`chaos: producing ${requests.length} requests failed (${(error as Error).message}); they may or may not be in the topic`);
      }
    };
    const nextRequest = (): Sent => {
      const id = `r${++sequence}`;
      const x = workloadRandom();
      const group = x < 0.2 ? pick(sagaGroups, workloadRandom) : pick(tpcGroups, workloadRandom);
      const [from, to] = ((): [string, string] => {
        const accounts = accountsOf(group);
        const a = Math.floor(workloadRandom() * GROUP_SIZE);
        return [accounts[a]!, accounts[(a + 1 + Math.floor(workloadRandom() * (GROUP_SIZE - 1))) % GROUP_SIZE]!];
      })();
      const amount = between(1, 40, workloadRandom);
      if (x < 0.17) return { id, kind: 'saga', group, from, to, amount };
      if (x < 0.2) return { id, kind: 'fail-saga-account', group, from, to: `${group}-missing`, amount };
      if (x < 0.6) return { id, kind: '2pc', group, from, to, amount };
      if (x < 0.85) return { id, kind: 'read', group };
      if (x < 0.93) return { id, kind: 'fail-funds', group, from, to, amount: GROUP_SIZE * INITIAL + between(1, 100, workloadRandom) };
      return { id, kind: 'fail-account', group, from, to: `${group}-missing`, amount };
    };

    // Accounts first, answered before anything else is sent (the input has no order across partitions).
    const inserts: Sent[] = allGroups.flatMap((group) => accountsOf(group).map((a) => ({ id: `insert-${a}`, kind: 'insert' as const, group, to: a })));
    await send(
      inserts,
      inserts.map((r) => ({ key: r.to!, value: JSON.stringify({ kind: 'account', account: r.to!, message: { op: 'insert', requestId: r.id, record: randomRecord(workloadRandom, INITIAL) } } satisfies ChaosRequest) })),
    );
    const waitAnswered = async (ids: string[], timeoutMs: number): Promise<string[]> => {
      const deadline = Date.now() + timeoutMs;
      let open = ids;
      while (Date.now() < deadline) {
        const have = new Set([...seen.values()].map((s) => s.response.requestId));
        open = open.filter((id) => !have.has(id));
        if (open.length === 0) return [];
        await sleep(500);
      }
      return open;
    };
    const notInserted = await waitAnswered(inserts.map((r) => r.id), 120_000);
    if (notInserted.length > 0) throw new Error(`the job did not answer ${notInserted.length} account inserts within 120 s (log: ${join(workDir, 'job.log')})`);
    log(`chaos: ${now()} ms: ${inserts.length} accounts in ${allGroups.length} groups`);

    // Load: a batch every 100 ms until told to stop.
    const rate = options.rate ?? 40;
    let loading = true;
    const load = (async () => {
      let owed = 0;
      while (loading) {
        owed += rate / 10;
        const batch: Sent[] = [];
        while (owed >= 1) {
          batch.push(nextRequest());
          owed--;
        }
        const started = Date.now();
        if (batch.length > 0) await send(batch, batch.map((r) => ({ key: r.id, value: JSON.stringify(toRecord(r)) })));
        await sleep(Math.max(0, 100 - (Date.now() - started)));
      }
    })();

    // The nemesis.
    const faultRandomOrder = [...FAULT_KINDS].filter((k) => !skipped.some((s) => s.kind === k));
    for (let i = faultRandomOrder.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [faultRandomOrder[i], faultRandomOrder[j]] = [faultRandomOrder[j]!, faultRandomOrder[i]!];
    }
    const enabled = [...faultRandomOrder];
    const [gapMin, gapMax] = options.faultGapMs ?? [4000, 9000];
    const otherWorkerCount = (): number => pick([1, 2, 3].filter((n) => n !== workers));
    const killWorker = (worker: number): void => {
      child?.stdin?.write(`kill ${worker}\n`);
    };
    /** The newest complete checkpoint (its `_metadata` is written last), which `--restore latest` takes. */
    /** Complete checkpoints of the job, oldest first. */
    const completeCheckpoints = (): string[] => {
      // The job keeps its checkpoints in its own folder of the checkpoint directory (named after it).
      const jobFolder = join(checkpointDir, job.name);
      if (!existsSync(jobFolder)) return [];
      return readdirSync(jobFolder)
        .filter((d) => /^chk-\d+$/.test(d) && existsSync(join(jobFolder, d, '_metadata'))) // complete ones
        .sort((a, b) => Number(a.slice(4)) - Number(b.slice(4)))
        .map((d) => join(jobFolder, d));
    };
    /** Checkpoints this campaign corrupted: a restore skips them. */
    const corrupted = new Set<string>();
    const filesUnder = (dir: string): string[] =>
      readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? filesUnder(join(dir, e.name)) : [join(dir, e.name)]));

    const inject = async (kind: FaultKind): Promise<string> => {
      switch (kind) {
        case 'worker-kill': {
          const w = between(0, workers - 1);
          killWorker(w);
          return `worker ${w} of ${workers}`;
        }
        case 'kill-during-restore': {
          const a = between(0, workers - 1);
          const b = between(0, workers - 1);
          const gap = between(30, 400);
          killWorker(a);
          await sleep(gap);
          killWorker(b);
          return `worker ${a}, then worker ${b} ${gap} ms later, of ${workers}`;
        }
        case 'process-kill': {
          await killJob();
          const before = workers;
          workers = otherWorkerCount();
          await sleep(between(100, 1500));
          startJob(true);
          return `SIGKILL on ${before} workers, --restore latest on ${workers}`;
        }
        case 'broker-pause': {
          const ms = between(12_000, 16_000); // the transaction and session timeouts are 10 s
          const pid = brokerPid();
          process.kill(pid, 'SIGSTOP');
          await sleep(ms);
          process.kill(pid, 'SIGCONT');
          return `SIGSTOP for ${ms} ms`;
        }
        case 'broker-kill': {
          await run(kafkaScript, ['kill'], { env: brokerEnv });
          const down = between(500, 4000);
          await sleep(down);
          await run(kafkaScript, ['restart'], { env: brokerEnv, timeout: 180_000 });
          return `SIGKILL, restarted on the same data folder after ${down} ms (+ start time)`;
        }
        case 'checkpoint-corrupt': {
          // Kill first, so that the corrupted checkpoint is the latest one when the job restores.
          await killJob();
          const good = completeCheckpoints().filter((c) => !corrupted.has(c));
          // The restore falls back to the newest good checkpoint before the one corrupted here: the
          // output of the epochs after it (produced since it completed) is produced again. Without
          // such a one (faults in a row corrupted each retained checkpoint before the job took a new
          // one) only the kill happens: losing every checkpoint is outside the fault model.
          const fallbackTo = good.at(-2);
          const latest = fallbackTo === undefined ? undefined : good.at(-1);
          if (fallbackTo !== undefined) fallbacks.push({ killAt: now(), goodSince: statSync(join(fallbackTo, '_metadata')).mtimeMs - t0 });
          if (latest !== undefined) corrupted.add(latest);
          let what = 'no checkpoint corrupted (no older good one to fall back to)';
          if (latest !== undefined) {
            const files = filesUnder(latest).filter((f) => statSync(f).size > 0);
            if (files.length > 0) {
              const file = pick(files);
              const size = statSync(file).size;
              if (random() < 0.5) {
                truncateSync(file, Math.floor(size / 2));
                what = `truncated ${file.slice(checkpointDir.length + 1)} from ${size} to ${Math.floor(size / 2)} bytes`;
              } else {
                const fd = openSync(file, 'r+');
                const at = Math.floor(random() * size);
                writeSync(fd, Buffer.from('\u0000garbage\u00ff'), 0, 9, Math.max(0, Math.min(at, size - 9)));
                closeSync(fd);
                what = `overwrote 9 bytes of ${file.slice(checkpointDir.length + 1)} (${size} bytes) at ${at}`;
              }
            }
          }
          workers = otherWorkerCount();
          startJob(true);
          return `SIGKILL, ${what}, --restore latest on ${workers} workers`;
        }
        case 'disk-full': {
          const ballast = join(disk, 'ballast');
          const fd = openSync(ballast, 'w');
          const chunk = Buffer.alloc(1 << 20);
          try {
            for (;;) writeSync(fd, chunk);
          } catch {
            // ENOSPC: full
          }
          closeSync(fd);
          const ms = between(3000, 8000);
          await sleep(ms);
          rmSync(ballast, { force: true });
          return `state and checkpoint filesystem full for ${ms} ms`;
        }
      }
    };

    const faultEnd = options.durationMs;
    let k = 0;
    // Every kind once (in a seeded order), then seeded picks, until the duration is over.
    while (now() < faultEnd || k < enabled.length) {
      await sleep(between(gapMin, gapMax));
      const kind = k < enabled.length ? enabled[k]! : pick(enabled);
      k++;
      const at = now();
      log(`chaos: ${at} ms: fault ${faults.length + 1}: ${kind}`);
      let detail: string;
      try {
        detail = await inject(kind);
      } catch (error) {
        detail = `injecting failed: ${(error as Error).message}`;
        violate('nemesis-failed', `${kind}: ${detail}`);
      }
      const record: FaultRecord = { kind, at, detail, healedAt: now() };
      faults.push(record);
      log(`chaos: ${record.healedAt} ms: fault ${faults.length} (${kind}) over: ${detail}`);
    }

    // Drain: stop the load, wait for every answer.
    loading = false;
    await load;
    log(`chaos: ${now()} ms: faults over, ${sent.size} requests sent; waiting up to ${(options.drainMs ?? 120_000) / 1000} s for their answers`);
    await waitAnswered([...sent.values()].filter((r) => !r.uncertain).map((r) => r.id), options.drainMs ?? 120_000);
    await sleep(3000); // a failed saga's compensations can land after its answer
    const finals: Sent[] = allGroups.map((group) => ({ id: `final-read-${group}`, kind: 'final-read' as const, group }));
    await send(finals, finals.map((r) => ({ key: r.id, value: JSON.stringify(toRecord(r)) })));
    const finalMissing = await waitAnswered(finals.map((r) => r.id), 60_000);
    for (const id of finalMissing) violate('unanswered', 'the final group read got no answer within 60 s', id);

    // Stop the job cleanly, then read the whole output once more, from the start.
    if (child !== undefined && child.exitCode === null && child.signalCode === null) {
      expectExit = true;
      const proc = child;
      const exited = new Promise((r) => proc.once('exit', r));
      proc.stdin!.write('stop\n');
      await Promise.race([exited, sleep(60_000)]);
      if (proc.exitCode === null && proc.signalCode === null) {
        violate('stop-hung', 'the job did not stop within 60 s of a clean stop');
        await killJob();
      }
    }
    const tailed = seen.size;
    // When the live reader saw each record: the final re-read below sees them all at its end.
    const liveAt = new Map([...seen, ...deadSeen].map(([key, { at }]) => [key, at]));
    const tailIds = new Set([...seen.values()].map((s) => s.response.requestId));
    await tail?.disconnect().catch(() => {});
    tail = undefined;
    seen.clear();
    deadSeen.clear();
    await startTail();
    await sleep(2000);
    const deadline = Date.now() + 30_000;
    while (seen.size < tailed && Date.now() < deadline) await sleep(200);

    // --- checks -------------------------------------------------------------------------------------
    const legOf = (id: string): string => id.split(':')[0]!;
    const byId = new Map<string, Response[]>();
    const publishedAt = new Map<string, number[]>();
    for (const [, { response, publishedAt: at }] of seen) {
      const list = byId.get(response.requestId) ?? [];
      list.push(response);
      byId.set(response.requestId, list);
      publishedAt.set(response.requestId, [...(publishedAt.get(response.requestId) ?? []), at]);
    }
    // Everything the checks below see, for a look after a violation: the requests, and the responses in
    // topic order (key: partition@offset) with the time the live reader saw them and the time the job
    // produced them.
    writeFileSync(join(workDir, 'requests.jsonl'), [...sent.values()].map((r) => JSON.stringify(r)).join('\n') + '\n');
    writeFileSync(join(workDir, 'responses.jsonl'), [...seen].map(([key, { response }]) => JSON.stringify({ key, readAt: liveAt.get(key), publishedAt: seen.get(key)!.publishedAt, ...response })).join('\n') + '\n');
    writeFileSync(join(workDir, 'faults.json'), JSON.stringify({ faults, fallbacks }, null, 1));
    writeFileSync(join(workDir, 'dead-letters.jsonl'), [...deadSeen].map(([key, { letter, publishedAt: at }]) => JSON.stringify({ key, readAt: liveAt.get(key), publishedAt: at, ...letter })).join('\n') + '\n');
    let republishedAfterFallback = 0;
    let answersChangedByFallback = 0;
    /**
     * The (last) fallback a request was run again across, if any: each answer but the last produced
     * after the checkpoint some fallback fell back to had completed and before that fault's kill, and
     * the next answer after that kill (two corrupt checkpoints in a row run a request three times).
     */
    const fallbackOf = (id: string): (typeof fallbacks)[number] | undefined => {
      const times = [...(publishedAt.get(id) ?? [])].sort((x, y) => x - y);
      if (times.length < 2) return undefined;
      let last: (typeof fallbacks)[number] | undefined;
      for (let i = 0; i + 1 < times.length; i++) {
        const [a, b] = [times[i]!, times[i + 1]!];
        last = fallbacks.find(({ killAt, goodSince }) => a >= goodSince && a < killAt && b > killAt);
        if (last === undefined) return undefined;
      }
      return last;
    };
    const acrossFallback = (id: string): boolean => fallbackOf(id) !== undefined;
    for (const [id, list] of byId) {
      if (list.length < 2 || !acrossFallback(id)) continue;
      republishedAfterFallback++;
      // Run again on the older state, a request may get another answer than the one already out.
      if (list[0]!.status !== list[1]!.status) answersChangedByFallback++;
      if (list[0]!.status !== list[1]!.status) log(`chaos: ${id} answered ${list[0]!.status}, then ${list[1]!.status} after the fallback past a corrupt checkpoint`);
    }
    for (const [id, list] of byId) if (list.length > 1 && !acrossFallback(id)) violate('answered-twice', `${list.length} responses: ${list.map((r) => JSON.stringify(r)).join(' ')}`, id, sent.get(legOf(id))?.sentAt);
    for (const [id, list] of byId) {
      if (id.startsWith('garbled@')) violate('garbled-response', `an output record that is not a response: ${JSON.stringify(list[0]!.op)}`, id);
      else if (!sent.has(legOf(id))) violate('unexpected-response', 'a response to no request the campaign sent', id);
    }
    let answeredCount = 0;
    for (const r of sent.values()) {
      if (byId.has(r.id)) answeredCount++;
      else if (!r.uncertain) {
        const how = tailIds.has(r.id) ? 'the live read_committed reader saw its answer, the final re-read from the start did not' : 'no read_committed reader saw an answer';
        violate('unanswered', `${r.kind} request in group ${r.group}, sent at ${((r.sentAt ?? 0) / 1000).toFixed(1)} s, never answered (${how})`, r.id, r.sentAt);
      }
    }
    // The answer the state reflects: a request run again after a fallback past a corrupt checkpoint
    // ran on the older state, and its later answer (later offset, same key and partition) is the one
    // whose effects the state holds; any other request has one answer (or a violation above).
    const first = (id: string): Response | undefined => {
      const list = byId.get(id);
      return list !== undefined && list.length > 1 && acrossFallback(id) ? list.at(-1) : list?.[0];
    };

    // Saga compensations the engine gave up on (a credit spent before its undo came, refused
    // `compensationAttempts` times): each is a dead letter with its message, and the money it did not
    // move back stays where it is. Any other dead letter is a violation. A saga run again after a
    // fallback counts only the dead letters of its second run.
    const abandonedDelta = new Map<string, number>();
    const abandonedIds = new Set<string>();
    for (const [, { letter, publishedAt: at }] of deadSeen) {
      if (letter.code !== 'EDDY_COMPENSATION_FAILED' || letter.payloadBase64 === undefined || letter.target === undefined) {
        violate('unexpected-dead-letter', `${letter.code}: ${letter.reason}`);
        continue;
      }
      const undo = JSON.parse(Buffer.from(letter.payloadBase64, 'base64').toString('utf8')) as { op: 'add' | 'subtract'; requestId: string; amount: number };
      const fallback = fallbackOf(legOf(undo.requestId));
      if (fallback !== undefined && at < fallback.killAt) continue;
      if (abandonedIds.has(undo.requestId)) {
        violate('unexpected-dead-letter', `the compensation ${undo.requestId} was given up twice`, legOf(undo.requestId));
        continue;
      }
      abandonedIds.add(undo.requestId);
      const account = letter.target.id;
      abandonedDelta.set(account, (abandonedDelta.get(account) ?? 0) + (undo.op === 'subtract' ? undo.amount : -undo.amount));
    }
    if (abandonedIds.size > 0) log(`chaos: ${abandonedIds.size} saga compensations given up (EDDY_COMPENSATION_FAILED dead letters), accounted for in the saga totals and balances`);
    const groupOf = (account: string): string => account.slice(0, account.lastIndexOf('-'));

    // Reads: every committed group read sums to the group's total.
    const total = GROUP_SIZE * INITIAL;
    const finalBalances = new Map<string, number>();
    for (const r of sent.values()) {
      if (r.kind !== 'read' && r.kind !== 'final-read') continue;
      const answer = first(r.id);
      if (answer === undefined) continue;
      if (answer.status !== 200) {
        violate('read-failed', `group read of ${r.group} answered ${answer.status}`, r.id, r.sentAt);
        continue;
      }
      const legs = accountsOf(r.group).map((a) => [a, first(`${r.id}:${a}`)?.balance] as const);
      const missing = legs.filter(([, b]) => b === undefined).map(([a]) => a);
      if (missing.length > 0) {
        violate('read-incomplete', `committed group read of ${r.group} has no balance for ${missing.join(', ')}`, r.id, r.sentAt);
        continue;
      }
      const sum = legs.reduce((s, [, b]) => s + b!, 0);
      // A final read of a saga group also counts what given-up compensations left behind.
      const want = total + (r.kind === 'final-read' ? [...abandonedDelta].filter(([a]) => groupOf(a) === r.group).reduce((n, [, d]) => n + d, 0) : 0);
      if (tpcGroups.includes(r.group) || r.kind === 'final-read') {
        if (sum !== want) violate(r.kind === 'final-read' && sagaGroups.includes(r.group) ? 'saga-not-conserved' : 'read-not-serializable', `group ${r.group} sums to ${sum}, not ${want}: ${legs.map(([a, b]) => `${a}=${b}`).join(' ')}`, r.id, r.sentAt);
      }
      if (r.kind === 'final-read') for (const [a, b] of legs) finalBalances.set(a, b!);
    }

    // Transfers: must-fail ones failed with no effect; committed deltas explain every final balance.
    const expected = new Map<string, number>(allGroups.flatMap((g) => accountsOf(g).map((a) => [a, INITIAL] as const)));
    for (const r of sent.values()) {
      if (r.kind === 'insert' || r.kind === 'read' || r.kind === 'final-read') continue;
      const answer = first(r.id);
      if (answer === undefined) continue;
      const mustFail = r.kind.startsWith('fail-');
      if (mustFail && answer.status !== 422) violate('must-fail-succeeded', `${r.kind} transfer ${r.from} -> ${r.to} of ${r.amount} answered ${answer.status}`, r.id, r.sentAt);
      if (r.kind === 'fail-funds' || r.kind === 'fail-account') {
        for (const side of ['debit', 'credit']) {
          const leg = first(`${r.id}:${side}`);
          if (leg?.status === 200) violate('must-fail-effect', `the aborted 2PC transfer's ${side} leg was published: ${JSON.stringify(leg)}`, r.id, r.sentAt);
        }
      }
      if (answer.status === 200) {
        expected.set(r.from!, (expected.get(r.from!) ?? 0) - r.amount!);
        expected.set(r.to!, (expected.get(r.to!) ?? 0) + r.amount!);
      }
    }
    for (const [a, delta] of abandonedDelta) expected.set(a, (expected.get(a) ?? 0) + delta);
    const unsure = [...sent.values()].some((r) => (r.kind === '2pc' || r.kind === 'saga') && !byId.has(r.id));
    for (const [a, want] of expected) {
      const got = finalBalances.get(a);
      if (got === undefined) continue; // its final read is already a violation
      if (got !== want) violate('balance-mismatch', `${a}: final balance ${got}, initial ${INITIAL} + committed deltas = ${want}${unsure ? ' (some transfers are unanswered, so their effect is unknown)' : ''}`);
    }

    // Recovery: from the end of each fault to the next response seen.
    for (const f of faults) {
      const next = arrivals.find((a) => a >= f.healedAt!);
      if (next !== undefined) f.recoveryMs = next - f.healedAt!;
    }
    const times = faults.map((f) => f.recoveryMs).filter((m): m is number => m !== undefined).sort((a, b) => a - b);
    const result: CampaignResult = {
      seed: options.seed,
      durationMs: now(),
      faults,
      skipped,
      requests: sent.size,
      answered: answeredCount,
      violations,
      republishedAfterFallback,
      answersChangedByFallback,
      compensationsAbandoned: abandonedIds.size,
      recovery: { medianMs: times[Math.floor(times.length / 2)] ?? 0, maxMs: times.at(-1) ?? 0, unrecovered: faults.length - times.length },
      workDir,
    };
    log(`chaos: done in ${result.durationMs} ms: ${faults.length} faults, ${sent.size} requests, ${answeredCount} answered, ${violations.length} violations (work folder ${workDir})`);
    return result;
  } finally {
    if (child !== undefined && child.exitCode === null && child.signalCode === null) {
      const proc = child;
      child = undefined;
      proc.kill('SIGKILL');
    }
    child = undefined;
    await tail?.disconnect().catch(() => {});
    await producer?.disconnect().catch(() => {});
    await admin.disconnect().catch(() => {});
    try {
      process.kill(brokerPid(), 'SIGCONT');
    } catch {
      // not running
    }
    if (!brokerStopped) await run(kafkaScript, ['stop'], { env: brokerEnv }).catch(() => {});
    brokerStopped = true;
    if (mounted) await run('umount', [disk]).catch(() => {});
  }
}

/** The campaign's result as a Markdown table: one row per fault kind, then the totals. */
export function resultTable(results: readonly CampaignResult[]): string {
  const rows: string[][] = [['seed', 'fault kind', 'injected', 'recovered', 'recovery median ms', 'recovery max ms']];
  for (const r of results) {
    for (const kind of FAULT_KINDS) {
      const of = r.faults.filter((f) => f.kind === kind);
      const times = of.map((f) => f.recoveryMs).filter((m): m is number => m !== undefined).sort((a, b) => a - b);
      const skip = r.skipped.find((s) => s.kind === kind);
      rows.push([String(r.seed), kind, skip !== undefined ? `skipped (${skip.why})` : String(of.length), String(times.length), String(times[Math.floor(times.length / 2)] ?? '-'), String(times.at(-1) ?? '-')]);
    }
  }
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((row) => row[c]!.length)));
  const line = (row: string[]): string => `| ${row.map((cell, c) => cell.padEnd(widths[c]!)).join(' | ')} |`;
  return [line(rows[0]!), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.slice(1).map(line)].join('\n');
}
