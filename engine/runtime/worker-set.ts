import { setTimeout as sleep } from 'node:timers/promises';
import v8 from 'node:v8';
import { fileURLToPath } from 'node:url';
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import { Piscina } from 'piscina';
import type { WorkerCheckpoint } from '../checkpoint/metadata.js';
import { describeError, EddyError } from '../errors.js';
import type { Job } from '../job.js';
import type { ResolvedOptions } from '../options.js';
import type { FromWorker, SplitAssignment, SplitPosition, ToWorker, WorkerInit, WorkerMetrics, WorkerResult, WorkerStatus } from './worker-protocol.js';

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
 * Only a process-wide V8 flag sets the starting size, so it is set while a worker set's threads
 * create their heaps and put back after: isolates created later get V8's default.
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

export interface WorkerSetConfig {
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
 * One attempt at running a job: the worker threads (one long-lived piscina task each), the mesh of
 * MessageChannels between them, and the control channel to each. A failure ends the attempt; the
 * job manager may start another one from a checkpoint, with fresh channels (never a stale one).
 */
export class WorkerSet {
  readonly workers: number;
  /** Egress batches received per worker, to compare with what each says it sent. */
  readonly egressBatchesReceived: number[];
  private readonly pool: Piscina;
  private readonly restoreSemiSpaceFlag: () => void;
  private readonly controls: MessagePort[] = [];
  private readonly runs: Array<Promise<WorkerResult>> = [];
  private readonly closed: Array<Promise<void>> = [];
  private wave = 0;
  private waveReplies: Array<WorkerStatus | undefined> = [];
  private waveDone: ((statuses: WorkerStatus[]) => void) | undefined;
  private nextMetricsId = 0;
  private readonly metricsRequests = new Map<number, { results: WorkerMetrics[]; pending: number; resolve: (m: WorkerMetrics[]) => void }>();
  failed = false;
  private readonly threadIds: number[] = [];

  constructor(private readonly config: WorkerSetConfig) {
    this.workers = config.options.workers;
    this.egressBatchesReceived = Array.from({ length: this.workers }, () => 0);
    // Piscina creates the minimum of threads at once; each creates its heap when it starts.
    this.restoreSemiSpaceFlag = setSemiSpaceFlag(config.options.workerYoungGenerationMb);
    try {
      this.pool = new Piscina({
        filename: fileURLToPath(new URL('./worker-bootstrap.mjs', import.meta.url)),
        minThreads: this.workers,
        maxThreads: this.workers,
        concurrentTasksPerWorker: 1,
        idleTimeout: 60_000,
        atomics: 'disabled',
        resourceLimits: { maxYoungGenerationSizeMb: config.options.workerYoungGenerationMb },
      });
    } catch (error) {
      this.restoreSemiSpaceFlag();
      throw error;
    }
  }

  /** Starts every worker; resolves when all have loaded the job and opened their state. */
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
    try {
      await Promise.race([Promise.all(ready), Promise.all(this.runs)]);
    } finally {
      // Every thread has its heap by now (or a worker failed, and so does this set).
      this.restoreSemiSpaceFlag();
    }
  }

  private fail(error: EddyError): void {
    if (this.failed) return;
    this.failed = true;
    for (const request of this.metricsRequests.values()) request.resolve([]);
    this.metricsRequests.clear();
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

  /** Terminates the thread of `worker` as a crash would. */
  async kill(worker: number): Promise<void> {
    const thread = this.pool.threads.find((candidate) => candidate.threadId === this.threadIds[worker]);
    if (thread === undefined) throw new EddyError('EDDY_INVALID_ARGUMENT', `killWorker(${worker}): no such running worker (0..${this.workers - 1})`);
    await thread.terminate();
  }

  /**
   * Ends every thread. Workers still running are asked to abandon the attempt first, so that each
   * closes its LevelDB and ends its task by itself: terminating a thread with native LevelDB work
   * in flight is how a process crashes. A worker that does not answer in time is terminated anyway.
   */
  async destroy(): Promise<void> {
    this.restoreSemiSpaceFlag();
    this.broadcast({ type: 'abandon' });
    await Promise.race([Promise.allSettled(this.runs), sleep(ABANDON_TIMEOUT_MS, undefined, { ref: false })]);
    await this.pool.destroy().catch(() => {});
  }
}
