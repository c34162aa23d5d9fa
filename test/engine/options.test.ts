import t, { type Test } from 'tap';
import { availableParallelism } from 'node:os';
import { EddyError } from '../../engine/errors.js';
import { defaultOptions, resolveOptions, type SubmitOptions } from '../../engine/options.js';

/** The EddyError resolveOptions throws for `options`; fails the test if it accepts them. */
function invalidOptionError(t: Test, options: Record<string, unknown>): EddyError | undefined {
  try {
    resolveOptions(options); // values the types would refuse, as JavaScript callers can pass them
  } catch (error) {
    t.type(error, EddyError);
    return error as EddyError;
  }
  t.fail(`${JSON.stringify(options)} was accepted`);
  return undefined;
}

void t.test('each invalid option is refused with EDDY_INVALID_OPTION, naming the option and the valid values', async (t) => {
  const cases: Array<[Record<string, unknown>, string, string]> = [
    [{ workers: 0 }, 'options.workers', 'must be an integer from 1 to 128'],
    [{ workers: 1.5 }, 'options.workers', 'must be an integer from 1 to 128'],
    [{ workers: '2' }, 'options.workers', 'must be an integer from 1 to 128'],
    [{ workers: 5, maxParallelism: 4 }, 'options.workers', 'must be an integer from 1 to 4'],
    [{ workers: 257, maxParallelism: 1024 }, 'options.workers', 'must be an integer from 1 to 256'],
    [{ maxParallelism: 0 }, 'options.maxParallelism', 'must be an integer from 1 to 32768'],
    [{ maxParallelism: 32769 }, 'options.maxParallelism', 'must be an integer from 1 to 32768'],
    [{ stateBackend: 'x' }, 'options.stateBackend', 'must be "leveldb" or "memory"'],
    [{ batchSize: 0 }, 'options.batchSize', 'must be an integer from 1 to 65536'],
    [{ channelCapacity: 1 }, 'options.channelCapacity', 'must be an integer from 16 to 16777216'],
    [{ feedbackHighWaterMark: 0 }, 'options.feedbackHighWaterMark', 'must be an integer from 1 to'],
    [{ stateCacheEntries: -1 }, 'options.stateCacheEntries', 'must be an integer from 1 to'],
    [{ workerYoungGenerationMb: 2 }, 'options.workerYoungGenerationMb', 'must be an integer from 3 to 3072'],
    [{ workerYoungGenerationMb: 3073 }, 'options.workerYoungGenerationMb', 'must be an integer from 3 to 3072'],
    [{ workerYoungGenerationMb: '256' }, 'options.workerYoungGenerationMb', 'must be an integer from 3 to 3072'],
    [{ stateFlushIntervalMs: 1.5 }, 'options.stateFlushIntervalMs', 'must be an integer from 0 to'],
    [{ stateFlushIntervalMs: -1 }, 'options.stateFlushIntervalMs', 'must be an integer from 0 to'],
    [{ maxTransactionsPerWorker: 0 }, 'options.maxTransactionsPerWorker', 'must be an integer from 1 to'],
    [{ maxSagasPerWorker: 0 }, 'options.maxSagasPerWorker', 'must be an integer from 1 to'],
    [{ stopTimeoutMs: -1 }, 'options.stopTimeoutMs', 'must be an integer from 0 to 86400000'],
    [{ stateDir: '' }, 'options.stateDir', 'must be a folder path'],
    [{ stateDir: 42 }, 'options.stateDir', 'must be a folder path'],
    [{ inputs: null }, 'options.inputs', 'pass { <ingress name>: [records] }'],
    [{ log: 'console' }, 'options.log', 'pass (line: string) => void'],
    [{ wokers: 2 }, 'options.wokers', 'use one of workers, stateDir'],
    [{ restartStrategy: 3 }, 'options.restartStrategy', 'pass { maxFailures, intervalMs }'],
    [{ restartStrategy: { maxFailure: 3 } }, 'options.restartStrategy.maxFailure', 'use one of maxFailures, intervalMs'],
    [{ restartStrategy: { maxFailures: -1 } }, 'options.restartStrategy.maxFailures', 'must be an integer from 0 to'],
    [{ restartStrategy: { intervalMs: 0 } }, 'options.restartStrategy.intervalMs', 'must be an integer from 1 to'],
    [{ restartStrategy: { initialBackoffMs: 500, maxBackoffMs: 100 } }, 'options.restartStrategy.maxBackoffMs', 'make it at least initialBackoffMs'],
    [{ maxRestarts: 2, restartStrategy: { maxFailures: 3 } }, 'options.maxRestarts', 'restartStrategy.maxFailures replaces it'],
    [{ maxRestarts: 1.5 }, 'options.maxRestarts', 'must be an integer from 0 to'],
    [{ checkpointDir: '/tmp/c', tolerableCheckpointFailures: -1 }, 'options.tolerableCheckpointFailures', 'must be an integer from 0 to'],
    [{ checkpointDir: '/tmp/c', tolerableCheckpointFailures: 2.5 }, 'options.tolerableCheckpointFailures', 'must be an integer from 0 to'],
    [{ tolerableCheckpointFailures: 3 }, 'options.tolerableCheckpointFailures', 'set checkpointDir'],
    [{ connectorRetryDeadlineMs: 99 }, 'options.connectorRetryDeadlineMs', 'must be an integer from 100 to'],
    [{ connectorRetryDeadlineMs: '60s' }, 'options.connectorRetryDeadlineMs', 'must be an integer from 100 to'],
  ];
  for (const [options, field, fix] of cases) {
    const error = invalidOptionError(t, options);
    const label = JSON.stringify(options);
    t.equal(error?.code, 'EDDY_INVALID_OPTION', `${label}: code`);
    t.match(error?.message ?? '', field + ' ', `${label}: names ${field}`);
    t.match(error?.message ?? '', fix, `${label}: says ${fix}`);
    t.equal(error?.retryable, false, `${label}: not retryable`);
  }
});

