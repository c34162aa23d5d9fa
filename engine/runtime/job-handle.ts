/**
 * The public types of a running job: its handle and what the handle reports (metrics, status,
 * summary). Implemented by JobRun in job-manager.ts.
 */
import type { CheckpointAbortCause, CheckpointInfo, CheckpointRecord } from '../checkpoint/coordinator.js';
import type { ConnectorMetric } from '../job.js';
import type { InstanceList, InstanceState, LockWait, WorkerMetrics } from './worker-protocol.js';

/** A restore or restart of the job, or its failure, as the console's timeline marks it. */
export interface RecoveryEvent {
  /** Wall-clock ms. */
  at: number;
  /** `restore`: the run started from a checkpoint; `restart`: a failed attempt restores one; `failed`: the job failed. */
  kind: 'restore' | 'restart' | 'failed';
  /** The checkpoint restored (restore, restart). */
  checkpoint?: number;
  /** The cause (restart, failed): its message, and its code when it is an EddyError. */
  code?: string;
  reason?: string;
  /** Restart: which one, and the pause before it. */
  restart?: number;
  backoffMs?: number;
  /** Restart: the failed attempt was still restoring. */
  duringRestore?: boolean;
}

export interface LatencySummary {
  /** Records measured (egress records with a known ingress time). */
  count: number;
  p50Ms: number;
  p95Ms: number;
  p99Ms: number;
  maxMs: number;
}

export interface JobMetrics {
  job: string;
  workers: number;
  uptimeMs: number;
  /** Per worker. */
  perWorker: WorkerMetrics[];
  /** Sums over workers (gauges summed too). */
  totals: Omit<WorkerMetrics, 'worker' | 'routerThrottled' | 'connectors' | 'functions' | 'eventLoopUtilization' | 'sentTo' | 'lockWaits'>;
  /** The longest current lock waits of 2PC transactions over all workers (at most 10), longest first: the wait-for graph's edges. */
  lockWaits: LockWait[];
  /** Records received per egress name. */
  egress: Record<string, number>;
  /** From the moment a record entered an ingress to the moment its egress records reached the sink. */
  latency: LatencySummary;
  /** What the connectors report (split readers on every worker, sinks). */
  connectors: ConnectorMetric[];
}

export interface JobSummary extends JobMetrics {
  /** `end-of-input`: every source finished and all work was done; `stop`: `stop()` was called. */
  endedBy: 'end-of-input' | 'stop';
  stateDir: string | undefined;
  /** Times the job restored a checkpoint after a worker failed. */
  restarts: number;
  /** Checkpoints completed during this run. */
  checkpoints: CheckpointInfo[];
}

export interface JobStatus {
  job: string;
  /**
   * `starting` until the first workers process input; `recovering` from a failure until the restored
   * workers have loaded their state and process input again.
   */
  state: 'starting' | 'running' | 'recovering' | 'stopping' | 'ended' | 'failed';
  workers: number;
  uptimeMs: number;
  restarts: number;
  /** The latest STATUS_HISTORY checkpoints completed during this run, oldest first. */
  checkpoints: CheckpointInfo[];
  /** Checkpoints completed and aborted during this run. */
  checkpointsCompleted: number;
  checkpointsAborted: number;
  /** The latest STATUS_HISTORY checkpoints, completed or aborted (with the reason), oldest first. */
  checkpointHistory: CheckpointRecord[];
  /** The latest STATUS_HISTORY restores, restarts (with their cause) and the failure of the job, oldest first. */
  recoveries: RecoveryEvent[];
  /** Checkpoints of this run aborted, per cause (`interrupted`: a worker failed or the job ended; the others count as failures). */
  checkpointAborts: Partial<Record<CheckpointAbortCause, number>>;
  /** Wall-clock ms when the last checkpoint of this run completed. */
  lastCheckpointAt?: number;
  /** Completed checkpoints whose output epochs a sink has not published yet (Kafka transactions not committed yet). */
  unpublishedEpochs: number;
  /** Wall-clock ms of the last restore or restart. */
  lastRecoveryAt?: number;
  checkpointDir: string | undefined;
}

export interface JobHandle {
  readonly job: string;
  /** Settles when the job ends: resolves with its summary, rejects if it failed. */
  readonly done: Promise<JobSummary>;
  /** Stops reading sources, lets in-flight work finish (parking what is left after stopTimeoutMs), flushes state. */
  stop(): Promise<JobSummary>;
  metrics(): Promise<JobMetrics>;
  /** Where the job stands, at once (no round trip to the workers). */
  status(): JobStatus;
  /** The admin endpoint's base URL (`http://127.0.0.1:PORT`), once it listens; undefined without options.adminPort. */
  adminUrl(): Promise<string | undefined>;
  /**
   * Takes a checkpoint now (after a running one); resolves with its id, duration and size. Needs
   * checkpointDir. `timeoutMs` overrides options.checkpointTimeoutMs for this one.
   */
  checkpoint(options?: { timeoutMs?: number }): Promise<CheckpointInfo>;
  /** Ids of the complete checkpoints in checkpointDir, oldest first. */
  checkpoints(): number[];
  /**
   * Failure drill: terminates worker thread `worker` as a crash would. With a checkpoint to restore
   * the job recovers (it counts in `restarts`); without one it fails.
   */
  killWorker(worker: number): Promise<void>;
  /** Starts a fresh latency window (e.g. after a benchmark's warm-up); `metrics().latency` covers it. */
  resetLatency(): void;
  /** The records a memory egress has received so far. */
  output<R = unknown>(egress: string): readonly R[];
  /**
   * One function instance's declared state (decoded), mailbox depth and transaction hold, read on
   * its worker between two of its invocations. Rejects with EDDY_UNKNOWN_FUNCTION_TYPE for a type
   * the job lacks, EDDY_JOB_STOPPED when no workers run (ended, or restoring).
   */
  state(type: string, id: string): Promise<InstanceState>;
  /**
   * The instances of function type `type` whose ids start with `prefix` (default: all), in id order,
   * at most `limit` (default 100, at most 10000; `truncated` says whether there were more), each as
   * `state` returns one. Each worker lists its own key groups; an instance with no state value is not
   * listed. Rejects as `state` does.
   */
  states(type: string, options?: { prefix?: string; limit?: number }): Promise<InstanceList>;
}
