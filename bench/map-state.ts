/**
 * Map state with many entries per instance: 16 instances (one per generator split), each filled with
 * `keys` entries, then single-entry reads and writes (half each) at maximum throughput, on LevelDB
 * state, with a checkpoint every second. `map` keeps the entries in a mapState (a write changes one
 * key); `blob` in one valueState object (a write re-encodes and rewrites all of them). Does not
 * measure whole-map reads (entries()), Kafka or transactions.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { engine } from '../index.js';
import { type BenchFlags, measure, printTable, round, type Row, writeResults } from './harness.js';
import job, { type MapParams, SPLITS } from './map-state-job.js';

export async function runMapStateBench(flags: BenchFlags, command: string): Promise<void> {
  const rows: Row[] = [];
  for (const entries of flags.keys) {
    for (const workers of flags.workers) {
      for (const kind of ['map', 'blob'] as const) {
        const params: MapParams = { kind, entries, seed: flags.seed };
        const checkpointDir = mkdtempSync(join(tmpdir(), 'eddy-bench-map-'));
        try {
          const handle = engine.submit(job, { workers, inputs: { requests: { params } }, log: () => {}, checkpointDir, checkpointIntervalMs: 1000 });
          const run = await measure(handle, 'responses', flags.durationS, 3000, (count) => count >= SPLITS);
          const last = run.summary.checkpoints.at(-1);
          const row = {
            state: kind === 'map' ? 'mapState' : 'valueState (object)',
            workers,
            entriesPerInstance: entries,
            instances: SPLITS,
            opsPerSec: Math.round(run.opsPerSec),
            p50Ms: round(run.latency.p50Ms, 2),
            p99Ms: round(run.latency.p99Ms, 2),
            checkpointMB: last === undefined ? 'none completed' : round(last.bytes / 1e6, 2),
          };
          rows.push(row);
          if (flags.json) console.log(JSON.stringify(row));
          else console.error(`map-state ${row.state} entries=${entries} workers=${workers}: ${row.opsPerSec} ops/s, p99 ${row.p99Ms} ms, last checkpoint ${row.checkpointMB} MB`);
        } finally {
          rmSync(checkpointDir, { recursive: true, force: true });
        }
      }
    }
  }
  const table = printTable(rows);
  if (!flags.json) console.log(table);
  if (flags.write) {
    writeResults(
      'Map state: 10K entries per instance',
      command,
      table,
      `${SPLITS} instances, each first filled with \`entriesPerInstance\` entries (32 hex digits each) in one invocation, then reads and ` +
        'writes of single uniformly chosen entries (half each) at maximum throughput, LevelDB state, a checkpoint every 1000 ms. ' +
        '`mapState` stores one key per entry, so a write changes one key; `valueState (object)` keeps the entries in one object, ' +
        're-encoded and rewritten on each write. `opsPerSec` and latency (router to sink, including the wait for the checkpoint that ' +
        'publishes) after a 3 s warm-up, for the given duration; `checkpointMB` is the last checkpoint (incremental: the changed keys).',
    );
  }
}
