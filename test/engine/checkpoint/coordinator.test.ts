/**
 * The checkpoint coordinator's count of checkpoint failures in a row (tolerableCheckpointFailures),
 * driven directly: one simulated worker acknowledges or declines each checkpoint it is told about.
 */
import { mkdirSync } from 'node:fs';
import t from 'tap';
import { CheckpointCoordinator } from '../../../engine/checkpoint/coordinator.js';
import { writeEgressLog } from '../../../engine/checkpoint/egress-log.js';
import { checkpointPath, listCheckpoints } from '../../../engine/checkpoint/metadata.js';
import type { EddyError } from '../../../engine/errors.js';
import { OperatorIds } from '../../../engine/runtime/worker-protocol.js';
import { tempDir } from '../../fixtures/harness.js';

function coordinator(t: Parameters<typeof tempDir>[0], tolerableFailures: number, timeoutMs = 60_000) {
  const directory = tempDir(t, 'coordinator');
  const tooMany: EddyError[] = [];
  const told: number[] = [];
  const logs: string[] = [];
  const c = new CheckpointCoordinator({
    directory,
    job: 'unit',
    workers: 1,
    maxParallelism: 8,
    retained: 10,
    timeoutMs,
    ingressNames: [],
    operators: { ...OperatorIds },
    broadcast: (message) => {
      if (message.type === 'checkpoint') told.push(message.id);
    },
    stageOutput: (id, folder) => {
      mkdirSync(checkpointPath(directory, id), { recursive: true });
      return writeEgressLog(folder, []);
    },
    onComplete: () => {},
    unpublishedFrom: () => Infinity,
    tolerableFailures,
    onTooManyFailures: (error) => tooMany.push(error),
    log: (line) => logs.push(line),
  });
  /** The next checkpoint: its one worker acknowledges it (it completes) or declines it. */
  const next = async (outcome: 'ack' | 'decline'): Promise<'complete' | 'failed'> => {
    const done = c.trigger();
    await new Promise((resolve) => setImmediate(resolve));
    const id = told.at(-1)!;
    if (outcome === 'ack') c.onAck(id, { worker: 0, keyGroups: { start: 0, end: 7 }, state: [], logFile: 'worker-0.log', logIndex: [], bytes: 0 }, []);
    else c.abort(id, 'worker 0 could not write its part: ENOSPC');
    return done.then(() => 'complete' as const, () => 'failed' as const);
  };
  return { c, directory, tooMany, told, logs, next };
}

void t.test('more than tolerableFailures declines in a row fail the attempt once, with EDDY_CHECKPOINT_FAILED naming the count, the cause and the fix', async (t) => {
  const { tooMany, next } = coordinator(t, 2);
  t.equal(await next('decline'), 'failed');
  t.equal(await next('decline'), 'failed');
  t.equal(tooMany.length, 0, 'two failures in a row are tolerated');
  t.equal(await next('decline'), 'failed');
  t.equal(tooMany.length, 1, 'the third fails the attempt');
  t.equal(tooMany[0]!.code, 'EDDY_CHECKPOINT_FAILED');
  t.equal(tooMany[0]!.retryable, true, 'retryable: the restart strategy decides');
  t.match(tooMany[0]!.message, /3 checkpoints in a row failed, more than tolerableCheckpointFailures \(2\); the last, 3, was aborted: worker 0 could not write its part: ENOSPC/);
  t.match(tooMany[0]!.message, /--tolerable-checkpoint-failures/, 'and names the flag to raise');
  t.equal(await next('decline'), 'failed');
  t.equal(tooMany.length, 1, 'the restarted attempt starts counting again from zero');
});

void t.test('a completed checkpoint starts the count again', async (t) => {
  const { tooMany, next, directory } = coordinator(t, 2);
  t.equal(await next('decline'), 'failed');
  t.equal(await next('decline'), 'failed');
  t.equal(await next('ack'), 'complete');
  t.equal(await next('decline'), 'failed');
  t.equal(await next('decline'), 'failed');
  t.equal(tooMany.length, 0, 'never more than two in a row');
  t.same(listCheckpoints(directory), [3], 'only the acknowledged one is complete');
  t.equal(await next('decline'), 'failed');
  t.equal(tooMany.length, 1, 'the third in a row after it fails the attempt');
});

void t.test('with 0 tolerated, the first failed checkpoint fails the attempt', async (t) => {
  const { tooMany, next } = coordinator(t, 0);
  t.equal(await next('decline'), 'failed');
  t.equal(tooMany.length, 1);
});

void t.test('a checkpoint that times out counts as a failure', async (t) => {
  const { c, tooMany, logs } = coordinator(t, 1, 100);
  await t.rejects(c.trigger(), { code: 'EDDY_CHECKPOINT_FAILED', message: /not complete after 100 ms/ });
  t.equal(tooMany.length, 0);
  await t.rejects(c.trigger(), { code: 'EDDY_CHECKPOINT_FAILED', message: /not complete after 100 ms/ });
  t.equal(tooMany.length, 1, 'the second timeout in a row is one more than tolerated');
  t.equal(logs.filter((line) => /aborted: not complete after 100 ms/.test(line)).length, 2, 'each abort is logged with its reason');
});

void t.test('checkpoints aborted because a worker failed or the job ends are not counted', async (t) => {
  const { c, tooMany, next } = coordinator(t, 1);
  t.equal(await next('decline'), 'failed');
  for (let i = 0; i < 3; i++) {
    const running = c.trigger();
    await new Promise((resolve) => setImmediate(resolve));
    c.abortRunning('a worker failed');
    await t.rejects(running, { code: 'EDDY_CHECKPOINT_FAILED', message: /a worker failed/ });
  }
  t.equal(tooMany.length, 0, 'one counted failure, three uncounted aborts: within the tolerance');
  const last = c.trigger();
  await new Promise((resolve) => setImmediate(resolve));
  c.close('the job is ending');
  await t.rejects(last, { code: 'EDDY_CHECKPOINT_FAILED', message: /the job is ending/ });
  t.equal(tooMany.length, 0, 'nor is the one the end of the job aborts');
});
