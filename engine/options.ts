import { availableParallelism } from 'node:os';
import { invalidOption } from './errors.js';
import { DEFAULT_MAX_PARALLELISM, MAX_MAX_PARALLELISM } from './key-groups.js';
import { type ResolvedRestartStrategy, type RestartStrategyOptions, restartStrategyDefaults } from './runtime/restart-strategy.js';

export type { RestartStrategyOptions } from './runtime/restart-strategy.js';

export interface SubmitOptions {
  /** Worker threads; each owns a contiguous range of key groups. Default: the number of CPUs. */
  workers?: number;
  /**
   * Folder for the workers' LevelDB state (`worker-<n>` inside). Submitting the same job with the same
   * folder continues from its state. Default: a fresh temporary folder, removed when the job ends.
   */
  stateDir?: string;
  /** `memory` keeps state on the heap only (tests, benchmarks). Default: `leveldb`. */
  stateBackend?: 'leveldb' | 'memory';
  /** Number of key groups; fixed for the life of the state. Default: 128. */
  maxParallelism?: number;
  /** Records for memory ingresses by ingress name (an array, or `{ records, ratePerSec }`). */
  inputs?: Record<string, unknown>;
  /** Envelopes a router may have in flight to one dispatcher before it stops reading. Default: 4096. */
  channelCapacity?: number;
  /** Most envelopes in one transferred batch. Default: 256. */
  batchSize?: number;
  /**
   * Envelopes waiting in a dispatcher (feedback and mailboxes) above which its router stops reading
   * sources; it resumes below half of it. Feedback itself never blocks. Default: 50000.
   */
  feedbackHighWaterMark?: number;
  /** State entries cached per worker. Default: 200000. */
  stateCacheEntries?: number;
  /**
   * V8's young generation of each worker thread, in MB, up to 3072 (V8 gives a third of it, rounded up
   * to a power of two, to each of two semi-spaces and a large-object space, so 193-384 all give 128 MB
   * semi-spaces and up to 384 MB); they start at full size instead of growing from 1 MB as objects
   * survive. Short-lived objects (envelopes, invocations, a hot
   * key's replaced values) then die young instead of costing mark-compacts. It costs memory: under
   * ycsb-t load a worker took about 95 MB more with 128 MB semi-spaces than with 64. Default: 256
   * (128 MB semi-spaces).
   */
  workerYoungGenerationMb?: number;
  /**
   * How long a state write may wait in the cache before it is written to LevelDB (sooner once a tenth
   * of `stateCacheEntries` wait); the writes that are due go out in small batches every twentieth of
   * it. Checkpoints and stops write everything first, so with checkpoints
   * this trades no guarantee (without them a crash loses up to this much of the latest writes); a key
   * written often in that time is written once. Default: 1000 ms.
   */
  stateFlushIntervalMs?: number;
  /**
   * Two-phase-commit transactions the coordinators of one worker run at once (fewer while most of
   * them wait for locks); further requests to such coordinators wait in arrival order (and
   * back-pressure the routers). Default: 256.
   */
  maxTransactionsPerWorker?: number;
  /**
   * Sagas the coordinators of one worker run at once; further requests wait as above. Sagas take no
   * locks, and each waits for hops between workers, so many at once pay. Default: 1024.
   */
  maxSagasPerWorker?: number;
  /** How long `stop()` lets in-flight work finish before it parks the rest in state. Default: 10000 ms. */
  stopTimeoutMs?: number;
  /** Called with engine log lines (worker failures, dead letters). Default: console.error. */
  log?: (line: string) => void;
  /**
   * Folder for checkpoints: each job keeps its own in `<checkpointDir>/<job name>/chk-<id>/`, so
   * several jobs may share one. With it, sink output is exactly-once (published when the
   * checkpoint after it completes) and a failed worker makes the job restore the last checkpoint.
   * Default: none (no checkpoints, output published at once).
   */
  checkpointDir?: string;
  /** Take a checkpoint every this many ms (needs checkpointDir). Default: none (only on demand). */
  checkpointIntervalMs?: number;
  /** Complete checkpoints kept; older ones are removed. Default: 3. */
  checkpointsRetained?: number;
  /** A checkpoint not complete after this long is aborted. Default: 60000 ms. */
  checkpointTimeoutMs?: number;
  /**
   * Checkpoints that may fail in a row (declined by a worker that cannot write its part, timed out,
   * or whose files or `_metadata` could not be written) before the attempt fails with
   * `EDDY_CHECKPOINT_FAILED` and the job restores its last completed checkpoint, counted against
   * `restartStrategy` (Flink's `tolerable-failed-checkpoints`). A completed checkpoint starts the
   * count again; checkpoints aborted because a worker failed or the job ends are not counted. Without
   * it, a job whose state disk filled up would decline every checkpoint while its unpublished output
   * grew in memory. 0: the first failed checkpoint fails the attempt. Default: 3 (a slow or briefly
   * failing checkpoint is retried by the next one, a lasting cause restarts the job within four
   * checkpoint intervals).
   */
  tolerableCheckpointFailures?: number;
  /**
   * Start from a checkpoint of checkpointDir: `'latest'` (the newest good one: corrupt ones are
   * skipped, and logged) or an id. The worker count may differ.
   */
  restoreFrom?: 'latest' | number;
  /**
   * When a failed attempt (a worker died, a sink or source gave up after connectorRetryDeadlineMs)
   * restores the last completed checkpoint, and when the job fails instead: at most
   * `maxFailures` failures within any `intervalMs` (Flink's failure-rate strategy), with a pause
   * before each restore that doubles from `initialBackoffMs` up to `maxBackoffMs` and starts again
   * after `backoffResetMs` without a failure. Default: `{ maxFailures: 10, intervalMs: 60000,
   * initialBackoffMs: 100, maxBackoffMs: 5000, backoffResetMs: 10000 }` (each field optional).
   */
  restartStrategy?: RestartStrategyOptions;
  /**
   * Deprecated: use `restartStrategy.maxFailures`. It sets `restartStrategy.maxFailures` (failures
   * within `restartStrategy.intervalMs`, no longer over the job's whole life). Default: none.
   */
  maxRestarts?: number;
  /**
   * How long a source or sink keeps retrying a transient connector error (a Kafka broker
   * unreachable or stalled, a coordinator moving, a leader election, a request timeout), with
   * backoff, before it gives up: the attempt then fails and the job restores its last completed
   * checkpoint, counted against `restartStrategy`. Default: 60000 ms.
   */
  connectorRetryDeadlineMs?: number;
  /**
   * Serve the admin endpoint (web console, status, Prometheus metrics, checkpoint, stop) at this
   * port; 0 picks a free one, `'auto'` takes 7077 or a free one when 7077 is taken
   * (`handle.adminUrl()` tells which). Default: no admin endpoint.
   */
  adminPort?: number | 'auto';
  /**
   * Interface the admin endpoint listens on. It can stop the job, so anything but loopback
   * requires `adminToken`. Default: 127.0.0.1.
   */
  adminHost?: string;
  /**
   * A secret every request to the admin endpoint must carry (`Authorization: Bearer <token>`, or
   * `?token=` for the web console); at least 16 characters. Required when `adminHost` is not
   * loopback. Default: $EDDY_ADMIN_TOKEN, else none.
   */
  adminToken?: string;
  /** Failure drills, for testing how a job behaves under adverse timing. Default: none. */
  faultInjection?: FaultInjection;
}

