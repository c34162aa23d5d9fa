/** Checkpoint retention, job folders, and corruption checks of checkpoint files. */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { crc32 } from 'node:zlib';
import t from 'tap';
import { EGRESS_LOG_FILE, writeEgressLog } from '../../../engine/checkpoint/egress-log.js';
import { writeKeyGroupFile } from '../../../engine/checkpoint/key-group-file.js';
import {
  CHECKPOINT_FORMAT_VERSION, checkpointLineage, checkpointPath, type CheckpointMetadata, inspectCheckpoint, jobCheckpointDir, jobCheckpointDirs, listCheckpoints,
  pruneCheckpoints, readMetadata, resolveCheckpoint, verifyCheckpoint, writeMetadata,
} from '../../../engine/checkpoint/metadata.js';

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

void t.test('each job gets its own folder in a shared checkpoint directory; a job folder given directly is used as it is', async (t) => {
  const dir = t.testdir();
  const a = jobCheckpointDir(dir, 'greeter');
  const b = jobCheckpointDir(dir, 'counter');
  t.not(a, b, 'two jobs, two folders');
  t.equal(jobCheckpointDir(dir, 'greeter'), a, 'the same job finds its folder again');
  t.equal(jobCheckpointDir(a, 'greeter'), a, "a job's folder given as the checkpoint directory is that job's folder");
  t.not(checkpointLineage(a), checkpointLineage(b), 'each folder has its own lineage');
  t.same(jobCheckpointDirs(dir).map(({ job }) => job).sort(), ['counter', 'greeter'], 'the folders list their jobs');
  // Names that could be mistaken for a checkpoint, a path or a hidden file stay inside their own folder.
  for (const name of ['chk-7', 'a/b', '..', '_lineage', 'x'.repeat(300)]) {
    const folder = jobCheckpointDir(dir, name);
    t.equal(dirname(folder), dir, `${name.slice(0, 20)}: a direct subfolder`);
    t.notMatch(basename(folder), /^(chk-\d+|\.\.?|_.*)$/, `${name.slice(0, 20)}: named ${basename(folder).slice(0, 30)}`);
  }
  t.not(jobCheckpointDir(dir, 'a/b'), jobCheckpointDir(dir, 'a%2Fb'), 'the encoding tells names apart');
});

void t.test('a checkpoint directory of an earlier version stays the folder of the job whose checkpoints it holds, lineage included', async (t) => {
  const dir = t.testdir();
  const lineage = checkpointLineage(dir);
  await fake(dir, 4, [[4], [4]]);
  t.equal(jobCheckpointDir(dir, 'j'), dir, 'the owner (job j) keeps it in place');
  t.equal(checkpointLineage(jobCheckpointDir(dir, 'j')), lineage, 'with the same lineage, so its sinks find their epoch markers');
  const other = jobCheckpointDir(dir, 'other');
  t.equal(dirname(other), dir, 'another job gets a subfolder');
  t.same(listCheckpoints(other), [], 'and sees none of j\'s checkpoints');
  // The owner is stamped: it stays so even when its checkpoints cannot be read any more.
  writeFileSync(join(checkpointPath(dir, 4), '_metadata'), 'garbage');
  t.equal(jobCheckpointDir(dir, 'j'), dir);
  t.same(jobCheckpointDirs(dir).map(({ job, folder }) => [job, folder]), [['j', dir], ['other', other]]);
});

/** A real checkpoint (key-group files of one worker, its egress log) written as the engine writes one. */
async function real(dir: string, id: number): Promise<void> {
  const folder = checkpointPath(dir, id);
  mkdirSync(folder, { recursive: true });
  const key = Buffer.of(0, 1, 7);
  const state = await writeKeyGroupFile(join(folder, 'worker-0.state'), [0, 1], [[[key, Buffer.from(`value ${id}`)]]]);
  const log = await writeKeyGroupFile(join(folder, 'worker-0.log'), [0, 1], []);
  await writeEgressLog(folder, [Buffer.from(`output ${id}`)]);
  const egress = readFileSync(join(folder, EGRESS_LOG_FILE));
  await writeMetadata(dir, {
    version: CHECKPOINT_FORMAT_VERSION, id, job: 'j', workers: 1, maxParallelism: 2, completedAt: 0, durationMs: 0, bytes: 0, operators: {}, positions: {},
    parts: [{
      worker: 0, keyGroups: { start: 0, end: 1 }, logFile: 'worker-0.log', logIndex: log.index, logBytes: log.bytes, logCrc32: log.crc32, bytes: 0,
      state: [{ checkpoint: id, file: 'worker-0.state', index: state.index, delta: false, bytes: state.bytes, crc32: state.crc32 }],
    }],
    egress: { bytes: egress.length, crc32: crc32(egress) },
  });
}