void t.test('the message says what the given value was', async (t) => {
  t.match(invalidOptionError(t, { workers: 1.5, maxParallelism: 128 })?.message ?? '', 'options.workers is 1.5: must be an integer from 1 to 128');
  t.match(invalidOptionError(t, { stateBackend: 'x' })?.message ?? '', 'options.stateBackend is "x"');
  t.match(invalidOptionError(t, { wokers: 2 })?.message ?? '', 'options.wokers is not an option');
  t.match(invalidOptionError(t, { adminPort: 70000 })?.message ?? '', 'options.adminPort is 70000: must be an integer from 0 to 65535');
  t.match(invalidOptionError(t, { adminHost: '0.0.0.0' })?.message ?? '', 'options.adminHost is 0.0.0.0, which is not loopback, and there is no admin token: set adminToken');
  t.match(invalidOptionError(t, { adminToken: 'short' })?.message ?? '', 'options.adminToken is shorter than 16 characters');
  t.equal(resolveOptions({ adminPort: 'auto' }).adminPort, 'auto', "adminPort 'auto' is kept");
  t.match(invalidOptionError(t, { workers: 2, faultInjection: { delayRouterChannels: [{ from: 0, to: 2, ms: 5 }] } })?.message ?? '', 'options.faultInjection.delayRouterChannels[0].to is 2: must be an integer from 0 to 1');
  t.match(invalidOptionError(t, { workers: 2, faultInjection: { delayRouterChannels: [{ from: 1, to: 1, ms: 5 }] } })?.message ?? '', "delays worker 1's channel to itself");
  t.match(invalidOptionError(t, { workers: 2, faultInjection: { delayFeedbackChannels: [{ from: 0, to: 1, ms: -1 }] } })?.message ?? '', 'options.faultInjection.delayFeedbackChannels[0].ms is -1');
  t.match(invalidOptionError(t, { workers: 2, faultInjection: { delayFeedbackChannels: 'soon' as never } })?.message ?? '', 'options.faultInjection.delayFeedbackChannels is not an array');
  t.match(invalidOptionError(t, { faultInjection: { staleProbes: 'yes' as never } })?.message ?? '', 'options.faultInjection.staleProbes is "yes": must be true or false');
});

