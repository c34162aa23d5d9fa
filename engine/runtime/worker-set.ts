import { setTimeout as sleep } from 'node:timers/promises';
import v8 from 'node:v8';
import { fileURLToPath } from 'node:url';
import { MessageChannel, type MessagePort, type Worker } from 'node:worker_threads';
import { Piscina } from 'piscina';
import type { WorkerCheckpoint } from '../checkpoint/metadata.js';
import { describeError, EddyError } from '../errors.js';
import type { Job } from '../job.js';
import type { ResolvedOptions } from '../options.js';
import type { FromWorker, InstanceList, InstanceState, SplitAssignment, SplitPosition, ToWorker, WorkerInit, WorkerMetrics, WorkerResult, WorkerStatus } from './worker-protocol.js';

/** Whether the process was started with its own starting size of V8's semi-spaces: then it is left alone. */
const SEMI_SPACE_SET_BY_USER = process.execArgv.some((arg) => /^--min[-_]semi[-_]space[-_]size\b/.test(arg));

/** Semi-space sizes (MB) of the worker sets whose threads are creating their heaps now. */
const startingSemiSpaces: number[] = [];

/**
 * The largest semi-space V8 gives a young generation of this size: a third (two semi-spaces and a
 * large-object space), rounded up to a power of two.
 */
function largestSemiSpaceMb(youngGenerationMb: number): number {
  return 2 ** Math.ceil(Math.log2(Math.max(1, youngGenerationMb / 3)));
}

/**
 * Starts the semi-spaces of the next worker threads' heaps at their full size; returns the function
 * that puts V8's default back. V8 starts them at 1 MB and doubles them only after as many bytes have
 * survived as they hold, so a worker spends the first part of a run with small ones. With 64 MB
 * semi-spaces a worker running ycsb-t sagas scavenges every 0.3 s, a hot key's latest value (replaced
 * every 0.1-0.2 s) often survives two scavenges and is promoted, and a mark-compact follows about
 * every second. With 128 MB: no mark-compact in 8 s at 20.5K sagas/s (4-8 with 64 MB), p99 33-44 ms
 * against 48-53, for about 95 MB more memory per worker.
 * Only a process-wide V8 flag sets the starting size, so it is set while a job's pool lives (the pool
 * replaces a thread that died at any time) and put back when the pool is destroyed: isolates created
 * after the job get V8's default.
 */
function setSemiSpaceFlag(youngGenerationMb: number): () => void {
  if (SEMI_SPACE_SET_BY_USER) return () => {};
  const size = largestSemiSpaceMb(youngGenerationMb);
  startingSemiSpaces.push(size);
  // Sets starting at once share the flag: the largest, which V8 caps at each heap's own maximum.
  const apply = (): void => v8.setFlagsFromString(`--min-semi-space-size=${Math.max(0, ...startingSemiSpaces)}`);
  apply();
  let restored = false;
  return () => {
    if (restored) return;
    restored = true;
    startingSemiSpaces.splice(startingSemiSpaces.indexOf(size), 1);
    apply();
  };
}

/** How long destroy() lets workers close their state before their threads are terminated. */
const ABANDON_TIMEOUT_MS = 5_000;

/** How long the crash drill lets a worker close its LevelDB before its thread is terminated anyway. */
const CRASH_TIMEOUT_MS = 5_000;

/**
 * Threads started beyond the workers: when a worker's thread dies, a restore need not wait for a new
 * thread to start (about 0.5 s: the thread, the TypeScript loader, the engine's modules; 2-4 s on a
 * busy machine). Two: a second failure during a restore (a thread died in each) finds one ready too,
 * where with one the restored worker waited for a replacement (2.2-2.9 s measured with 2 workers).
 */
const STANDBY_THREADS = 2;

/**
 * The worker threads of one job, kept across its attempts: a restore after a failure runs its
 * workers as new tasks on the threads that survived (the engine and the job module already loaded),
 * and piscina replaces a thread that died. Every attempt gets new channels (WorkerSet), so a restored
 * worker never talks to a stale one.
 */
