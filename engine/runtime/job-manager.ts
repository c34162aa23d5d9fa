import { setTimeout as sleep } from 'node:timers/promises';
import { CheckpointCoordinator, type CheckpointInfo, type CheckpointTrigger } from '../checkpoint/coordinator.js';
import { checkpointLineage, type CheckpointMetadata, jobCheckpointDir, listCheckpoints, resolveCheckpoint } from '../checkpoint/metadata.js';
import { describeError, EddyError, invalidOption } from '../errors.js';
import type { Job } from '../job.js';
import { keyGroupOf, ownerOfKeyGroup } from '../key-groups.js';
import { resolveOptions, type ResolvedOptions, type SubmitOptions } from '../options.js';
import { AdminServer } from './admin-server.js';
import { type DirLock, lockDir } from './dir-lock.js';
import { EgressSinks } from './egress-sinks.js';
import { RestartStrategy } from './restart-strategy.js';
import { openStateDir, type StateDir } from './state-dir.js';
import type { JobHandle, JobMetrics, JobStatus, JobSummary, RecoveryEvent } from './job-handle.js';
import { WorkerPool, WorkerSet } from './worker-set.js';
import { type InstanceList, type InstanceState, LOCK_WAITS_SHOWN, OperatorIds, type SplitAssignment, type WorkerMetrics, type WorkerResult, type WorkerStatus } from './worker-protocol.js';

export type { CheckpointAbortCause, CheckpointInfo, CheckpointRecord } from '../checkpoint/coordinator.js';

/** Entries of the lists in `status()`: it answers in constant size however long the job runs. */
export const STATUS_HISTORY = 20;

export type { JobHandle, JobMetrics, JobStatus, JobSummary, LatencySummary, RecoveryEvent } from './job-handle.js';

const POLL_MS = 20;

/**
 * The job manager: plans splits, runs the job as a set of workers (engine/runtime/worker-set.ts),
 * owns the sinks, coordinates checkpoints, decides when the job has ended, and after a worker
 * failure restores the last completed checkpoint on a fresh set of workers.
 */
class JobRun implements JobHandle {
  readonly job: string;
  readonly done: Promise<JobSummary>;
  private resolveDone!: (summary: JobSummary) => void;
  private rejectDone!: (error: unknown) => void;
  private readonly started = Date.now();
  private readonly stateDir: StateDir;
  /** The checkpoint folder and state directory are this run's alone while it runs. */
  private readonly locks: DirLock[] = [];
  private readonly sinks: EgressSinks;
  private readonly coordinator: CheckpointCoordinator | undefined;
  private set: WorkerSet | undefined;
  /** The attempt whose failure was counted last: recovering from the count on, not running while it stops. */
  private failedSet: WorkerSet | undefined;
  /** The worker threads, kept across attempts (created with the first one). */
  private pool: WorkerPool | undefined;
  /** The end of the failed attempt's tasks: the pool's threads end only after it (their LevelDBs closed). */
  private retiring: Promise<void> = Promise.resolve();
  private assignments: SplitAssignment[][] = [];
  private stopRequested = false;
  private ending: 'end-of-input' | 'stop' | undefined;
  private failed = false;
  private ended = false;
  /** The checkpoint a failure restores: the last one completed by this run, or the one it started from. */
  private lastCompleted: number | undefined;
  private readonly admin: Promise<AdminServer | undefined>;
  private restarts = 0;
  /** When the pause the restart strategy chose for the latest restore ends (wall-clock ms). */
  private backoffEndsAt = 0;
  private readonly recoveries: RecoveryEvent[] = [];
  private readonly restartStrategy: RestartStrategy;
  private lastMetrics: WorkerMetrics[] = [];
  private checkpointTimer: NodeJS.Timeout | undefined;
  /**
   * Resolves when a set of workers has been started (checkpoints and kills wait for it). Attempts that
   * fail before they run share one promise, resolved by the next attempt that runs: a periodic
   * checkpoint due during a restore that a second failure cut short once waited for good on a
   * promise nobody resolved any more, and no checkpoint (so no exactly-once output) followed.
   */
  private running: Promise<void>;
  private setRunning!: () => void;
  private isRunning = false;
  /** When the latest failure of an attempt happened (performance.now()), until the restore runs. */
  private failedAt: number | undefined;

