/**
 * A checkpoint folder and a state directory belong to one running job: a second run given the same
 * folder (another process, or another submit in this one) is refused at once, naming who holds it;
 * the lock of a process that was killed is stale and taken over.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { EddyError } from '../../../engine/errors.js';
import { LOCK_FILE, lockDir } from '../../../engine/runtime/dir-lock.js';
import { tempDir } from '../../fixtures/harness.js';
import { type LedgerRun, ledgerRun } from '../../fixtures/ledger-run.js';


/** `eddy run` of the ledger job, slowed down so that it runs until killed. */
function eddyRun(dir: string, checkpointDir: string, stateDir: string): LedgerRun {
  return ledgerRun({ dir, workers: 1, args: ['--checkpoint-dir', checkpointDir, '--state-dir', stateDir], output: join(dir, `audit-${Math.random()}.ndjson`), delayMs: 50 });
}

void t.test('a second eddy run on the same checkpoint folder or state directory refuses at once, naming the first one; a killed run\'s lock is taken over', async (t) => {
  const dir = tempDir(t, 'dir-lock');
  writeFileSync(join(dir, 'entries.ndjson'), Array.from({ length: 2000 }, (_, id) => JSON.stringify({ id, account: `acct-${id % 4}`, amount: 1 })).join('\n') + '\n');
  const checkpoints = join(dir, 'checkpoints');
  const state = join(dir, 'state');
  const first = eddyRun(dir, checkpoints, state);
  t.teardown(() => first.kill());
  await first.up;
  t.notOk(first.output().includes('EDDY_'), `the first run is up: ${first.output()}`);

  const sameCheckpoints = eddyRun(dir, checkpoints, join(dir, 'state-2'));
  t.teardown(() => sameCheckpoints.kill());
  t.equal(await sameCheckpoints.exited, 1, 'a second run on the same checkpoint folder exits 1');
  t.match(sameCheckpoints.output(), new RegExp(`EDDY_DIR_LOCKED: the checkpoint folder \\S+ is in use by process ${first.pid}: .*give this one another checkpointDir \\(eddy run --checkpoint-dir\\)`), 'naming the folder, the other process and the fix');

  const sameState = eddyRun(dir, join(dir, 'checkpoints-2'), state);
  t.teardown(() => sameState.kill());
  t.equal(await sameState.exited, 1, 'a second run on the same state directory exits 1');
  t.match(sameState.output(), new RegExp(`EDDY_DIR_LOCKED: the state directory ${state} is in use by process ${first.pid}`), 'naming the directory and the other process');

  // Killed: no chance to remove its locks. The next run finds them stale and runs.
  first.kill();
  await first.exited;
  t.ok(existsSync(join(state, LOCK_FILE)), 'the killed run left its lock behind');
  const next = eddyRun(dir, checkpoints, state);
  t.teardown(() => next.kill());
  await next.up;
  t.notOk(next.output().includes('EDDY_DIR_LOCKED'), `the next run takes over the stale locks and runs: ${next.output()}`);
  t.equal(readFileSync(join(state, LOCK_FILE), 'utf8').trim(), String(next.pid), 'the lock names the new run');
  next.kill();
  await next.exited;
});

void t.test('in one process: a second lock on a folder is refused until the first is released', async (t) => {
  const dir = tempDir(t, 'dir-lock-one');
  const lock = lockDir(dir, 'checkpoint folder', 'checkpointDir');
  let refused: unknown;
  try {
    lockDir(dir, 'checkpoint folder', 'checkpointDir').release();
  } catch (error) {
    refused = error;
  }
  t.ok(refused instanceof EddyError && refused.code === 'EDDY_DIR_LOCKED', `a second lock is refused with EDDY_DIR_LOCKED (${String(refused)})`);
  t.match((refused as Error | undefined)?.message, `another job of this process (pid ${process.pid})`, 'naming this process');
  lock.release();
  t.notOk(existsSync(join(dir, LOCK_FILE)), 'released: the file is gone');
  lockDir(dir, 'checkpoint folder', 'checkpointDir').release();
  // A lock naming a process that has ended is stale.
  const ended = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']);
  writeFileSync(join(dir, LOCK_FILE), `${ended.stdout.toString()}\n`);
  const taken = lockDir(dir, 'checkpoint folder', 'checkpointDir');
  t.equal(readFileSync(join(dir, LOCK_FILE), 'utf8').trim(), String(process.pid), 'a stale lock is taken over');
  taken.release();
});
