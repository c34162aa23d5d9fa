/**
 * Checkpoint folders under faults (DESIGN.md section 12): jobs sharing a checkpoint directory, corrupt
 * or partial checkpoints (fall back to the newest good one), and a full disk (a small tmpfs) under
 * the checkpoint directory or the state directory.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import counterJob, { type CounterUpdate } from '../fixtures/counter-job.js';
import toggleJob from '../fixtures/toggle-job.js';
import { checkpointPath, jobCheckpointDir, listCheckpoints, readMetadata } from '../../engine/checkpoint/metadata.js';
import { groupBy, LogLines, run, tempDir, waitFor, within } from '../fixtures/harness.js';

const root = join(import.meta.dirname, '..', '..');

/** Keys whose counts are not 1, 2, ... (from `from` per key) one by one up to `to`: lost or doubled counts. */
function brokenKeys(updates: readonly CounterUpdate[], to: number, from: (key: string) => number = () => 1): string[] {
  const broken: string[] = [];
  for (const [key, list] of groupBy(updates, (u) => u.key)) {
    const start = from(key);
    if (list.at(-1)?.count !== to || list.some((u, i) => u.count !== start + i)) broken.push(key);
  }
  return broken;
}

/** The last state file worker 0 wrote for checkpoint `id` (a full file or a delta). */
function stateFileOf(folder: string, id: number): string {
  const file = readMetadata(folder, id).parts[0]!.state.at(-1)!;
  return join(checkpointPath(folder, file.checkpoint), file.file);
}

function truncate(path: string, bytes: number): void {
  writeFileSync(path, readFileSync(path).subarray(0, -bytes));
}