void t.test('absent options take their defaults', async (t) => {
  const resolved = resolveOptions();
  t.same(
    { ...resolved, log: undefined },
    {
      workers: Math.min(availableParallelism(), defaultOptions.maxParallelism),
      stateDir: undefined,
      stateBackend: 'leveldb',
      maxParallelism: 128,
      inputs: {},
      channelCapacity: 4096,
      batchSize: 256,
      feedbackHighWaterMark: 50_000,
      stateCacheEntries: 200_000,
      workerYoungGenerationMb: 256,
      stateFlushIntervalMs: 1000,
      maxTransactionsPerWorker: 256,
      maxSagasPerWorker: 1024,
      stopTimeoutMs: 10_000,
      log: undefined,
      checkpointDir: undefined,
      checkpointIntervalMs: undefined,
      checkpointsRetained: 3,
      checkpointTimeoutMs: 60_000,
      tolerableCheckpointFailures: 3,
      restoreFrom: undefined,
      restartStrategy: { maxFailures: 10, intervalMs: 60_000, initialBackoffMs: 100, maxBackoffMs: 5_000, backoffResetMs: 10_000 },
      connectorRetryDeadlineMs: 60_000,
      adminPort: undefined,
      adminHost: '127.0.0.1',
      adminToken: undefined,
      faultInjection: {},
    },
  );
  t.type(resolved.log, 'function');
  t.same(resolveOptions({}), { ...resolved, log: resolved.log }, 'an empty object is the same as none');
  t.equal(resolveOptions({ maxParallelism: 1 }).workers, 1, 'the default worker count never exceeds maxParallelism');
});

void t.test('valid options are kept as given, including the boundaries', async (t) => {
  const log = (_line: string): void => {};
  const inputs = { orders: [1, 2, 3] };
  const given = {
    workers: 4,
    maxParallelism: 4,
    stateBackend: 'memory',
    stateDir: '/tmp/eddy-state',
    inputs,
    channelCapacity: 16,
    batchSize: 1,
    feedbackHighWaterMark: 1,
    stateCacheEntries: 1,
    workerYoungGenerationMb: 3,
    stateFlushIntervalMs: 0,
    maxTransactionsPerWorker: 1,
    maxSagasPerWorker: 1,
    stopTimeoutMs: 0,
    log,
    checkpointDir: '/tmp/eddy-checkpoints',
    checkpointIntervalMs: 10,
    checkpointsRetained: 1,
    checkpointTimeoutMs: 100,
    tolerableCheckpointFailures: 0,
    restoreFrom: 'latest',
    restartStrategy: { maxFailures: 0, intervalMs: 1, initialBackoffMs: 0, maxBackoffMs: 0, backoffResetMs: 0 },
    connectorRetryDeadlineMs: 100,
    adminPort: 0,
    adminHost: '0.0.0.0',
    adminToken: 'sixteen-chars-or-more',
    faultInjection: { delayRouterChannels: [{ from: 3, to: 0, ms: 600_000 }], delayFeedbackChannels: [{ from: 0, to: 3, ms: 0 }], staleProbes: true },
  } satisfies SubmitOptions;
  const resolved = resolveOptions(given);
  t.same(resolved, given);
  t.equal(resolved.log, log);
  t.equal(resolveOptions({ workers: 256, maxParallelism: 32768 }).workers, 256, 'the largest worker count');
  t.equal(resolveOptions({ batchSize: 65536 }).batchSize, 65536, 'the largest batch');
});

void t.test('maxRestarts (deprecated) sets restartStrategy.maxFailures; the other fields keep their defaults', async (t) => {
  t.same(resolveOptions({ maxRestarts: 4 }).restartStrategy, { maxFailures: 4, intervalMs: 60_000, initialBackoffMs: 100, maxBackoffMs: 5_000, backoffResetMs: 10_000 });
  t.same(resolveOptions({ restartStrategy: { intervalMs: 1000 } }).restartStrategy.intervalMs, 1000, 'one field alone');
});