export interface FaultInjection {
  /**
   * What the ingress-router of worker `from` sends to the dispatcher of worker `to` (records and
   * checkpoint barriers) arrives `ms` later, in order: e.g. to make one router's barrier reach a
   * dispatcher long after the others', while function-to-function messages flow as usual.
   */
  delayRouterChannels?: ReadonlyArray<ChannelDelay>;
  /**
   * The same for what functions on worker `from` send to functions on worker `to` (messages and the
   * transaction protocol): e.g. to make PREPAREs that cross threads arrive after local ones.
   */
  delayFeedbackChannels?: ReadonlyArray<ChannelDelay>;
  /**
   * Every deadlock-detection probe a coordinator sends also goes out in stale forms (naming an
   * earlier transaction of its initiator, or a finished one of its target), which the protocol must
   * all ignore. Default: false.
   */
  staleProbes?: boolean;
}

export interface ChannelDelay {
  from: number;
  to: number;
  ms: number;
}

export interface ResolvedOptions {
  workers: number;
  stateDir: string | undefined;
  stateBackend: 'leveldb' | 'memory';
  maxParallelism: number;
  inputs: Record<string, unknown>;
  channelCapacity: number;
  batchSize: number;
  feedbackHighWaterMark: number;
  stateCacheEntries: number;
  workerYoungGenerationMb: number;
  stateFlushIntervalMs: number;
  maxTransactionsPerWorker: number;
  maxSagasPerWorker: number;
  stopTimeoutMs: number;
  log: (line: string) => void;
  checkpointDir: string | undefined;
  checkpointIntervalMs: number | undefined;
  checkpointsRetained: number;
  checkpointTimeoutMs: number;
  tolerableCheckpointFailures: number;
  restoreFrom: 'latest' | number | undefined;
  restartStrategy: ResolvedRestartStrategy;
  connectorRetryDeadlineMs: number;
  adminPort: number | 'auto' | undefined;
  adminHost: string;
  adminToken: string | undefined;
  faultInjection: FaultInjection;
}