  constructor(
    private readonly spec: Job,
    private readonly options: ResolvedOptions,
  ) {
    this.job = spec.name;
    this.done = new Promise((resolve, reject) => {
      this.resolveDone = resolve;
      this.rejectDone = reject;
    });
    // A handle whose caller only awaits stop() must not crash the process on an unobserved rejection.
    this.done.catch(() => {});
    this.running = new Promise((resolve) => (this.setRunning = resolve));
    // 'latest' is the newest good checkpoint: a corrupt newer one is skipped (and the log says so).
    const restore = options.restoreFrom === undefined ? undefined : resolveCheckpoint(options.checkpointDir!, options.restoreFrom, { log: options.log });
    if (restore !== undefined) checkRestorable(restore, spec, options);
    // Refused at once when another run of the job (another process, or another submit in this one)
    // uses the same folders: it would overwrite their checkpoints and state.
    try {
      if (options.checkpointDir !== undefined) this.locks.push(lockDir(options.checkpointDir, 'checkpoint folder', 'checkpointDir (eddy run --checkpoint-dir)'));
      if (options.stateDir !== undefined && options.stateBackend === 'leveldb') this.locks.push(lockDir(options.stateDir, 'state directory', 'stateDir (eddy run --state-dir)'));
      this.stateDir = openStateDir(options.stateDir, options.stateBackend, spec.name, options.workers, options.maxParallelism, restore !== undefined);
    } catch (error) {
      this.releaseLocks();
      throw error;
    }
    if (restore !== undefined) {
      logRestore(restore, options);
      this.recordRecovery({ at: Date.now(), kind: 'restore', checkpoint: restore.id });
    }
    this.lastCompleted = restore?.id;
    const exactlyOnce = options.checkpointDir === undefined ? undefined : { epochScope: checkpointLineage(options.checkpointDir) };
    this.restartStrategy = new RestartStrategy(options.restartStrategy);
    this.sinks = new EgressSinks(spec, exactlyOnce, options.log, (error) => this.sinkFailed(error), options.connectorRetryDeadlineMs);
    if (options.checkpointDir !== undefined) {
      this.coordinator = new CheckpointCoordinator({
        directory: options.checkpointDir,
        job: spec.name,
        workers: options.workers,
        maxParallelism: options.maxParallelism,
        retained: options.checkpointsRetained,
        timeoutMs: options.checkpointTimeoutMs,
        ingressNames: spec.ingresses.map((ingress) => ingress.name),
        operators: { ...OperatorIds },
        broadcast: (message) => this.set?.broadcast(message),
        stageOutput: (id, folder) => this.sinks.stage(id, folder),
        onComplete: (id) => {
          this.lastCompleted = id;
          this.sinks.publishUpTo(id);
        },
        unpublishedFrom: () => this.sinks.unpublishedFrom(),
        tolerableFailures: options.tolerableCheckpointFailures,
        // Like a worker failure: the attempt restores its last checkpoint (or the job fails without one).
        onTooManyFailures: (error) => {
          if (this.set !== undefined) this.workerFailed(this.set, error);
        },
        log: options.log,
      });
    }
    this.admin =
      options.adminPort === undefined
        ? Promise.resolve(undefined)
        : AdminServer.start(this, {
            port: options.adminPort,
            host: options.adminHost,
            token: options.adminToken,
            job: spec,
            latencyWindow: () => this.sinks.takeLatencyWindow(),
            feedbackHighWaterMark: options.feedbackHighWaterMark,
          });
    // A port in use fails the job (the caller asked for the endpoint) but never goes unobserved.
    this.admin.catch((error: unknown) => this.fail(error));
    void this.begin(restore).catch((error: unknown) => this.fail(error));
  }

  adminUrl(): Promise<string | undefined> {
    return this.admin.then((server) => server?.url, () => undefined);
  }

