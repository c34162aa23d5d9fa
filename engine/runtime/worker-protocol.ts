/**
 * Every message between the job manager (main thread) and a worker, in one place. Data between
 * workers does not pass through here: it flows over the worker mesh as encoded batches.
 */
import type { MessagePort } from 'node:worker_threads';
import type { WorkerCheckpoint } from '../checkpoint/metadata.js';
import type { ConnectorMetric } from '../job.js';
import type { ResolvedOptions } from '../options.js';
import type { FunctionTypeMetrics } from './worker-stats.js';

/** One split of an ingress, assigned to one worker's ingress-router. */
export interface SplitAssignment {
  ingress: number;
  split: number;
  description: unknown;
  position: unknown;
}

/** The single long-lived task each worker runs (piscina), with its end of every channel. */
export interface WorkerInit {
  worker: number;
  workers: number;
  jobModule: string;
  jobName: string;
  stateLocation: string | undefined;
  options: Omit<ResolvedOptions, 'log' | 'inputs' | 'stateDir' | 'checkpointDir' | 'restoreFrom'>;
  splits: SplitAssignment[];
  control: MessagePort;
  /** Where checkpoints go; undefined when the job takes none. */
  checkpointDir: string | undefined;
  /** The checkpoint to restore the owned key groups from. */
  restore: { checkpointDir: string; id: number; parts: WorkerCheckpoint[] } | undefined;
  /** peers[w] is the port to worker w; undefined at this worker's own index (self-channel is local). */
  peers: Array<MessagePort | undefined>;
}

/** Counters a worker reports; the job manager sums them and detects quiescence from them. */
export interface WorkerStatus {
  /** Envelopes this worker sent to each worker (itself included). */
  sent: number[];
  /** Envelopes this worker took in from each worker: processed, or waiting in a mailbox. */
  accepted: number[];
  /** Nothing waiting, nothing running, no source read under way, nothing unflushed. */
  idle: boolean;
  /** No handler is running and no source read is under way (waiting envelopes may remain, when paused). */
  noneRunning: boolean;
  sourcesDone: boolean;
  timersPending: number;
  egressBatchesSent: number;
}

/** Transaction figures of one worker (part of its metrics). */
/** Lock waits a worker reports, and the job shows: the longest this many. */
export const LOCK_WAITS_SHOWN = 10;

/** A 2PC transaction waiting for a lock another one holds (an edge of the wait-for graph). */
export interface LockWait {
  /** The waiting transaction and its coordinator instance (`type:id`). */
  waiting: { transaction: string; coordinator: string };
  /** The transaction it waits behind, and that one's coordinator instance. */
  holding: { transaction: string; coordinator: string };
  /** The participant instance (`type:id`) whose lock it waits for. */
  instance: string;
  waitedMs: number;
}

export interface TransactionMetrics {
  /** 2PC transactions coordinated here that committed, aborted (a participant failed), or ended as retryable (deadlock victims). */
  transactionsCommitted: number;
  transactionsAborted: number;
  transactionsRetryable: number;
  /** Deadlock cycles broken by a coordinator here (one victim each). */
  deadlocksFound: number;
  /** Transactions ended as retryable because their votes took longer than the coordinator's lockWaitTimeoutMs. */
  lockWaitTimeouts: number;
  /** Two-phase-commit transactions the worker's coordinators are running (a gauge, at most transactionLimit). */
  transactionsRunning: number;
  /** Transactions the worker starts at once now: maxTransactionsPerWorker, less under lock contention (a gauge). */
  transactionLimit: number;
  /** Sagas the worker's coordinators are running (a gauge, at most maxSagasPerWorker). */
  sagasRunning: number;
  /** Requests to coordinators waiting for a slot of their protocol (a gauge). */
  transactionsWaiting: number;
  /** Participant instances locked right now (a gauge). */
  locksHeld: number;
  /** Locks released here and the total time they were held, in ms. */
  locksReleased: number;
  lockHoldMsTotal: number;
  sagasSucceeded: number;
  sagasFailed: number;
  /** Compensation attempts that failed (each is retried), and compensations given up (dead-lettered). */
  compensationsFailed: number;
  compensationsAbandoned: number;
  /** Protocol envelopes for a transaction that had ended or moved on (late votes, stale probes), ignored. */
  staleProtocolMessages: number;
}