export const defaultOptions = {
  maxParallelism: DEFAULT_MAX_PARALLELISM,
  stateBackend: 'leveldb',
  channelCapacity: 4096,
  batchSize: 256,
  feedbackHighWaterMark: 50_000,
  stateCacheEntries: 200_000,
  workerYoungGenerationMb: 256,
  stateFlushIntervalMs: 1000,
  maxTransactionsPerWorker: 256,
  maxSagasPerWorker: 1024,
  stopTimeoutMs: 10_000,
  checkpointsRetained: 3,
  checkpointTimeoutMs: 60_000,
  tolerableCheckpointFailures: 3,
  connectorRetryDeadlineMs: 60_000,
} as const;

const KNOWN = new Set([
  'workers', 'stateDir', 'stateBackend', 'maxParallelism', 'inputs', 'channelCapacity', 'batchSize',
  'feedbackHighWaterMark', 'stateCacheEntries', 'workerYoungGenerationMb', 'stateFlushIntervalMs', 'maxTransactionsPerWorker', 'maxSagasPerWorker', 'stopTimeoutMs', 'log', 'checkpointDir', 'checkpointIntervalMs',
  'checkpointsRetained', 'checkpointTimeoutMs', 'tolerableCheckpointFailures', 'restoreFrom', 'restartStrategy', 'maxRestarts', 'connectorRetryDeadlineMs', 'adminPort', 'adminHost', 'adminToken',
  'faultInjection',
]);

function integer(name: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw invalidOption(name, `is ${JSON.stringify(value)}`, `must be an integer from ${min} to ${max}`);
  }
  return value;
}