  status(): JobStatus {
    let state: JobStatus['state'];
    if (this.failed) state = 'failed';
    else if (this.ended) state = 'ended';
    else if (this.stopRequested || this.ending !== undefined) state = 'stopping';
    // Running only once every worker of the current attempt restored its state and processes input.
    else if (this.set === undefined || !this.set.started || this.set === this.failedSet) state = this.restarts > 0 ? 'recovering' : 'starting';
    else state = 'running';
    const lastRecovery = this.recoveries.findLast((event) => event.kind !== 'failed');
    return {
      job: this.job,
      state,
      workers: this.options.workers,
      uptimeMs: Date.now() - this.started,
      restarts: this.restarts,
      checkpoints: (this.coordinator?.completed ?? []).slice(-STATUS_HISTORY),
      checkpointsCompleted: this.coordinator?.completed.length ?? 0,
      checkpointsAborted: this.coordinator?.aborted ?? 0,
      checkpointHistory: (this.coordinator?.history ?? []).slice(-STATUS_HISTORY),
      recoveries: this.recoveries.slice(),
      checkpointAborts: { ...this.coordinator?.abortsByCause },
      ...(this.coordinator?.lastCompletedAt !== undefined && { lastCheckpointAt: this.coordinator.lastCompletedAt }),
      unpublishedEpochs: this.lastCompleted === undefined || this.coordinator === undefined ? 0 : Math.max(0, this.lastCompleted + 1 - this.sinks.unpublishedFrom()),
      ...(lastRecovery !== undefined && { lastRecoveryAt: lastRecovery.at }),
      checkpointDir: this.options.checkpointDir,
    };
  }

  private recordRecovery(event: RecoveryEvent): void {
    this.recoveries.push(event);
    if (this.recoveries.length > STATUS_HISTORY) this.recoveries.shift();
  }

  /** Once `done` has settled (so a `POST /stop` still gets its answer), the admin endpoint closes. */
  private closeAdminSoon(): void {
    setImmediate(() => {
      void this.admin.then((server) => server?.close(), () => {});
    });
  }

  private async begin(restore: CheckpointMetadata | undefined): Promise<void> {
    await this.sinks.open();
    if (restore !== undefined) await this.sinks.republish(this.options.checkpointDir!, restore.id);
    await this.runAttempt(restore);
    if (this.options.checkpointIntervalMs !== undefined) this.scheduleCheckpoint();
  }

  /** Plans splits, at the restored positions or where an earlier run on this state stopped. */
  private async plan(restore: CheckpointMetadata | undefined): Promise<SplitAssignment[][]> {
    const { workers } = this.options;
    const assignments: SplitAssignment[][] = Array.from({ length: workers }, () => []);
    let next = 0;
    for (let ingress = 0; ingress < this.spec.ingresses.length; ingress++) {
      const source = this.spec.ingresses[ingress]!;
      const splits = await source.planSplits(this.options.inputs[source.name], { retryDeadlineMs: this.options.connectorRetryDeadlineMs });
      const stored = this.stateDir.manifest.positions[source.name] ?? {};
      const restored = restore?.positions[source.name] ?? {};
      splits.forEach((description, split) => {
        let position: unknown;
        if (restore !== undefined) position = restored[String(split)];
        else {
          const previous = stored[String(split)];
          if (source.resumable && previous !== undefined && previous.description === JSON.stringify(description)) position = previous.position;
        }
        assignments[next++ % workers]!.push({ ingress, split, description, position });
      });
    }
    return assignments;
  }

  /** Starts a set of workers; they start processing input once they are up and `notBefore` has settled. */
  private async runAttempt(restore: CheckpointMetadata | undefined, notBefore: Promise<unknown> = Promise.resolve()): Promise<void> {
    const began = performance.now();
    if (restore !== undefined) this.stateDir.wipe();
    this.assignments = await this.plan(restore);
    const planned = performance.now();
    this.pool ??= new WorkerPool(this.options, this.spec.module);
    const set: WorkerSet = new WorkerSet({
      pool: this.pool,
      job: this.spec,
      options: this.options,
      stateLocation: (worker) => this.stateDir.location(worker),
      assignments: this.assignments,
      restore: restore === undefined ? undefined : { checkpointDir: this.options.checkpointDir!, id: restore.id, parts: restore.parts },
      onEgress: (buffer) => {
        if (this.set === set) this.sinks.receive(buffer);
      },
      onAck: (id, part, positions) => this.coordinator?.onAck(id, part, positions),
      onDecline: (id, reason) => this.coordinator?.abort(id, reason),
      onFailure: (error) => this.workerFailed(set, error),
    });
    this.set = set;
    await Promise.all([set.start(), notBefore]);
    if (set.failed || this.set !== set) return;
    // stop() before the workers were up: they stay unstarted (nothing read, parked work and timers
    // stay in state) and close at the first quiet status wave.
    if (!this.stopRequested) set.broadcast({ type: 'start' });
    else set.broadcast({ type: 'stop-sources' });
    if (this.failedAt !== undefined) {
      const now = performance.now();
      this.options.log(
        `job ${this.job}: workers restored and started ${Math.round(now - this.failedAt)} ms after the failure ` +
          `(stopping the failed attempt ${Math.round(began - this.failedAt)}, planning splits ${Math.round(planned - began)}, restoring with the pause ${Math.round(now - planned)})`,
      );
      this.failedAt = undefined;
    }
    this.isRunning = true;
    this.setRunning();
    void this.watch(set);
  }

