/**
 * The whole process killed (SIGKILL, no chance to clean up) at seeded random moments while `eddy run`
 * processes a ledger file with checkpoints every 100 ms; each time it is started again with
 * `--restore latest`. Afterwards the output file (a file egress) must hold every entry exactly once,
 * each with the balance a sequential run gives it.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { jobCheckpointDir, listCheckpoints } from '../../engine/checkpoint/metadata.js';
import { seededRandom } from '../../examples/bank/workload.js';
import ledgerJob, { type AuditedEntry, type LedgerEntry } from '../fixtures/ledger-file-job.js';
import { tempDir } from '../fixtures/harness.js';
import { type LedgerRun, ledgerRun } from '../fixtures/ledger-run.js';

const ENTRIES = 6000;
const ACCOUNTS = 8;
const KILLS = 3;

function eddyRun(dir: string, restore: boolean): LedgerRun {
  const args = ['--checkpoint-dir', join(dir, 'checkpoints'), '--checkpoint-interval-ms', '100', ...(restore ? ['--restore', 'latest'] : [])];
  return ledgerRun({ dir, workers: 2, args, output: join(dir, 'audit.ndjson'), delayMs: 1 });
}

void t.test('eddy run killed with SIGKILL three times and restored: every entry is in the output file once, with the sequential balance', async (t) => {
  const dir = tempDir(t, 'process-kill');
  const random = seededRandom(20261128);
  const entries: LedgerEntry[] = Array.from({ length: ENTRIES }, (_, id) => ({
    id,
    account: `acct-${Math.floor(random() * ACCOUNTS)}`,
    amount: Math.floor(random() * 200) - 100,
  }));
  writeFileSync(join(dir, 'entries.ndjson'), entries.map((e) => JSON.stringify(e)).join('\n') + '\n');

  // The job's own folder in the checkpoint directory eddy run is given.
  const checkpointDir = jobCheckpointDir(join(dir, 'checkpoints'), ledgerJob.name);
  const outputLines = (): number => {
    try {
      return readFileSync(join(dir, 'audit.ndjson'), 'utf8').split('\n').length - 1;
    } catch {
      return 0;
    }
  };
  for (let kill = 1; kill <= KILLS; kill++) {
    const before = listCheckpoints(checkpointDir).at(-1) ?? 0;
    const linesBefore = outputLines();
    const run = eddyRun(dir, before > 0);
    await run.up;
    // Kill once this run has completed a checkpoint of its own and published output, at a seeded moment after it.
    const deadline = Date.now() + 60_000;
    while (((listCheckpoints(checkpointDir).at(-1) ?? 0) <= before || outputLines() <= linesBefore) && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    await new Promise((resolve) => setTimeout(resolve, random() * 400));
    run.kill();
    t.equal(await run.exited, null, `run ${kill} was killed mid-way (it had checkpointed after ${before} and published output):\n${run.output()}`);
  }
  const published = outputLines();
  t.ok(published > 0 && published < ENTRIES, `the killed runs had published ${published} of ${ENTRIES} entries`);
  const last = eddyRun(dir, true);
  t.equal(await last.exited, 0, `the run after the last kill restores and ends cleanly:\n${last.output()}`);

  const lines = readFileSync(join(dir, 'audit.ndjson'), 'utf8').split('\n').filter((line) => line.length > 0);
  const audited = lines.map((line) => JSON.parse(line) as AuditedEntry);
  const seen = new Map<number, number>();
  for (const entry of audited) seen.set(entry.id, (seen.get(entry.id) ?? 0) + 1);
  t.equal(seen.size, ENTRIES, 'every entry is in the output');
  t.equal([...seen.values()].filter((n) => n > 1).length, 0, 'no entry twice');
  const balances = new Map<string, number>();
  const expected = new Map<number, number>();
  for (const entry of entries) {
    const balance = (balances.get(entry.account) ?? 0) + entry.amount;
    balances.set(entry.account, balance);
    expected.set(entry.id, balance);
  }
  t.equal(audited.filter((entry) => expected.get(entry.id) !== entry.balance).length, 0, 'each entry carries the balance a sequential run gives it');
});
