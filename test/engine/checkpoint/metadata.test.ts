/** Checkpoint retention with incremental state files: bases kept, but never listed as restorable. */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { CHECKPOINT_FORMAT_VERSION, checkpointPath, type CheckpointMetadata, listCheckpoints, pruneCheckpoints, writeMetadata } from '../../../engine/checkpoint/metadata.js';

/** A checkpoint whose two workers' state files are the chains given (checkpoint ids). */
async function fake(dir: string, id: number, chains: number[][]): Promise<void> {
  mkdirSync(checkpointPath(dir, id), { recursive: true });
  const metadata: CheckpointMetadata = {
    version: CHECKPOINT_FORMAT_VERSION, id, job: 'j', workers: chains.length, maxParallelism: 4, completedAt: 0, durationMs: 0, bytes: 0,
    operators: {}, positions: {},
    parts: chains.map((chain, worker) => ({
      worker, keyGroups: { start: worker * 2, end: worker * 2 + 1 }, logFile: 'log', logIndex: [], bytes: 0,
      state: chain.map((checkpoint, i) => ({ checkpoint, file: `worker-${worker}.${i === 0 ? 'state' : 'delta'}`, index: [], delta: i > 0 })),
    })),
  };
  await writeMetadata(dir, metadata);
}

void t.test('pruning keeps the bases a retained checkpoint builds on, as bases only', async (t) => {
  const dir = t.testdir();
  await fake(dir, 1, [[1], [1]]);
  await fake(dir, 2, [[1, 2], [2]]);
  await fake(dir, 3, [[1, 2, 3], [2, 3]]);
  await fake(dir, 4, [[4], [2, 3, 4]]);
  pruneCheckpoints(dir, 1, 5);
  t.same(listCheckpoints(dir), [4], 'only the retained checkpoint is listed (and restorable)');
  t.ok(existsSync(join(checkpointPath(dir, 2), '_metadata.base-only')) && existsSync(join(checkpointPath(dir, 3), '_metadata.base-only')), 'its bases stay, unlisted: their own chains need checkpoint 1');
  t.notOk(existsSync(checkpointPath(dir, 1)), 'what no retained chain needs is removed');
  await fake(dir, 5, [[5], [5]]);
  pruneCheckpoints(dir, 1, 6);
  t.same(listCheckpoints(dir), [5]);
  t.notOk(existsSync(checkpointPath(dir, 2)) || existsSync(checkpointPath(dir, 3)) || existsSync(checkpointPath(dir, 4)), 'bases go once nothing builds on them');
});