  /** Status waves until the job has ended (or this set was replaced after a failure). */
  private async watch(set: WorkerSet): Promise<void> {
    let previous: string | undefined;
    let pauseSent = false;
    let deadline = Infinity;
    while (this.set === set && !set.failed && this.ending === undefined) {
      await sleep(POLL_MS);
      if (this.stopRequested && deadline === Infinity) deadline = Date.now() + this.options.stopTimeoutMs;
      const statuses = await set.status();
      if (this.set !== set || set.failed) return;
      // Ended when, in two consecutive waves with the same counters, every worker is idle, every
      // envelope sent was taken in (per worker pair) and every egress batch arrived.
      const delivered = statuses.every((status, to) => statuses.every((from, f) => from.sent[to] === status.accepted[f]));
      const egressArrived = statuses.every((status, w) => status.egressBatchesSent === set.egressBatchesReceived[w]);
      const fingerprint = JSON.stringify(statuses.map((s) => [s.sent, s.accepted, s.egressBatchesSent]));
      const stable = delivered && egressArrived && fingerprint === previous;
      previous = fingerprint;
      const allIdle = statuses.every((s) => s.idle);
      if (this.stopRequested) {
        if (!pauseSent && Date.now() > deadline) {
          pauseSent = true;
          deadline = Date.now() + this.options.stopTimeoutMs;
          this.options.log(`job ${this.job}: work still running ${this.options.stopTimeoutMs} ms after stop; parking the rest in state`);
          set.broadcast({ type: 'pause' });
        }
        // Paused: close once running handlers finished, or after another stopTimeoutMs (a handler
        // that never settles is parked with its envelope and runs again on the next start).
        const handlersDone = statuses.every((s: WorkerStatus) => s.noneRunning) || Date.now() > deadline;
        if (stable && (allIdle || (pauseSent && handlersDone))) return this.finish('stop');
      } else if (stable && allIdle && statuses.every((s) => s.sourcesDone && s.timersPending === 0)) {
        return this.finish('end-of-input');
      }
    }
  }

  /** A worker died or threw: restore the last completed checkpoint on new workers, or fail. */
  private workerFailed(set: WorkerSet, error: EddyError): void {
    if (this.set !== set || this.failed || this.ending !== undefined) return;
    // The last checkpoint this run completed (or restored), not the newest on disk: one whose
    // completion raced with this failure is discarded, and older runs' checkpoints are not ours.
    const latest = this.lastCompleted;
    // Failed while it still restored after an earlier failure (recorded; the restore that follows
    // overlaps its pause, so unless failures pile up, a second one costs about what a first did).
    const interruptedRestore = !set.started && this.restarts > 0;
    const backoffMs = this.restartDecision(error, interruptedRestore);
    if (backoffMs === undefined || latest === undefined) return;
    this.options.log(`job ${this.job}: ${describeError(error)}; restoring checkpoint ${latest} in ${backoffMs} ms (restart ${this.restarts}${interruptedRestore ? ', the failed attempt was still restoring' : ''})`);
    // A sink whose queue stopped publishes its pending epochs again, on a fresh connection, after the pause.
    if (this.sinks.failed) setTimeout(() => this.sinks.recover(), backoffMs);
    this.set = undefined;
    this.failedAt = performance.now();
    if (this.isRunning) {
      this.isRunning = false;
      this.running = new Promise((resolve) => (this.setRunning = resolve));
    }
    this.coordinator?.abortRunning('a worker failed');
    this.sinks.discardHeld();
    this.retiring = set.destroy();
    this.restoreAfterBackoff(latest, backoffMs);
  }