/** Validates once, with messages that name the option and the fix. */
export function resolveOptions(options: SubmitOptions = {}): ResolvedOptions {
  for (const key of Object.keys(options)) {
    if (!KNOWN.has(key)) throw invalidOption(key, 'is not an option', `use one of ${[...KNOWN].join(', ')}`);
  }
  const maxParallelism = integer('maxParallelism', options.maxParallelism ?? defaultOptions.maxParallelism, 1, MAX_MAX_PARALLELISM);
  const workers = integer('workers', options.workers ?? Math.min(availableParallelism(), maxParallelism), 1, Math.min(256, maxParallelism));
  const stateBackend = options.stateBackend ?? defaultOptions.stateBackend;
  if (stateBackend !== 'leveldb' && stateBackend !== 'memory') {
    throw invalidOption('stateBackend', `is ${JSON.stringify(stateBackend)}`, 'must be "leveldb" or "memory"');
  }
  if (options.stateDir !== undefined && (typeof options.stateDir !== 'string' || options.stateDir.length === 0)) {
    throw invalidOption('stateDir', `is ${JSON.stringify(options.stateDir)}`, 'must be a folder path');
  }
  if (options.inputs !== undefined && (typeof options.inputs !== 'object' || options.inputs === null)) {
    throw invalidOption('inputs', 'is not an object', 'pass { <ingress name>: [records] }');
  }
  if (options.log !== undefined && typeof options.log !== 'function') {
    throw invalidOption('log', 'is not a function', 'pass (line: string) => void');
  }
  if (options.checkpointDir !== undefined && (typeof options.checkpointDir !== 'string' || options.checkpointDir.length === 0)) {
    throw invalidOption('checkpointDir', `is ${JSON.stringify(options.checkpointDir)}`, 'must be a folder path');
  }
  const needsDir = (name: string): void => {
    if (options.checkpointDir === undefined) throw invalidOption(name, 'is set without checkpointDir', 'set checkpointDir to the folder for checkpoints');
  };
  if (options.checkpointIntervalMs !== undefined) needsDir('checkpointIntervalMs');
  if (options.tolerableCheckpointFailures !== undefined) needsDir('tolerableCheckpointFailures');
  if (options.restoreFrom !== undefined) {
    needsDir('restoreFrom');
    if (options.restoreFrom !== 'latest' && !(Number.isInteger(options.restoreFrom) && options.restoreFrom > 0)) {
      throw invalidOption('restoreFrom', `is ${JSON.stringify(options.restoreFrom)}`, "must be 'latest' or a checkpoint id (a positive integer)");
    }
  }
  return {
    workers,
    stateDir: options.stateDir,
    stateBackend,
    maxParallelism,
    inputs: options.inputs ?? {},
    channelCapacity: integer('channelCapacity', options.channelCapacity ?? defaultOptions.channelCapacity, 16, 1 << 24),
    batchSize: integer('batchSize', options.batchSize ?? defaultOptions.batchSize, 1, 1 << 16),
    feedbackHighWaterMark: integer('feedbackHighWaterMark', options.feedbackHighWaterMark ?? defaultOptions.feedbackHighWaterMark, 1, 1 << 30),
    stateCacheEntries: integer('stateCacheEntries', options.stateCacheEntries ?? defaultOptions.stateCacheEntries, 1, 1 << 30),
    // 3072 gives 1 GB semi-spaces, committed when a worker starts.
    workerYoungGenerationMb: integer('workerYoungGenerationMb', options.workerYoungGenerationMb ?? defaultOptions.workerYoungGenerationMb, 3, 3072),
    stateFlushIntervalMs: integer('stateFlushIntervalMs', options.stateFlushIntervalMs ?? defaultOptions.stateFlushIntervalMs, 0, 3600 * 1000),
    maxTransactionsPerWorker: integer('maxTransactionsPerWorker', options.maxTransactionsPerWorker ?? defaultOptions.maxTransactionsPerWorker, 1, 1 << 20),
    maxSagasPerWorker: integer('maxSagasPerWorker', options.maxSagasPerWorker ?? defaultOptions.maxSagasPerWorker, 1, 1 << 20),
    stopTimeoutMs: integer('stopTimeoutMs', options.stopTimeoutMs ?? defaultOptions.stopTimeoutMs, 0, 24 * 3600 * 1000),
    log: options.log ?? ((line: string) => console.error(line)),
    checkpointDir: options.checkpointDir,
    checkpointIntervalMs:
      options.checkpointIntervalMs === undefined ? undefined : integer('checkpointIntervalMs', options.checkpointIntervalMs, 10, 24 * 3600 * 1000),
    checkpointsRetained: integer('checkpointsRetained', options.checkpointsRetained ?? defaultOptions.checkpointsRetained, 1, 1000),
    checkpointTimeoutMs: integer('checkpointTimeoutMs', options.checkpointTimeoutMs ?? defaultOptions.checkpointTimeoutMs, 100, 24 * 3600 * 1000),
    tolerableCheckpointFailures: integer('tolerableCheckpointFailures', options.tolerableCheckpointFailures ?? defaultOptions.tolerableCheckpointFailures, 0, 1_000_000),
    restoreFrom: options.restoreFrom,
    restartStrategy: resolveRestartStrategy(options),
    connectorRetryDeadlineMs: integer('connectorRetryDeadlineMs', options.connectorRetryDeadlineMs ?? defaultOptions.connectorRetryDeadlineMs, 100, 24 * 3600 * 1000),
    adminPort: options.adminPort === undefined || options.adminPort === 'auto' ? options.adminPort : integer('adminPort', options.adminPort, 0, 65535),
    ...resolveAdminAccess(options),
    faultInjection: resolveFaults(options.faultInjection, workers),
  };
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '::1']);

