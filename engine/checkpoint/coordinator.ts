import { rmSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { describeError, EddyError } from '../errors.js';
import { EGRESS_LOG_FILE } from './egress-log.js';
import type { SplitPosition, ToWorker } from '../runtime/worker-protocol.js';
import {
  CHECKPOINT_FORMAT_VERSION,
  checkpointPath,
  type CheckpointMetadata,
  highestCheckpointId,
  pruneCheckpoints,
  type WorkerCheckpoint,
  writeMetadata,
} from './metadata.js';

export interface CheckpointInfo {
  id: number;
  durationMs: number;
  bytes: number;
}

/** What started a checkpoint: the interval, `checkpoint()` (or `eddy checkpoint`), or the end of the job. */
export type CheckpointTrigger = 'periodic' | 'manual' | 'final';

/** One checkpoint of this run, completed or aborted, as the console's timeline shows it. */
export interface CheckpointRecord {
  id: number;
  trigger: CheckpointTrigger;
  /** Wall-clock ms. */
  startedAt: number;
  durationMs: number;
  outcome: 'completed' | 'aborted';
  /** Completed: bytes written for it (state files of this checkpoint, feedback logs, output). */
  bytes?: number;
  /** Completed: `full` when every worker wrote its whole state, `delta` when each wrote only changes, else `mixed`. */
  state?: 'full' | 'delta' | 'mixed';
  /** Aborted: why. */
  reason?: string;
  /** Aborted: whether it counted against tolerableCheckpointFailures (not when a worker failed or the job ended). */
  counted?: boolean;
}

/** Checkpoint records kept for status and the console: the latest this many. */
export const CHECKPOINT_HISTORY = 50;

/**
 * Why a checkpoint was aborted, for metrics: `declined` (a worker could not write its part),
 * `timeout`, `output` or `metadata` (its files could not be written) count as failures;
 * `interrupted` (a worker failed, the job ended) does not.
 */
export type CheckpointAbortCause = 'declined' | 'timeout' | 'output' | 'metadata' | 'interrupted';

interface Running {
  id: number;
  trigger: CheckpointTrigger;
  startedAt: number;
  parts: Map<number, WorkerCheckpoint>;
  positions: SplitPosition[];
  resolve: (info: CheckpointInfo) => void;
  reject: (error: unknown) => void;
  timer: NodeJS.Timeout;
}

export interface CoordinatorConfig {
  directory: string;
  job: string;
  workers: number;
  maxParallelism: number;
  retained: number;
  timeoutMs: number;
  ingressNames: readonly string[];
  operators: Record<string, string>;
  broadcast: (message: ToWorker) => void;
  /** Before `_metadata`: writes the epoch's output into the checkpoint's folder; returns its bytes. */
  stageOutput: (id: number, folder: string) => Promise<number>;
  /** Checkpoint `id` is complete (its _metadata is written): sinks may publish its epoch. */
  onComplete: (id: number) => void;
  /** Checkpoints from this id on hold output a sink has not published yet: never pruned. */
  unpublishedFrom: () => number;
  /** Checkpoint failures in a row that are tolerated; the next one calls `onTooManyFailures`. */
  tolerableFailures: number;
  /**
   * More than `tolerableFailures` checkpoints in a row failed (declined, timed out, or their files
   * could not be written): the attempt should fail, so the job restores and starts afresh (a
   * LevelDB that hit ENOSPC keeps failing until it is reopened; held output keeps growing).
   */
  onTooManyFailures: (error: EddyError) => void;
  log: (line: string) => void;
}

/**
 * The checkpoint coordinator (main thread): assigns ids, tells every router, collects one ack per
 * worker, and writes `chk-<id>/_metadata` atomically when all have acknowledged; only then is the
 * checkpoint complete. One checkpoint at a time: a trigger while one runs waits for it. A checkpoint
 * that does not complete in time is aborted and never used for a restore.
 */
export class CheckpointCoordinator {
  private nextId: number;
  private running: Running | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;
  /** Checkpoints failed since the last complete one (or the last onTooManyFailures). */
  private failuresInARow = 0;
  completed: CheckpointInfo[] = [];
  /** Checkpoints of this run aborted, per cause (all of them: `history` keeps only the latest). */
  readonly abortsByCause: Partial<Record<CheckpointAbortCause, number>> = {};
  /** Wall-clock ms when the last checkpoint of this run completed. */
  lastCompletedAt: number | undefined;
  /** The latest CHECKPOINT_HISTORY checkpoints, completed or aborted, oldest first. */
  readonly history: CheckpointRecord[] = [];
  /** Checkpoints aborted during this run (all reasons). */
  aborted = 0;

  constructor(private readonly config: CoordinatorConfig) {
    this.nextId = highestCheckpointId(config.directory) + 1;
  }

  /** Takes a checkpoint after any running one; resolves when it is complete. */
  trigger(timeoutMs = this.config.timeoutMs, trigger: CheckpointTrigger = 'manual'): Promise<CheckpointInfo> {
    const next = this.queue.then(
      () => this.run(timeoutMs, trigger),
      () => this.run(timeoutMs, trigger),
    );
    this.queue = next.catch(() => {});
    return next;
  }

  private run(timeoutMs: number, trigger: CheckpointTrigger): Promise<CheckpointInfo> {
    if (this.closed) return Promise.reject(new EddyError('EDDY_JOB_STOPPED', 'the job is ending: no more checkpoints'));
    const id = this.nextId++;
    return new Promise<CheckpointInfo>((resolve, reject) => {
      const timer = setTimeout(() => this.abort(id, `not complete after ${timeoutMs} ms`, true, 'timeout'), timeoutMs);
      this.running = { id, trigger, startedAt: Date.now(), parts: new Map(), positions: [], resolve, reject, timer };
      this.config.broadcast({ type: 'checkpoint', id });
    });
  }

  onAck(id: number, part: WorkerCheckpoint, positions: SplitPosition[]): void {
    const running = this.running;
    if (running?.id !== id) return;
    running.parts.set(part.worker, part);
    running.positions.push(...positions);
    if (running.parts.size === this.config.workers) void this.complete(running);
  }

  private async complete(running: Running): Promise<void> {
    const { config } = this;
    const parts = [...running.parts.values()].sort((a, b) => a.worker - b.worker);
    const positions: CheckpointMetadata['positions'] = {};
    for (const { ingress, split, position } of running.positions) {
      const name = config.ingressNames[ingress]!;
      (positions[name] ??= {})[String(split)] = position;
    }
    let bytes = parts.reduce((sum, part) => sum + part.bytes, 0);
    let egress: CheckpointMetadata['egress'];
    try {
      const folder = checkpointPath(config.directory, running.id);
      bytes += await config.stageOutput(running.id, folder);
      // Read back as it is on disk: a restore republishes from it, so its size and CRC are checked first.
      const written = await readFile(join(folder, EGRESS_LOG_FILE));
      egress = { bytes: written.length, crc32: crc32(written) };
    } catch (error) {
      this.abort(running.id, `its output could not be written: ${describeError(error)}`, true, 'output');
      return;
    }
    if (this.running !== running) return;
    const durationMs = Date.now() - running.startedAt;
    const metadata: CheckpointMetadata = {
      version: CHECKPOINT_FORMAT_VERSION,
      id: running.id,
      job: config.job,
      workers: config.workers,
      maxParallelism: config.maxParallelism,
      completedAt: Date.now(),
      durationMs,
      bytes,
      operators: config.operators,
      positions,
      parts,
      egress,
    };
    try {
      await writeMetadata(config.directory, metadata);
    } catch (error) {
      this.abort(running.id, `its _metadata could not be written: ${describeError(error)}`, true, 'metadata');
      return;
    }
    if (this.running !== running) {
      // Aborted while its _metadata was being written (a worker failed): the job restores an
      // earlier checkpoint and goes on from there, so this one must never be restored either.
      rmSync(checkpointPath(config.directory, running.id), { recursive: true, force: true });
      return;
    }
    clearTimeout(running.timer);
    this.running = undefined;
    this.failuresInARow = 0;
    const info = { id: running.id, durationMs, bytes };
    this.completed.push(info);
    this.lastCompletedAt = Date.now();
    const fresh = parts.map((part) => part.state.at(-1)).filter((file) => file?.checkpoint === running.id);
    const full = fresh.filter((file) => !file!.delta).length;
    const state = full === fresh.length ? 'full' : full === 0 ? 'delta' : 'mixed';
    this.record({ id: running.id, trigger: running.trigger, startedAt: running.startedAt, durationMs, outcome: 'completed', bytes, state });
    config.onComplete(running.id);
    try {
      pruneCheckpoints(config.directory, config.retained, Math.min(running.id + 1, config.unpublishedFrom()));
    } catch (error) {
      config.log(`checkpoint ${running.id}: could not remove old checkpoints: ${describeError(error)}`);
    }
    running.resolve(info);
  }

  /**
   * Aborts the running checkpoint (timeout, a worker could not write its part, a worker failed, the
   * job ends). Its folder is removed: nothing in it is ever restored, and on a full disk its partial
   * files would keep the space a later checkpoint needs. `counts`: whether it counts against
   * `tolerableFailures`; not when the attempt or the job is ending anyway.
   */
  abort(id: number, reason: string, counts = true, cause: CheckpointAbortCause = 'declined'): void {
    const running = this.running;
    if (running?.id !== id) return;
    clearTimeout(running.timer);
    this.running = undefined;
    this.config.broadcast({ type: 'checkpoint-abort', id });
    this.config.log(`checkpoint ${id} aborted: ${reason}`);
    rm(checkpointPath(this.config.directory, id), { recursive: true, force: true }).catch((error: unknown) =>
      this.config.log(`checkpoint ${id}: could not remove its folder: ${describeError(error)}`),
    );
    running.reject(new EddyError('EDDY_CHECKPOINT_FAILED', `checkpoint ${id} aborted: ${reason}`, { retryable: true }));
    this.aborted++;
    const counted = counts && !this.closed;
    const key = counted ? cause : 'interrupted';
    this.abortsByCause[key] = (this.abortsByCause[key] ?? 0) + 1;
    this.record({ id, trigger: running.trigger, startedAt: running.startedAt, durationMs: Date.now() - running.startedAt, outcome: 'aborted', reason, counted });
    if (counted) this.countFailure(id, reason);
  }

  private record(entry: CheckpointRecord): void {
    this.history.push(entry);
    if (this.history.length > CHECKPOINT_HISTORY) this.history.shift();
  }

  private countFailure(id: number, reason: string): void {
    const { tolerableFailures } = this.config;
    if (++this.failuresInARow <= tolerableFailures) return;
    const failures = this.failuresInARow;
    // The attempt restarts from here: the next one gets the full tolerance again (as Flink's counter).
    this.failuresInARow = 0;
    this.config.onTooManyFailures(
      new EddyError(
        'EDDY_CHECKPOINT_FAILED',
        `${failures} checkpoints in a row failed, more than tolerableCheckpointFailures (${tolerableFailures}); the last, ${id}, was aborted: ${reason}. ` +
          'Fix the cause (e.g. free space on the state or checkpoint disk, or raise checkpointTimeoutMs), or raise tolerableCheckpointFailures (eddy run --tolerable-checkpoint-failures)',
        { retryable: true },
      ),
    );
  }

  /** The running checkpoint (if any) will not complete: its workers are gone (not counted as a checkpoint failure). */
  abortRunning(reason: string): void {
    if (this.running !== undefined) this.abort(this.running.id, reason, false);
  }

  /** No more checkpoints; a running one is aborted. */
  close(reason: string): void {
    this.closed = true;
    if (this.running !== undefined) this.abort(this.running.id, reason, false);
  }
}