async function untilInvocations(handle: { metrics(): Promise<{ totals: { invocations: number } }> }, at: number): Promise<void> {
  for (let i = 0; i < 1000; i++) {
    if ((await handle.metrics()).totals.invocations >= at) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

void t.test('two jobs given the same checkpoint directory keep their own checkpoints: retention of one never prunes the other', async (t) => {
  const checkpointDir = tempDir(t, 'chk-shared');
  const events = Array.from({ length: 200 }, (_, i) => ({ key: `k${i % 4}` }));
  const counter = run(t, counterJob, { workers: 2, checkpointDir, checkpointsRetained: 1, inputs: { events } });
  await counter.done;
  const toggles = Array.from({ length: 3000 }, (_, n) => ({ key: `k${n % 30}`, n }));
  const toggle = run(t, toggleJob, { workers: 2, checkpointDir, checkpointIntervalMs: 20, checkpointsRetained: 1, inputs: { events: { records: toggles, ratePerSec: 10_000 } } });
  const summary = await toggle.done;
  t.ok(summary.checkpoints.length >= 2, `the other job completed ${summary.checkpoints.length} checkpoints with retention 1`);
  t.equal(counter.checkpoints().length, 1, "the first job's checkpoint is still there");
  t.not(counter.status().checkpointDir, toggle.status().checkpointDir, 'each job has its own folder');
  const again = run(t, counterJob, { workers: 3, checkpointDir, restoreFrom: 'latest', inputs: { events } });
  await within(again.done, 30_000, "the first job's restore");
  t.equal(again.output('counts').length, 0, 'it restores its own final checkpoint: its input was all read, nothing is counted again');
});

void t.test('a checkpoint whose state file is cut short: restore latest falls back to the one before, says so, and counts on exactly from it', async (t) => {
  const checkpointDir = tempDir(t, 'chk-truncated');
  const events = Array.from({ length: 6000 }, (_, i) => ({ key: `k${i % 50}` }));
  const first = run(t, counterJob, { workers: 2, checkpointDir, inputs: { events: { records: events, ratePerSec: 6000 } } });
  await untilInvocations(first, 1000);
  const good = await first.checkpoint();
  const stopped = await first.stop();
  const bad = stopped.checkpoints.at(-1)!.id;
  t.ok(bad > good.id, `checkpoint ${good.id} mid-run, ${bad} at the stop`);
  const folder = jobCheckpointDir(checkpointDir, counterJob.name);
  const counted = new Map<string, number>();
  for (const update of first.output<CounterUpdate>('counts')) counted.set(update.key, update.count);
  truncate(stateFileOf(folder, bad), 5);
  t.throws(() => run(t, counterJob, { workers: 2, checkpointDir, restoreFrom: bad }), { code: 'EDDY_CHECKPOINT_CORRUPT', message: /worker-0\.(state|delta) has \d+ bytes/ }, 'asked for by id, it is refused as corrupt');

  const logs = new LogLines();
  const second = run(t, counterJob, { workers: 3, checkpointDir, restoreFrom: 'latest', log: logs.log, inputs: { events: { records: events } } });
  await within(second.done, 60_000, 'the restore');
  t.equal(logs.matching(new RegExp(`checkpoint ${bad} cannot be restored, skipping it: .*EDDY|checkpoint ${bad} cannot be restored`)).length, 1, 'the corrupt one is skipped, with the reason');
  t.equal(logs.matching(new RegExp(`restoring checkpoint ${good.id}, the newest good one, instead of ${bad}`)).length, 1, 'the fallback is logged');
  t.equal(logs.matching(new RegExp(`restoring checkpoint ${good.id} of .* on 3 workers \\(it was taken on 2\\)`)).length, 1, 'the restore names the checkpoint and the change of worker count');
  const updates = second.output<CounterUpdate>('counts');
  // From the good checkpoint on, each key counts on from its value there: what the stop published after it comes again.
  const firstAfterGood = new Map<string, number>();
  for (const update of updates) if (!firstAfterGood.has(update.key)) firstAfterGood.set(update.key, update.count);
  t.same(brokenKeys(updates, 120, (key) => firstAfterGood.get(key)!), [], 'every key counts on one by one to 120');
  t.ok([...firstAfterGood].every(([key, count]) => count <= (counted.get(key) ?? 0) + 1), 'and from no later than where the first run stopped');
  t.ok(updates.length > events.length - stopped.totals.recordsRead, `the span after checkpoint ${good.id} is counted again (${updates.length} updates)`);
});

void t.test('the restore after a worker failure falls back past a corrupt checkpoint to the newest good one', async (t) => {
  const checkpointDir = tempDir(t, 'chk-fail-fallback');
  const events = Array.from({ length: 6000 }, (_, i) => ({ key: `k${i % 50}` }));
  const logs = new LogLines();
  const handle = run(t, counterJob, { workers: 2, checkpointDir, log: logs.log, inputs: { events: { records: events, ratePerSec: 3000 } } });
  await untilInvocations(handle, 1000);
  const good = await handle.checkpoint();
  await untilInvocations(handle, 2000);
  const bad = await handle.checkpoint();
  const folder = jobCheckpointDir(checkpointDir, counterJob.name);
  rmSync(join(checkpointPath(folder, bad.id), 'worker-1.log'));
  await handle.killWorker(0);
  const summary = await within(handle.done, 60_000, 'the job after the kill');
  t.equal(summary.restarts, 1, 'it recovered once');
  t.equal(logs.matching(new RegExp(`checkpoint ${bad.id} cannot be restored, skipping it: .*worker-1\\.log is missing`)).length, 1, 'the missing file is named');
  t.equal(logs.matching(new RegExp(`restoring checkpoint ${good.id}, the newest good one, instead of ${bad.id}`)).length, 1, 'the fallback is logged');
  const updates = handle.output<CounterUpdate>('counts');
  // Published: everything up to `bad` once, then from `good` on again (at-least-once for that span only).
  const last = new Map<string, number>();
  let backwards = 0;
  for (const update of updates) {
    const before = last.get(update.key) ?? 0;
    if (update.count !== before + 1) backwards++;
    last.set(update.key, update.count);
  }
  t.ok([...last.values()].every((count) => count === 120), 'every key ends at 120: nothing lost');
  t.ok(backwards <= 50, `each key steps back at most once (to its count at checkpoint ${good.id}): ${backwards}`);
});

void t.test('eddy checkpoints lists every checkpoint of every job, corrupt ones as CORRUPT with the reason, and does not stop part-way', async (t) => {
  const checkpointDir = tempDir(t, 'chk-cli');
  const events = Array.from({ length: 400 }, (_, i) => ({ key: `k${i % 4}` }));
  const handle = run(t, counterJob, { workers: 2, checkpointDir, checkpointsRetained: 10, inputs: { events: { records: events, ratePerSec: 400 } } });
  const ids = [(await handle.checkpoint()).id, (await handle.checkpoint()).id, (await handle.checkpoint()).id];
  const summary = await handle.stop();
  const final = summary.checkpoints.at(-1)!.id;
  await run(t, toggleJob, { workers: 1, checkpointDir, inputs: { events: [{ key: 'a', n: 1 }] } }).done;
  const folder = jobCheckpointDir(checkpointDir, counterJob.name);
  truncate(join(checkpointPath(folder, ids[0]!), '_metadata'), 20);
  writeFileSync(join(checkpointPath(folder, ids[1]!), '_metadata'), 'garbage');
  // (Its state file would do too, but the final checkpoint's chain builds on it: then that one is corrupt as well.)
  truncate(join(checkpointPath(folder, ids[2]!), 'worker-0.log'), 1);
  const result = spawnSync(process.execPath, [join(root, 'bin', 'eddy.js'), 'checkpoints', '--checkpoint-dir', checkpointDir], { encoding: 'utf8' });
  t.equal(result.status, 0, `exit 0:\n${result.stderr}`);
  const rows = result.stdout.split('\n').filter((line) => /^\S+\t\d+\t/.test(line)).map((line) => line.split('\t'));
  const status = (job: string, id: number): string | undefined => rows.find((row) => row[0] === job && row[1] === String(id))?.[2];
  for (const id of ids) t.equal(status('e2e-counter', id), 'CORRUPT', `checkpoint ${id} is shown as CORRUPT`);
  t.equal(status('e2e-counter', final), 'ok', `checkpoint ${final} is ok`);
  t.ok(rows.some((row) => row[0] === toggleJob.name && row[2] === 'ok'), "the other job's checkpoint is listed too");
  t.match(result.stdout, /EDDY_CHECKPOINT_CORRUPT: .*_metadata is not valid JSON/);
  t.match(result.stdout, /EDDY_CHECKPOINT_CORRUPT: .*worker-0\.log has \d+ bytes/);
});

/** A tmpfs of `size` mounted on a fresh folder, unmounted when the test ends; undefined where mounting is not allowed. */
function smallDisk(t: { teardown(fn: () => void): void }, size: string): string | undefined {
  const dir = mkdtempSync(join(tmpdir(), 'eddy-tmpfs-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir], { stdio: 'pipe' });
  } catch {
    rmSync(dir, { recursive: true, force: true });
    return undefined;
  }
  t.teardown(() => {
    execFileSync('umount', [dir]);
    rmSync(dir, { recursive: true, force: true });
  });
  return dir;
}

/** Whether this process may mount a tmpfs (root, or CAP_SYS_ADMIN): the full-disk tests need one. */
const NO_MOUNT = ((): string | false => {
  const probe: Array<() => void> = [];
  const disk = smallDisk({ teardown: (fn) => probe.push(fn) }, '64k');
  for (const fn of probe) fn();
  return disk === undefined ? 'mounting a tmpfs is not allowed here (needs root): the full-disk tests cannot run' : false;
})();

/** Fills the file system of `dir` with `dir/<name>` until a write of `blockBytes` fails with ENOSPC. */
function fill(dir: string, name = 'filler', blockBytes = 16 * 1024): string {
  const path = join(dir, name);
  const block = Buffer.alloc(blockBytes, 1);
  for (;;) {
    try {
      writeFileSync(path, block, { flag: 'a' });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOSPC') return path;
      throw error;
    }
  }
}

/** Opens every file under `dir` for reading: until closed, deleting them frees no space. */
function holdOpen(dir: string): number[] {
  const fds: number[] = [];
  for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    try {
      fds.push(openSync(join(entry.parentPath, entry.name), 'r'));
    } catch {
      // Deleted by a compaction since it was listed: its space is free already.
    }
  }
  return fds;
}

void t.test('a checkpoint on a full disk is aborted with the reason, publishes nothing and keeps the older ones; the job goes on', { skip: NO_MOUNT }, async (t) => {
  const disk = smallDisk(t, '2m')!;
  const checkpointDir = join(disk, 'checkpoints');
  const events = Array.from({ length: 6000 }, (_, i) => ({ key: `k${i % 50}` }));
  const logs = new LogLines();
  const handle = run(t, counterJob, { workers: 2, checkpointDir, log: logs.log, inputs: { events: { records: events, ratePerSec: 1000 } } });
  await untilInvocations(handle, 1000);
  const good = await handle.checkpoint();
  const folder = jobCheckpointDir(checkpointDir, counterJob.name);
  const published = handle.output('counts').length;
  const filler = fill(disk);
  const started = Date.now();
  await t.rejects(handle.checkpoint(), { code: 'EDDY_CHECKPOINT_FAILED', message: /aborted: .*ENOSPC/ }, 'the checkpoint fails, naming the full disk');
  t.ok(Date.now() - started < 10_000, `at once (${Date.now() - started} ms), not after checkpointTimeoutMs`);
  await waitFor(() => readdirSync(folder).filter((name) => name.startsWith('chk-')).length === 1, 'the aborted folder to be removed', 5_000);
  t.same(listCheckpoints(folder), [good.id], 'the older checkpoint is kept and nothing else is listed');
  t.equal(handle.output('counts').length, published, 'nothing was published for it');
  t.equal(handle.status().state, 'running', 'the job goes on');
  rmSync(filler);
  const summary = await within(handle.done, 60_000, 'the job after the disk has room again');
  t.ok(summary.checkpoints.at(-1)!.id > good.id, 'later checkpoints complete');
  const updates = handle.output<CounterUpdate>('counts');
  t.equal(updates.length, events.length, 'every record counted once');
  t.same(brokenKeys(updates, 120), [], 'every key counts 1, 2, ... 120');
  t.ok(existsSync(join(checkpointPath(folder, summary.checkpoints.at(-1)!.id), '_metadata')));
});

void t.test('a full state directory fails the attempt cleanly: the job fails with a code, and a later restore counts exactly', { skip: NO_MOUNT }, async (t) => {
  const disk = smallDisk(t, '2m')!;
  const stateDir = join(disk, 'state');
  const checkpointDir = tempDir(t, 'chk-state-full');
  const events = Array.from({ length: 6000 }, (_, i) => ({ key: `k${i % 50}` }));
  const logs = new LogLines();
  const handle = run(t, counterJob, { workers: 2, stateDir, checkpointDir, log: logs.log, inputs: { events: { records: events, ratePerSec: 1000 } } });
  await untilInvocations(handle, 1000);
  await handle.checkpoint();
  const filler = fill(disk);
  const outcome = await within(
    handle.done.then(() => undefined, (error: unknown) => error as { code?: string }),
    120_000,
    'the job on a full state directory',
  );
  t.ok(outcome !== undefined, `the job fails (${JSON.stringify(outcome?.code)})`);
  t.match(outcome?.code, /^EDDY_/, 'with an engine error code');
  t.equal(handle.status().state, 'failed');
  t.comment(logs.lines.filter((line) => /ENOSPC|failed|aborted|restor/.test(line)).slice(0, 8).join('\n'));
  const before = handle.output<CounterUpdate>('counts');
  rmSync(filler);
  const again = run(t, counterJob, { workers: 2, stateDir, checkpointDir, restoreFrom: 'latest', inputs: { events: { records: events } } });
  await within(again.done, 60_000, 'the restore once the disk has room');
  const after = again.output<CounterUpdate>('counts');
  t.equal(before.length + after.length, events.length, 'every record counted once over both runs');
  t.same(brokenKeys([...before, ...after], 120), [], 'every key counts 1, 2, ... 120 over both runs');
});

void t.test('a full state directory under input that goes on: after tolerableCheckpointFailures failed checkpoints in a row the attempt restores, and with room again every record counts once', { skip: NO_MOUNT }, async (t) => {
  const disk = smallDisk(t, '2m')!;
  const stateDir = join(disk, 'state');
  const checkpointDir = tempDir(t, 'chk-tolerable');
  // 30 s of input: it is still being read when the checkpoints start to fail, so only the tolerance ends them.
  const events = Array.from({ length: 30_000 }, (_, i) => ({ key: `k${i % 50}` }));
  const logs = new LogLines();
  const handle = run(t, counterJob, {
    workers: 2, stateDir, checkpointDir, log: logs.log, checkpointIntervalMs: 200, checkpointTimeoutMs: 5_000, tolerableCheckpointFailures: 2,
    inputs: { events: { records: events, ratePerSec: 1000 } },
  });
  await untilInvocations(handle, 1000);
  await handle.checkpoint();
  const filler = fill(disk);
  await waitFor(() => handle.status().restarts >= 1, 'a restart after the checkpoints failed', 60_000);
  const status = handle.status();
  const restart = status.recoveries.find((event) => event.kind === 'restart');
  t.equal(restart?.code, 'EDDY_CHECKPOINT_FAILED', 'the attempt failed because of the checkpoints');
  t.match(restart?.reason, /^3 checkpoints in a row failed, more than tolerableCheckpointFailures \(2\); the last, \d+, was aborted: worker \d could not write its part: .*No space left on device/, 'naming the count, the tolerance and the cause');
  const before = status.checkpointHistory.filter((c) => c.id <= Number(/the last, (\d+)/.exec(restart?.reason ?? '')?.[1]));
  t.same(before.slice(-3).map((c) => [c.outcome, c.counted]), [['aborted', true], ['aborted', true], ['aborted', true]], 'the three checkpoints before it were aborted and counted');
  t.equal(before.at(-4)?.outcome, 'completed', 'after one that completed');
  t.ok(['recovering', 'running'].includes(status.state), `while the job still read its input, not at its final checkpoint (${status.state})`);
  rmSync(filler);
  const summary = await within(handle.done, 120_000, 'the job once the state disk has room again');
  t.ok(summary.restarts >= 1, `it restored ${summary.restarts} time(s)`);
  const updates = handle.output<CounterUpdate>('counts');
  t.equal(updates.length, events.length, 'every record counted once');
  t.same(brokenKeys(updates, events.length / 50), [], 'every key counts 1, 2, ... 600');
});

void t.test('restores that fail at once on a full state directory pause as the restart strategy says: a disk full for 4 s does not use up its failures, and the job counts on exactly', { skip: NO_MOUNT }, async (t) => {
  const disk = smallDisk(t, '2m')!;
  const stateDir = join(disk, 'state');
  const checkpointDir = tempDir(t, 'chk-restore-enospc');
  const events = Array.from({ length: 8000 }, (_, i) => ({ key: `k${i % 50}` }));
  const handle = run(t, counterJob, {
    workers: 2, stateDir, checkpointDir,
    restartStrategy: { maxFailures: 10, intervalMs: 60_000, initialBackoffMs: 100, maxBackoffMs: 5_000 },
    inputs: { events: { records: events, ratePerSec: 1000 } },
  });
  await untilInvocations(handle, 1000);
  await handle.checkpoint();
  // Kept full to the last page while the restores run. A restore wipes the state it replaces: the
  // files are held open here, so their blocks stay taken (a restore writes its user state in the
  // background, so a restore that found the wiped space free would not fail at all).
  const held = holdOpen(stateDir);
  t.teardown(() => {
    for (const fd of held) closeSync(fd);
  });
  const fillers: string[] = [];
  const refill = (): void => {
    fillers.push(fill(disk, `filler-${fillers.length}`), fill(disk, `filler-${fillers.length}-page`, 4096));
  };
  refill();
  const keepFull = setInterval(refill, 20);
  await handle.killWorker(0);
  await new Promise((resolve) => setTimeout(resolve, 4_000));
  clearInterval(keepFull);
  const during = handle.status();
  for (const filler of fillers) rmSync(filler, { force: true });
  t.not(during.state, 'failed', `the job is still recovering after 4 s of failed restores (${during.restarts} restarts)`);
  // Each restore waits for the pause chosen at the failure before: 100 + 200 + 400 + 800 + 1600 ms
  // fit in 4 s, so about 7 restores began, not the 10 that fail the job.
  t.ok(during.restarts <= 8, `the failed restores paused between them (${during.restarts} restarts in 4 s)`);
  const summary = await within(handle.done, 120_000, 'the job once the state disk has room again');
  t.ok(summary.restarts >= 2, `a restore failed on the full disk before one succeeded (${summary.restarts} restarts)`);
  const updates = handle.output<CounterUpdate>('counts');
  t.equal(updates.length, events.length, 'every record counted once');
  t.same(brokenKeys(updates, events.length / 50), [], 'every key counts 1, 2, ... 160');
});