function resolveAdminAccess(options: SubmitOptions): { adminHost: string; adminToken: string | undefined } {
  const adminHost = options.adminHost ?? '127.0.0.1';
  if (typeof adminHost !== 'string' || adminHost === '') throw invalidOption('adminHost', `is ${JSON.stringify(adminHost)}`, 'give an interface address such as 127.0.0.1 or 0.0.0.0');
  const adminToken = options.adminToken ?? (process.env.EDDY_ADMIN_TOKEN || undefined);
  if (adminToken !== undefined && (typeof adminToken !== 'string' || adminToken.length < 16)) {
    throw invalidOption('adminToken', 'is shorter than 16 characters', 'use a long random secret, e.g. `openssl rand -hex 16`');
  }
  if (!LOOPBACK.has(adminHost) && adminToken === undefined) {
    throw invalidOption('adminHost', `is ${adminHost}, which is not loopback, and there is no admin token`, 'set adminToken (eddy run --admin-token, or $EDDY_ADMIN_TOKEN): anyone who reaches the endpoint can stop the job');
  }
  return { adminHost, adminToken };
}

function resolveRestartStrategy(options: SubmitOptions): ResolvedRestartStrategy {
  const given = options.restartStrategy;
  if (given !== undefined && (typeof given !== 'object' || given === null)) {
    throw invalidOption('restartStrategy', 'is not an object', 'pass { maxFailures, intervalMs } (each optional)');
  }
  if (given?.maxFailures !== undefined && options.maxRestarts !== undefined) {
    throw invalidOption('maxRestarts', 'is set with restartStrategy.maxFailures', 'drop maxRestarts (deprecated): restartStrategy.maxFailures replaces it');
  }
  for (const key of Object.keys(given ?? {})) {
    if (!(key in restartStrategyDefaults)) throw invalidOption(`restartStrategy.${key}`, 'is not an option', `use one of ${Object.keys(restartStrategyDefaults).join(', ')}`);
  }
  const field = (key: keyof ResolvedRestartStrategy, min: number, max: number): number =>
    integer(`restartStrategy.${key}`, given?.[key] ?? restartStrategyDefaults[key], min, max);
  const maxFailures = options.maxRestarts === undefined ? field('maxFailures', 0, 1_000_000) : integer('maxRestarts', options.maxRestarts, 0, 1_000_000);
  const initialBackoffMs = field('initialBackoffMs', 0, 3_600_000);
  const maxBackoffMs = field('maxBackoffMs', 0, 3_600_000);
  if (maxBackoffMs < initialBackoffMs) {
    throw invalidOption('restartStrategy.maxBackoffMs', `is ${maxBackoffMs}, below initialBackoffMs (${initialBackoffMs})`, 'make it at least initialBackoffMs');
  }
  return {
    maxFailures,
    intervalMs: field('intervalMs', 1, 30 * 24 * 3_600_000),
    initialBackoffMs,
    maxBackoffMs,
    backoffResetMs: field('backoffResetMs', 0, 24 * 3_600_000),
  };
}

function resolveFaults(faults: FaultInjection | undefined, workers: number): FaultInjection {
  if (faults === undefined) return {};
  if (typeof faults !== 'object' || faults === null) throw invalidOption('faultInjection', 'is not an object', 'pass { delayRouterChannels: [{ from, to, ms }] }');
  const resolved: FaultInjection = {};
  if (faults.delayRouterChannels !== undefined) resolved.delayRouterChannels = resolveDelays('delayRouterChannels', faults.delayRouterChannels, workers);
  if (faults.delayFeedbackChannels !== undefined) resolved.delayFeedbackChannels = resolveDelays('delayFeedbackChannels', faults.delayFeedbackChannels, workers);
  if (faults.staleProbes !== undefined) {
    if (typeof faults.staleProbes !== 'boolean') throw invalidOption('faultInjection.staleProbes', `is ${JSON.stringify(faults.staleProbes)}`, 'must be true or false');
    resolved.staleProbes = faults.staleProbes;
  }
  return resolved;
}

function resolveDelays(name: string, delays: unknown, workers: number): ChannelDelay[] {
  if (!Array.isArray(delays)) throw invalidOption(`faultInjection.${name}`, 'is not an array', 'pass [{ from, to, ms }]');
  return delays.map((delay: ChannelDelay | undefined, i) => {
    const from = integer(`faultInjection.${name}[${i}].from`, delay?.from, 0, workers - 1);
    const to = integer(`faultInjection.${name}[${i}].to`, delay?.to, 0, workers - 1);
    if (from === to) throw invalidOption(`faultInjection.${name}[${i}]`, `delays worker ${from}'s channel to itself`, 'pick two different workers');
    return { from, to, ms: integer(`faultInjection.${name}[${i}].ms`, delay?.ms, 0, 600_000) };
  });
}