export class WorkerPool {
  readonly piscina: Piscina;
  private readonly restoreSemiSpaceFlag: () => void;

  constructor(options: ResolvedOptions, jobModule: string) {
    this.restoreSemiSpaceFlag = setSemiSpaceFlag(options.workerYoungGenerationMb);
    try {
      const threads = options.workers + STANDBY_THREADS;
      this.piscina = new Piscina({
        filename: fileURLToPath(new URL('./worker-bootstrap.mjs', import.meta.url)),
        minThreads: threads,
        maxThreads: threads,
        concurrentTasksPerWorker: 1,
        idleTimeout: 60_000,
        atomics: 'disabled',
        resourceLimits: { maxYoungGenerationSizeMb: options.workerYoungGenerationMb },
        // worker-bootstrap.mjs loads it when a thread starts.
        workerData: { jobModule },
      });
    } catch (error) {
      this.restoreSemiSpaceFlag();
      throw error;
    }
  }

  /**
   * Ends the threads. Call it once no task runs (every worker set closed or destroyed): a thread
   * terminated with its LevelDB open and work in flight takes the process down.
   */
  async destroy(): Promise<void> {
    this.restoreSemiSpaceFlag();
    await this.piscina.destroy().catch(() => {});
  }
}

export interface WorkerSetConfig {
  pool: WorkerPool;
  job: Job;
  options: ResolvedOptions;
  stateLocation: (worker: number) => string | undefined;
  assignments: SplitAssignment[][];
  restore: WorkerInit['restore'];
  onEgress: (buffer: ArrayBuffer) => void;
  onAck: (id: number, part: WorkerCheckpoint, positions: SplitPosition[]) => void;
  onDecline: (id: number, reason: string) => void;
  /** A worker threw or exited: the whole set is unusable. */
  onFailure: (error: EddyError) => void;
}

/**
 * One attempt at running a job: one long-lived task per worker on the job's pool, the mesh of
 * MessageChannels between them, and the control channel to each. A failure ends the attempt; the
 * job manager may start another one from a checkpoint, with fresh channels (never a stale one).
 */
export class WorkerSet {
  readonly workers: number;
  /** Egress batches received per worker, to compare with what each says it sent. */
  readonly egressBatchesReceived: number[];
  private readonly pool: Piscina;
  private readonly controls: MessagePort[] = [];
  private readonly runs: Array<Promise<WorkerResult>> = [];
  private readonly closed: Array<Promise<void>> = [];
  private wave = 0;
  private waveReplies: Array<WorkerStatus | undefined> = [];
  private waveDone: ((statuses: WorkerStatus[]) => void) | undefined;
  private nextMetricsId = 0;
  private readonly metricsRequests = new Map<number, { results: WorkerMetrics[]; pending: number; resolve: (m: WorkerMetrics[]) => void }>();
  private readonly stateRequests = new Map<number, (answer: InstanceState | InstanceList | { error: string }) => void>();
  failed = false;
  private readonly threadIds: number[] = [];
  /** Workers whose routers and timers have started (after `start`). */
  private startedCount = 0;
  private setFailed!: () => void;
  /** Settles when the set failed: a start under way need not wait for the workers still restoring. */
  private readonly failure = new Promise<void>((resolve) => (this.setFailed = resolve));

  constructor(private readonly config: WorkerSetConfig) {
    this.workers = config.options.workers;
    this.egressBatchesReceived = Array.from({ length: this.workers }, () => 0);
    this.pool = config.pool.piscina;
  }

  /** Every worker has restored its state, replayed what was parked or in flight, and started its routers. */
  get started(): boolean {
    return this.startedCount === this.workers;
  }