  /**
   * A restore failed part-way (e.g. a source still could not reach its brokers after
   * connectorRetryDeadlineMs): another failure of the attempt, counted against the restart
   * strategy; one that cannot succeed on a retry (a missing topic, a corrupt checkpoint) fails the job.
   */
  private restoreFailed(error: unknown): void {
    if (this.failed || this.ending !== undefined) return;
    if (!(error instanceof EddyError) || !error.retryable) {
      this.fail(error);
      return;
    }
    const backoffMs = this.restartDecision(error);
    const latest = this.lastCompleted;
    if (backoffMs === undefined || latest === undefined) return;
    this.options.log(`job ${this.job}: the restore failed: ${describeError(error)}; restoring checkpoint ${latest} again in ${backoffMs} ms (restart ${this.restarts})`);
    const set = this.set;
    this.set = undefined;
    if (set !== undefined) this.retiring = set.destroy();
    this.restoreAfterBackoff(latest, backoffMs);
  }

  /**
   * Restores checkpoint `latest` (or the newest good one before it) on new workers. The backoff runs
   * while they restore their state: they process input once both are done. A restore starts no
   * earlier than the end of the previous backoff, so that attempts that fail at once (a full disk
   * refusing to open LevelDB) still pause as the strategy says instead of using up its failures in
   * a few seconds; a kill during a restore that is past that point costs no extra wait.
   */
  private restoreAfterBackoff(latest: number, backoffMs: number): void {
    const previousBackoffEndsAt = this.backoffEndsAt;
    this.backoffEndsAt = Date.now() + backoffMs;
    void (async () => {
      await this.retiring;
      const wait = previousBackoffEndsAt - Date.now();
      if (wait > 0) await sleep(wait);
      if (this.failed || this.ending !== undefined) return;
      await this.runAttempt(resolveCheckpoint(this.options.checkpointDir!, 'latest', { atMost: latest, log: this.options.log }), sleep(Math.max(0, this.backoffEndsAt - Date.now())));
    })().catch((again: unknown) => this.restoreFailed(again));
  }

  /**
   * A failure of the attempt: whether the job restores (then the pause before it, and the restart
   * is counted) or fails (then it has failed, and undefined is returned). `interruptedRestore`: the
   * attempt failed while it still restored (recorded with the restart). The pause doubles all the
   * same: a restore that fails by itself at once (a full disk) must not retry back to back.
   */
  private restartDecision(error: EddyError, interruptedRestore = false): number | undefined {
    if (this.lastCompleted === undefined || this.stopRequested || this.ending !== undefined) {
      this.fail(error);
      return undefined;
    }
    const decision = this.restartStrategy.onFailure();
    if (!decision.restart) {
      this.fail(new EddyError(error.code, `${error.message}; not restoring again: ${decision.reason}`, { cause: error, retryable: false }));
      return undefined;
    }
    this.restarts++;
    this.failedSet = this.set;
    const { backoffMs } = decision;
    this.recordRecovery({ at: Date.now(), kind: 'restart', checkpoint: this.lastCompleted, code: error.code, reason: error.message, restart: this.restarts, backoffMs, ...(interruptedRestore && { duringRestore: true }) });
    return backoffMs;
  }

  /**
   * A sink gave up (after its own retries up to connectorRetryDeadlineMs): the attempt fails like a
   * worker failure. During a restore (no workers running) only the sink is recovered, after the pause.
   */
  private sinkFailed(error: EddyError): void {
    if (this.failed) return;
    if (this.set !== undefined && this.ending === undefined) {
      this.workerFailed(this.set, error);
      return;
    }
    const backoffMs = this.restartDecision(error);
    if (backoffMs === undefined) return;
    this.options.log(`job ${this.job}: ${describeError(error)}; opening the sink again in ${backoffMs} ms (restart ${this.restarts})`);
    setTimeout(() => this.sinks.recover(), backoffMs);
  }

  private scheduleCheckpoint(): void {
    this.checkpointTimer = setTimeout(() => {
      if (this.ending !== undefined || this.failed) return;
      if (this.set === undefined) {
        this.scheduleCheckpoint();
        return;
      }
      this.takeCheckpoint('periodic')
        .catch((error: unknown) => this.options.log(`periodic checkpoint: ${describeError(error)}`))
        .finally(() => {
          if (this.ending === undefined && !this.failed) this.scheduleCheckpoint();
        });
    }, this.options.checkpointIntervalMs);
  }

  checkpoint(options: { timeoutMs?: number } = {}): Promise<CheckpointInfo> {
    const { timeoutMs } = options;
    if (timeoutMs !== undefined && !(Number.isInteger(timeoutMs) && timeoutMs > 0)) {
      return Promise.reject(new EddyError('EDDY_INVALID_ARGUMENT', `checkpoint({ timeoutMs }): timeoutMs is ${JSON.stringify(timeoutMs)}; give a positive integer (ms)`));
    }
    if (this.coordinator === undefined) {
      return Promise.reject(new EddyError('EDDY_INVALID_OPTION', 'checkpoint(): the job has no checkpointDir; submit it with options.checkpointDir (eddy run --checkpoint-dir <dir>)'));
    }
    return this.takeCheckpoint('manual', timeoutMs);
  }