void t.test('a truncated, overwritten or missing file makes a checkpoint corrupt; latest falls back to the newest good one and says so', async (t) => {
  const dir = t.testdir();
  for (const id of [1, 2, 3, 4, 5, 6]) await real(dir, id);
  t.doesNotThrow(() => verifyCheckpoint(dir, readMetadata(dir, 1)), 'a checkpoint as written is good');
  const state = (id: number): string => join(checkpointPath(dir, id), 'worker-0.state');
  // 6: the state file cut short; 5: the same size, one byte changed; 4: the log missing;
  // 3: _metadata cut short; 2: _metadata still JSON but changed. Only 1 is good.
  writeFileSync(state(6), readFileSync(state(6)).subarray(0, -2));
  const bytes = readFileSync(state(5));
  bytes[bytes.length - 1]! ^= 1;
  writeFileSync(state(5), bytes);
  rmSync(join(checkpointPath(dir, 4), 'worker-0.log'));
  const metadata3 = join(checkpointPath(dir, 3), '_metadata');
  writeFileSync(metadata3, readFileSync(metadata3).subarray(0, 50));
  const metadata2 = join(checkpointPath(dir, 2), '_metadata');
  writeFileSync(metadata2, readFileSync(metadata2, 'utf8').replace('"maxParallelism": 2', '"maxParallelism": 3'));
  const problems = [6, 5, 4, 3, 2].map((id) => inspectCheckpoint(dir, id).error);
  t.same(problems.map((error) => error?.code), Array(5).fill('EDDY_CHECKPOINT_CORRUPT'), 'each is corrupt');
  t.match(problems[0]!.message, /worker-0\.state has \d+ bytes, not the \d+ written/);
  t.match(problems[1]!.message, /worker-0\.state does not match its checksum/);
  t.match(problems[2]!.message, /worker-0\.log is missing/);
  t.match(problems[3]!.message, /_metadata is not valid JSON/);
  t.match(problems[4]!.message, /_metadata does not match its checksum/);
  t.throws(() => resolveCheckpoint(dir, 6), { code: 'EDDY_CHECKPOINT_CORRUPT' }, 'a corrupt checkpoint asked for by id is refused');
  const lines: string[] = [];
  t.equal(resolveCheckpoint(dir, 'latest', { log: (line) => lines.push(line) }).id, 1, 'latest is the newest good one');
  t.equal(lines.filter((line) => /cannot be restored, skipping it/.test(line)).length, 5, 'each corrupt one skipped is logged');
  t.match(lines.at(-1), /restoring checkpoint 1, the newest good one, instead of 6, 5, 4, 3, 2/);
  t.equal(resolveCheckpoint(dir, 'latest', { atMost: 1 }).id, 1);
  writeFileSync(state(1), 'x');
  t.throws(() => resolveCheckpoint(dir, 'latest'), { code: 'EDDY_CHECKPOINT_CORRUPT', message: /no good checkpoint/ }, 'none good: refused');
});

void t.test('a checkpoint of an earlier version (no checksums) is still checked for size and missing files', async (t) => {
  const dir = t.testdir();
  await real(dir, 1);
  const metadata = readMetadata(dir, 1);
  const { checksum: _checksum, egress: _egress, ...old } = metadata;
  const part = old.parts[0]!;
  const oldPart = { ...part, logBytes: undefined, logCrc32: undefined, state: part.state.map(({ bytes: _b, crc32: _c, ...file }) => file) };
  writeFileSync(join(checkpointPath(dir, 1), '_metadata'), JSON.stringify({ ...old, parts: [oldPart] }));
  t.doesNotThrow(() => verifyCheckpoint(dir, readMetadata(dir, 1)), 'an earlier checkpoint as written is good');
  const state = join(checkpointPath(dir, 1), 'worker-0.state');
  writeFileSync(state, readFileSync(state).subarray(0, -1));
  t.throws(() => verifyCheckpoint(dir, readMetadata(dir, 1)), { code: 'EDDY_CHECKPOINT_CORRUPT', message: /not the \d+ written/ });
});

void t.test('pruning goes on past a retained checkpoint whose _metadata is corrupt', async (t) => {
  const dir = t.testdir();
  for (const id of [1, 2, 3]) await fake(dir, id, [[id]]);
  writeFileSync(join(checkpointPath(dir, 3), '_metadata'), '{');
  t.doesNotThrow(() => pruneCheckpoints(dir, 2, 4));
  t.same(listCheckpoints(dir), [2, 3], 'the oldest is removed as usual');
});