  /** Starts every worker; resolves when all have loaded the job and restored their state, or the set failed. */
  async start(): Promise<void> {
    const { job, options } = this.config;
    const workers = this.workers;
    const peers: Array<Array<MessagePort | undefined>> = Array.from({ length: workers }, () => Array.from({ length: workers }, () => undefined));
    for (let a = 0; a < workers; a++) {
      for (let b = a + 1; b < workers; b++) {
        const { port1, port2 } = new MessageChannel();
        peers[a]![b] = port1;
        peers[b]![a] = port2;
      }
    }
    const { log: _log, inputs: _inputs, stateDir: _stateDir, checkpointDir, restoreFrom: _restoreFrom, ...workerOptions } = options;
    const ready: Array<Promise<void>> = [];
    for (let worker = 0; worker < workers; worker++) {
      const { port1: control, port2: workerControl } = new MessageChannel();
      this.controls.push(control);
      let closed!: () => void;
      this.closed.push(new Promise((resolve) => (closed = resolve)));
      ready.push(new Promise((resolve) => this.listen(worker, control, resolve, closed)));
      const init: WorkerInit = {
        worker,
        workers,
        jobModule: job.module,
        jobName: job.name,
        stateLocation: this.config.stateLocation(worker),
        options: workerOptions,
        splits: this.config.assignments[worker]!,
        control: workerControl,
        peers: peers[worker]!,
        checkpointDir,
        restore: this.config.restore,
      };
      const transfer = [workerControl, ...peers[worker]!.filter((p): p is MessagePort => p !== undefined)];
      const run = this.pool.run(init, { transferList: transfer }) as Promise<WorkerResult>;
      this.runs.push(run);
      run.catch((error: unknown) => this.fail(new EddyError('EDDY_WORKER_FAILED', `worker ${worker} failed: ${describeError(error)}`, { cause: error })));
    }
    await Promise.race([Promise.all(ready), Promise.all(this.runs), this.failure]);
  }

  private fail(error: EddyError): void {
    if (this.failed) return;
    this.failed = true;
    this.setFailed();
    for (const request of this.metricsRequests.values()) request.resolve([]);
    this.metricsRequests.clear();
    for (const resolve of this.stateRequests.values()) resolve({ error: 'the workers failed; the job is restoring its last checkpoint: try again' });
    this.stateRequests.clear();
    this.config.onFailure(error);
  }

  private listen(worker: number, control: MessagePort, ready: () => void, closed: () => void): void {
    control.on('message', (message: FromWorker) => {
      switch (message.type) {
        case 'ready':
          this.threadIds[worker] = message.threadId;
          ready();
          break;
        case 'egress':
          this.egressBatchesReceived[worker]!++;
          this.config.onEgress(message.buffer);
          break;
        case 'status':
          if (message.wave !== this.wave) break;
          this.waveReplies[worker] = message.status;
          if (this.waveReplies.every((s) => s !== undefined)) this.waveDone?.(this.waveReplies);
          break;
        case 'metrics': {
          const request = this.metricsRequests.get(message.id);
          if (request === undefined) break;
          request.results[worker] = message.metrics;
          if (--request.pending === 0) {
            this.metricsRequests.delete(message.id);
            request.resolve(request.results);
          }
          break;
        }
        case 'state-answer':
          this.stateRequests.get(message.id)?.(message.answer);
          this.stateRequests.delete(message.id);
          break;
        case 'checkpoint-ack':
          this.config.onAck(message.id, message.part, message.positions);
          break;
        case 'checkpoint-declined':
          this.config.onDecline(message.id, message.reason);
          break;
        case 'log':
          this.config.options.log(message.line);
          break;
        case 'closed':
          closed();
          break;
        case 'started':
          this.startedCount++;
          break;
      }
    });
  }

  broadcast(message: ToWorker): void {
    for (const control of this.controls) control.postMessage(message);
  }

  /** One status wave: every worker's counters. Never resolves if the set failed meanwhile. */
  status(): Promise<WorkerStatus[]> {
    this.wave++;
    this.waveReplies = this.controls.map(() => undefined);
    return new Promise((resolve) => {
      this.waveDone = resolve;
      this.broadcast({ type: 'status', wave: this.wave });
    });
  }

  metrics(): Promise<WorkerMetrics[]> {
    if (this.failed) return Promise.resolve([]);
    const id = this.nextMetricsId++;
    return new Promise((resolve) => {
      this.metricsRequests.set(id, { results: [], pending: this.workers, resolve });
      this.broadcast({ type: 'metrics', id });
    });
  }