  private takeCheckpoint(trigger: CheckpointTrigger, timeoutMs?: number): Promise<CheckpointInfo> {
    const coordinator = this.coordinator!;
    return Promise.race([this.running, this.done.then(() => undefined)]).then(() => coordinator.trigger(timeoutMs, trigger));
  }

  async killWorker(worker: number): Promise<void> {
    // Workers that still restore can be killed too (a second failure during a restore): between two
    // attempts the kill waits for the next attempt's workers to exist, not for them to run.
    while (this.set === undefined && !this.failed && !this.ended) await Promise.race([this.running, sleep(5)]);
    await this.set?.kill(worker);
  }

  async state(type: string, id: string): Promise<InstanceState> {
    const fn = this.spec.functions.get(type);
    if (fn?.kind !== 'regular') {
      const types = [...this.spec.functions].filter(([, f]) => f.kind === 'regular').map(([name]) => name);
      throw new EddyError('EDDY_UNKNOWN_FUNCTION_TYPE', `state(${type}, ${id}): job ${this.job} has no function type ${type} with state; its function types: ${types.join(', ') || '(none)'}`);
    }
    const set = this.set;
    if (set === undefined || this.ended || this.failed || this.ending !== undefined) {
      throw new EddyError('EDDY_JOB_STOPPED', `state(${type}, ${id}): job ${this.job} has no running workers now (${this.status().state}); try again while it runs`, { retryable: true });
    }
    const { workers, maxParallelism } = this.options;
    const answer = await set.queryState(ownerOfKeyGroup(keyGroupOf(id, maxParallelism), workers, maxParallelism), { type, id });
    if ('error' in answer) throw new EddyError('EDDY_JOB_STOPPED', `state(${type}, ${id}): ${answer.error}`, { retryable: true });
    return answer;
  }

  async states(type: string, options: { prefix?: string; limit?: number } = {}): Promise<InstanceList> {
    const prefix = options.prefix ?? '';
    const limit = options.limit ?? 100;
    const where = `states(${type}, { prefix: ${JSON.stringify(prefix)}, limit: ${limit} })`;
    if (typeof prefix !== 'string') throw invalidOption(`${where}: prefix`, `is ${JSON.stringify(prefix)}`, 'give the start of the ids to list, or none for all');
    if (!Number.isInteger(limit) || limit < 1 || limit > 10_000) throw invalidOption(`${where}: limit`, `is ${String(limit)}`, 'give a whole number from 1 to 10000 (default 100)');
    const fn = this.spec.functions.get(type);
    if (fn?.kind !== 'regular') {
      const types = [...this.spec.functions].filter(([, f]) => f.kind === 'regular').map(([name]) => name);
      throw new EddyError('EDDY_UNKNOWN_FUNCTION_TYPE', `${where}: job ${this.job} has no function type ${type} with state; its function types: ${types.join(', ') || '(none)'}`);
    }
    const set = this.set;
    if (set === undefined || this.ended || this.failed || this.ending !== undefined) {
      throw new EddyError('EDDY_JOB_STOPPED', `${where}: job ${this.job} has no running workers now (${this.status().state}); try again while it runs`, { retryable: true });
    }
    // Each worker lists its own key groups (each instance read between its invocations); merged in id order.
    const answers = await Promise.all(Array.from({ length: this.options.workers }, (_, worker) => set.listStates(worker, { type, prefix, limit })));
    const instances: InstanceState[] = [];
    let truncated = false;
    for (const answer of answers) {
      if ('error' in answer) throw new EddyError('EDDY_JOB_STOPPED', `${where}: ${answer.error}`, { retryable: true });
      instances.push(...answer.instances);
      truncated ||= answer.truncated;
    }
    instances.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    return { type, prefix, instances: instances.slice(0, limit), truncated: truncated || instances.length > limit };
  }

  checkpoints(): number[] {
    return this.options.checkpointDir === undefined ? [] : listCheckpoints(this.options.checkpointDir);
  }

  stop(): Promise<JobSummary> {
    if (!this.stopRequested && this.ending === undefined) {
      this.stopRequested = true;
      this.set?.broadcast({ type: 'stop-sources' });
    }
    return this.done;
  }