export interface WorkerMetrics extends TransactionMetrics {
  worker: number;
  recordsRead: number;
  envelopesRouted: number;
  invocations: number;
  invocationsFailed: number;
  handlerErrors: number;
  deadLetters: number;
  egressRecords: number;
  messagesSent: number;
  delayedScheduled: number;
  delayedFired: number;
  mailboxDepth: number;
  feedbackBacklog: number;
  /** Feedback envelopes held for a checkpoint because their barrier came before this worker's snapshot. */
  feedbackHeldForCheckpoint: number;
  /** What the connectors of this worker's splits report. */
  connectors: ConnectorMetric[];
  routerThrottled: boolean;
  stateCacheDirty: number;
  /** Time the ingress-router could not read because a destination had no credits, or feedback was past its high-water mark (ms, since the attempt started). */
  routerBlockedOnCreditsMs: number;
  routerBlockedOnFeedbackMs: number;
  /** Per function type (regular functions; coordinators and participants count in the transaction figures). */
  functions: Record<string, FunctionTypeMetrics>;
  /** The longest current lock waits of the transactions this worker coordinates (at most 10), longest first. */
  lockWaits: LockWait[];
  /** The worker thread's event-loop utilisation over the last second (0..1), its V8 heap in use, and its LevelDB folder's size. */
  eventLoopUtilization: number;
  /** Envelopes this worker sent to each worker, itself included (router and feedback channels): the console's edge rates. */
  sentTo: number[];
  heapUsedBytes: number;
  stateBytesOnDisk: number;
}

/** One function instance as a state lookup sees it, read on its worker between two of its invocations. */
export interface InstanceState {
  type: string;
  id: string;
  worker: number;
  keyGroup: number;
  /**
   * Its declared state, decoded by the state's codecs, as committed (never part of an invocation's
   * writes); absent names have no value. A list is its values in order, a map its `[key, value]`
   * entries in key order, read as of the same moment as the rest.
   */
  state: Record<string, unknown>;
  /** Envelopes waiting for it, and whether an invocation of it is running now (its writes are not in `state` yet). */
  mailboxDepth: number;
  running: boolean;
  /** How a transaction holds it, if one does: `locked` (a participant's exclusive lock), `shared` (read-only participants), `busy` (a coordinator runs one). */
  heldByTransaction: string | undefined;
  /**
   * The transactions that hold it (absent when none): their ids, since when (ms since the epoch),
   * and for a participant's exclusive lock the values the transaction staged, decoded, as they will
   * be after its COMMIT (value and list state; a staged map shows the names of its changed entries'
   * map only, as `{ changed: true }`).
   */
  transaction?: { ids: string[]; since: number; staged?: Record<string, unknown> };
  /** Delayed messages it sent that are still pending, in fire order. */
  pendingDelayed: Array<{ token: string; fireAt: number; to: { type: string; id: string }; message?: unknown }>;
}

/** Instances of a function type whose ids start with a prefix (`eddy state <type> --prefix`). */
export interface InstanceList {
  type: string;
  prefix: string;
  /** In id order, at most `limit`, each as a single lookup returns it. */
  instances: InstanceState[];
  /** More instances matched than `limit`. */
  truncated: boolean;
}

export type ToWorker =
  | { type: 'start' }
  /** Read one instance's state and activity between invocations (the admin endpoint's state lookup). */
  | { type: 'state-query'; id: number; address: { type: string; id: string } }
  /** List the instances of `type` with ids starting with `prefix` in this worker's key groups (at most `limit`). */
  | { type: 'state-list'; id: number; list: { type: string; prefix: string; limit: number } }
  | { type: 'status'; wave: number }
  | { type: 'metrics'; id: number }
  | { type: 'stop-sources' }
  | { type: 'pause' }
  | { type: 'checkpoint'; id: number }
  | { type: 'checkpoint-abort'; id: number }
  | { type: 'close' }
  /** The attempt failed elsewhere: stop at once (a restore under way too), close state without flushing it, end the task. */
  | { type: 'abandon' }
  /**
   * Failure drill (killWorker): stop at once as `abandon` does, then end the thread. Its LevelDB is
   * closed first: a thread ended with LevelDB work in flight takes the whole process down.
   */
  | { type: 'crash' };

export type FromWorker =
  | { type: 'ready'; threadId: number }
  | { type: 'egress'; buffer: ArrayBuffer }
  | { type: 'status'; wave: number; status: WorkerStatus }
  | { type: 'metrics'; id: number; metrics: WorkerMetrics }
  | { type: 'state-answer'; id: number; answer: InstanceState | InstanceList | { error: string } }
  | { type: 'log'; line: string }
  | { type: 'closed' }
  /** The worker's routers and timers started after `start` (parked and restored in-flight work is queued first). */
  | { type: 'started' }
  | { type: 'checkpoint-ack'; id: number; part: WorkerCheckpoint; positions: SplitPosition[] }
  /** The worker could not write its part of checkpoint `id`: it is aborted. */
  | { type: 'checkpoint-declined'; id: number; reason: string };

export interface SplitPosition {
  ingress: number;
  split: number;
  position: unknown;
}

export interface WorkerResult {
  worker: number;
  metrics: WorkerMetrics;
  /** Where each split assigned to this worker stopped reading. */
  positions: SplitPosition[];
}

/** Stable ids of the operators of a worker's graph; checkpoint metadata records them. */
export const OperatorIds = { ingressRouter: 'ingress-router', functionDispatcher: 'function-dispatcher', feedback: 'feedback' } as const;