  /** Asks `worker` for one instance's state (see InstanceState). */
  queryState(worker: number, address: { type: string; id: string }): Promise<InstanceState | { error: string }> {
    return this.askState(worker, (id) => ({ type: 'state-query', id, address })) as Promise<InstanceState | { error: string }>;
  }

  /** Asks `worker` for the instances of a type in its key groups whose ids start with a prefix (see InstanceList). */
  listStates(worker: number, list: { type: string; prefix: string; limit: number }): Promise<InstanceList | { error: string }> {
    return this.askState(worker, (id) => ({ type: 'state-list', id, list })) as Promise<InstanceList | { error: string }>;
  }

  private askState(worker: number, message: (id: number) => ToWorker): Promise<InstanceState | InstanceList | { error: string }> {
    if (this.failed) return Promise.resolve({ error: 'the workers failed; the job is restoring its last checkpoint: try again' });
    const id = this.nextMetricsId++;
    return new Promise((resolve) => {
      this.stateRequests.set(id, resolve);
      this.controls[worker]!.postMessage(message(id));
    });
  }

  /**
   * Closes every worker (sources stopped, leftovers parked, state flushed) and resolves with their
   * results once each has said `closed` on its control channel, behind its last egress batch.
   */
  async close(): Promise<WorkerResult[]> {
    this.broadcast({ type: 'close' });
    const results = await Promise.all(this.runs);
    await Promise.all(this.closed);
    return results.sort((a, b) => a.worker - b.worker);
  }

  /**
   * Failure drill: ends the thread of `worker` as a crash would, also while it still starts. The
   * worker stops at once and closes its LevelDB, then its thread exits; one that has not within
   * CRASH_TIMEOUT_MS is terminated.
   */
  async kill(worker: number): Promise<void> {
    const control = this.controls[worker];
    const run = this.runs[worker];
    if (control === undefined || run === undefined) throw new EddyError('EDDY_INVALID_ARGUMENT', `killWorker(${worker}): no such running worker (0..${this.workers - 1})`);
    control.postMessage({ type: 'crash' } satisfies ToWorker);
    // The attempt is lost from here: its recovery need not wait for the thread to have ended.
    this.fail(new EddyError('EDDY_WORKER_FAILED', `worker ${worker} failed: killed (failure drill)`));
    const ended = await Promise.race([run.then(() => true, () => true), sleep(CRASH_TIMEOUT_MS, false, { ref: false })]);
    if (!ended) await this.thread(worker)?.terminate();
  }

  private thread(worker: number): Worker | undefined {
    return this.pool.threads.find((candidate) => candidate.threadId === this.threadIds[worker]);
  }

  /**
   * Ends this attempt. Workers still running are asked to abandon it (a restore under way stops
   * too), so that each closes its LevelDB and ends its task by itself; their threads stay in the pool
   * for the next attempt. Terminating a thread with LevelDB work in flight is how a process crashes:
   * only a worker that does not answer in time (a handler stuck in a loop) is terminated.
   */
  async destroy(): Promise<void> {
    this.broadcast({ type: 'abandon' });
    const settled = this.runs.map(() => false);
    // Done once its task ended, or once it said `closed` (its LevelDB closed): a worker killed by the
    // drill then ends its thread, which can take a busy machine most of a second, and a standby
    // thread runs the next attempt meanwhile.
    const ended = this.runs.map((run, worker) => Promise.race([run.then(() => {}, () => {}), this.closed[worker]!]).then(() => void (settled[worker] = true)));
    await Promise.race([Promise.all(ended), sleep(ABANDON_TIMEOUT_MS, undefined, { ref: false })]);
    await Promise.all(
      settled.map(async (done, worker) => {
        if (done) return;
        this.config.options.log(`worker ${worker} did not end its task within ${ABANDON_TIMEOUT_MS} ms of being asked to; terminating its thread`);
        await this.thread(worker)?.terminate();
      }),
    );
    // A task still queued in the pool (no thread was free) then abandons as soon as it runs, and
    // these ports no longer keep the process alive.
    for (const control of this.controls) control.close();
  }
}