  async metrics(): Promise<JobMetrics> {
    const set = this.set;
    if (this.ending === undefined && !this.failed && set !== undefined) {
      const metrics = await set.metrics();
      if (metrics.length === set.workers) this.lastMetrics = metrics;
    }
    return this.snapshot(this.lastMetrics);
  }

  resetLatency(): void {
    this.sinks.resetLatency();
  }

  output<R = unknown>(egress: string): readonly R[] {
    return this.sinks.output(egress) as readonly R[];
  }

  private snapshot(perWorker: WorkerMetrics[]): JobMetrics {
    const totals = {
      recordsRead: 0, envelopesRouted: 0, invocations: 0, invocationsFailed: 0, handlerErrors: 0, deadLetters: 0,
      egressRecords: 0, messagesSent: 0, delayedScheduled: 0, delayedFired: 0, mailboxDepth: 0, feedbackBacklog: 0, feedbackHeldForCheckpoint: 0, stateCacheDirty: 0,
      routerBlockedOnCreditsMs: 0, routerBlockedOnFeedbackMs: 0, heapUsedBytes: 0, stateBytesOnDisk: 0,
      transactionsCommitted: 0, transactionsAborted: 0, transactionsRetryable: 0, deadlocksFound: 0, lockWaitTimeouts: 0, transactionsRunning: 0, transactionLimit: 0, sagasRunning: 0, transactionsWaiting: 0, locksHeld: 0, locksReleased: 0,
      lockHoldMsTotal: 0, sagasSucceeded: 0, sagasFailed: 0, compensationsFailed: 0, compensationsAbandoned: 0, staleProtocolMessages: 0,
    };
    for (const m of perWorker) for (const key of Object.keys(totals) as Array<keyof typeof totals>) totals[key] += m[key];
    return {
      job: this.job,
      workers: this.options.workers,
      uptimeMs: Date.now() - this.started,
      perWorker,
      totals,
      egress: Object.fromEntries(this.spec.egresses.map((e, i) => [e.name, this.sinks.counts[i]!])),
      latency: this.sinks.latencySummary(),
      connectors: [...perWorker.flatMap((m) => m.connectors ?? []), ...this.sinks.connectorMetrics()],
      lockWaits: perWorker
        .flatMap((m) => m.lockWaits ?? [])
        .sort((a, b) => b.waitedMs - a.waitedMs)
        .slice(0, LOCK_WAITS_SHOWN),
    };
  }

  private async finish(endedBy: 'end-of-input' | 'stop'): Promise<void> {
    this.ending = endedBy;
    if (this.checkpointTimer !== undefined) clearTimeout(this.checkpointTimer);
    const set = this.set!;
    try {
      // A final checkpoint of the quiet job: a later restore from it continues exactly here, and the
      // sinks publish the last output as its epoch. Output not confirmed by a checkpoint is never
      // published when there are checkpoints: after three failed tries the job fails instead.
      if (this.coordinator !== undefined) await this.finalCheckpoint(this.coordinator);
      this.coordinator?.close('the job is ending');
      const results = await set.close();
      if (this.coordinator === undefined) {
        // The state is flushed and matches everything produced: publish what was held back.
        this.sinks.publishRemaining();
      } else {
        // Produced after the final cut by invocations stopped part-way (stop() after stopTimeoutMs):
        // they are parked in that checkpoint and run again on a restore from it.
        const dropped = this.sinks.discardHeld();
        if (dropped > 0) this.options.log(`job ${this.job}: ${dropped} records produced after the final checkpoint are dropped; their invocations run again on a restore from it`);
      }
      await this.sinks.close();
      // A sink failed while the job ended (sinkFailed failed the job): the output is not all out.
      if (this.failed) return;
      await set.destroy();
      await this.retiring;
      await this.pool?.destroy();
      this.savePositions(results);
      if (this.stateDir.temporary) this.stateDir.remove();
      this.releaseLocks();
      this.ended = true;
      this.closeAdminSoon();
      this.resolveDone({
        ...this.snapshot(results.map((r) => r.metrics)),
        endedBy,
        stateDir: this.stateDir.temporary ? undefined : this.stateDir.path,
        restarts: this.restarts,
        checkpoints: this.coordinator?.completed ?? [],
      });
    } catch (error) {
      this.fail(error);
    }
  }

  private async finalCheckpoint(coordinator: CheckpointCoordinator): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await coordinator.trigger(undefined, 'final');
        return;
      } catch (error) {
        const last = this.lastCompleted === undefined ? 'its input from the start' : `checkpoint ${this.lastCompleted}`;
        if (attempt >= 3) {
          throw new EddyError('EDDY_CHECKPOINT_FAILED', `job ${this.job}: the final checkpoint failed ${attempt} times (${describeError(error)}); the output since the last completed checkpoint is not published: restore from ${last} to produce it`, { cause: error });
        }
        this.options.log(`job ${this.job}: the final checkpoint failed (${describeError(error)}); trying again`);
      }
    }
  }

  private savePositions(results: WorkerResult[]): void {
    const manifest = { ...this.stateDir.manifest, workers: this.options.workers, positions: { ...this.stateDir.manifest.positions } };
    const descriptions = new Map(this.assignments.flat().map((a) => [`${a.ingress}/${a.split}`, a.description]));
    for (const result of results) {
      for (const { ingress, split, position } of result.positions) {
        const name = this.spec.ingresses[ingress]!.name;
        manifest.positions[name] = { ...manifest.positions[name], [String(split)]: { description: JSON.stringify(descriptions.get(`${ingress}/${split}`)), position } };
      }
    }
    this.stateDir.save(manifest);
  }

  private releaseLocks(): void {
    for (const lock of this.locks) lock.release();
  }

  private fail(error: unknown): void {
    if (this.failed) return;
    this.failed = true;
    this.recordRecovery({ at: Date.now(), kind: 'failed', ...(error instanceof EddyError && { code: error.code }), reason: error instanceof Error ? error.message : String(error) });
    if (this.checkpointTimer !== undefined) clearTimeout(this.checkpointTimer);
    this.coordinator?.close('the job failed');
    this.options.log(`job ${this.job} failed: ${describeError(error)}`);
    const set = this.set;
    void (async () => {
      await set?.destroy();
      await this.retiring;
      await this.pool?.destroy();
      await this.sinks.close().catch(() => {});
      if (this.stateDir.temporary) this.stateDir.remove();
      this.releaseLocks();
      this.closeAdminSoon();
      this.rejectDone(error);
    })();
  }
}

function logRestore(restore: CheckpointMetadata, options: ResolvedOptions): void {
  const workers = restore.workers === options.workers ? `${options.workers} worker${options.workers === 1 ? '' : 's'}` : `${options.workers} workers (it was taken on ${restore.workers})`;
  options.log(`restoring checkpoint ${restore.id} of ${options.checkpointDir!} on ${workers}`);
}

/** A checkpoint can be restored by this job only with the same job name and key groups. */
function checkRestorable(metadata: CheckpointMetadata, job: Job, options: ResolvedOptions): void {
  if (metadata.job !== job.name) {
    throw new EddyError('EDDY_CHECKPOINT_NOT_FOUND', `checkpoint ${metadata.id} belongs to job ${metadata.job}, not ${job.name}; pick another checkpointDir`);
  }
  if (metadata.maxParallelism !== options.maxParallelism) {
    throw new EddyError(
      'EDDY_INVALID_OPTION',
      `options.maxParallelism is ${options.maxParallelism} but checkpoint ${metadata.id} was taken with ${metadata.maxParallelism}: it may not change; submit with maxParallelism ${metadata.maxParallelism}`,
    );
  }
}

/** Starts a job. Invalid options throw here; everything later settles `handle.done`. */
export function submit(job: Job, options?: SubmitOptions): JobHandle {
  if (job?.kind !== 'eddy-job') throw new EddyError('EDDY_INVALID_JOB', 'submit(job): job must be made with defineJob()');
  const resolved = resolveOptions(options);
  for (const name of Object.keys(resolved.inputs)) {
    if (!job.ingresses.some((ingress) => ingress.name === name)) {
      throw new EddyError('EDDY_UNKNOWN_INGRESS', `options.inputs.${name}: the job has no ingress ${name}; its ingresses: ${job.ingresses.map((i) => i.name).join(', ') || '(none)'}`);
    }
  }
  // Each job keeps its checkpoints in its own folder of checkpointDir (see jobCheckpointDir).
  const checkpointDir = resolved.checkpointDir === undefined ? undefined : jobCheckpointDir(resolved.checkpointDir, job.name);
  return new JobRun(job, { ...resolved, checkpointDir });
}
