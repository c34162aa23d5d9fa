/**
 * Checkpoint cost: the YCSB write-only workload at maximum throughput over N keys of LevelDB state,
 * without checkpoints and with a checkpoint every second; reports the throughput dip, checkpoint
 * duration and size, the time a restore of the last checkpoint takes until the job produces output
 * again (worker start, loading the key groups, replaying in-flight messages), and the time to
 * recover from a killed worker thread (failure detected to invocations running again). Does not
 * measure Kafka.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { engine, type JobHandle } from '../index.js';
import { writeCharts } from './plot.js';
import { type BenchFlags, measure, printTable, round, type Row, writeResults } from './harness.js';
import job, { type YcsbParams } from './ycsb-job.js';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Kills worker thread `worker`; the time until the job is running again and its new workers invoke. */
async function timeRecovery(handle: JobHandle, worker: number): Promise<number> {
  const restarts = handle.status().restarts;
  const killedAt = performance.now();
  await handle.killWorker(worker);
  while (handle.status().restarts === restarts || handle.status().state !== 'running' || (await handle.metrics()).totals.invocations === 0) await sleep(5);
  return performance.now() - killedAt;
}

export async function runCheckpointBench(flags: BenchFlags, command: string): Promise<void> {
  const rows: Row[] = [];
  /** Every checkpoint of the checkpointed runs, for the timeline chart. */
  const timeline: Array<{ keys: string; checkpoint: number; durationMs: number; sizeMB: number }> = [];
  for (const keys of flags.keys) {
    for (const workers of flags.workers) {
      const params: YcsbParams = { target: 'record', workload: 'write-only', keys, seed: flags.seed };
      const ready = (count: number): boolean => count >= keys;
      const start = (checkpointDir?: string): JobHandle =>
        engine.submit(job, { workers, inputs: { requests: { params } }, log: () => {}, ...(checkpointDir === undefined ? {} : { checkpointDir, checkpointIntervalMs: 1000 }) });
      const plain = await measure(start(), 'responses', flags.durationS, 3000, ready);
      const checkpointDir = mkdtempSync(join(tmpdir(), 'eddy-bench-chk-'));
      try {
        const checkpointed = await measure(start(checkpointDir), 'responses', flags.durationS, 3000, ready);
        const taken = checkpointed.summary.checkpoints;
        taken.forEach((c, i) => timeline.push({ keys: `${keys} keys, ${workers} workers`, checkpoint: i + 1, durationMs: c.durationMs, sizeMB: round(c.bytes / 1e6, 2) }));
        const durations = taken.map((c) => c.durationMs).sort((a, b) => a - b);
        const last = taken.at(-1);
        // Restore the last checkpoint and time until output flows again.
        const began = performance.now();
        // Where each restore's time went (the engine logs its phases), printed with the row.
        const phases: string[] = [];
        const log = (line: string): void => {
          if (/restored checkpoint|restored and started/.test(line)) phases.push(`  ${Math.round(performance.now() - began)} ms: ${line}`);
        };
        const restored = engine.submit(job, { workers, inputs: { requests: { params } }, log, checkpointDir, restoreFrom: 'latest', checkpointsRetained: 1 });
        while (((await restored.metrics()).egress.responses ?? 0) === 0) await sleep(5);
        const restoreMs = performance.now() - began;
        // Recovery: kill a worker thread of the restored job; time until the new workers invoke again.
        const recoveryMs = await timeRecovery(restored, 0);
        // A second failure while the workers restore: a kill 100 ms after the previous one.
        await sleep(1000);
        await restored.killWorker(1);
        while (restored.status().restarts < 2) await sleep(1);
        await sleep(100);
        const secondRecoveryMs = await timeRecovery(restored, 0);
        await restored.stop();
        const row = {
          workload: 'write-only',
          workers,
          keys,
          opsPerSec: Math.round(checkpointed.opsPerSec),
          limitOpsPerSec: Math.round(plain.opsPerSec),
          dip: `${round((1 - checkpointed.opsPerSec / plain.opsPerSec) * 100, 1)}%`,
          checkpoints: taken.length,
          p50DurationMs: durations[Math.floor(durations.length / 2)] ?? 0,
          maxDurationMs: durations.at(-1) ?? 0,
          sizeMB: round((last?.bytes ?? 0) / 1e6, 2),
          restoreMs: Math.round(restoreMs),
          recoveryMs: Math.round(recoveryMs),
          recoveryDuringRestoreMs: Math.round(secondRecoveryMs),
          p99Ms: round(checkpointed.latency.p99Ms, 2),
        };
        rows.push(row);
        if (!flags.json) console.error(`checkpoint keys=${keys} workers=${workers}: restore phases\n${phases.join('\n')}`);
        if (flags.json) console.log(JSON.stringify({ ...row, p50Ms: round(checkpointed.latency.p50Ms, 2), p95Ms: round(checkpointed.latency.p95Ms, 2) }));
        else console.error(`checkpoint keys=${keys} workers=${workers}: ${row.opsPerSec} ops/s with, ${row.limitOpsPerSec} without (dip ${row.dip}), checkpoint p50 ${row.p50DurationMs} ms, ${row.sizeMB} MB, restore ${row.restoreMs} ms, recovery ${row.recoveryMs} ms, ${row.recoveryDuringRestoreMs} ms from a kill during a restore`);
      } finally {
        rmSync(checkpointDir, { recursive: true, force: true });
      }
    }
  }
  const table = printTable(rows);
  if (!flags.json) console.log(table);
  const charts = !flags.plot
    ? ''
    : await writeCharts([
        {
          name: 'checkpoint-throughput',
          title: 'Checkpoints: throughput against keys, with a checkpoint every second and without',
          rows: rows.flatMap((r) => [
            { keys: r.keys, run: 'checkpoint every 1 s', opsPerSec: r.opsPerSec },
            { keys: r.keys, run: 'no checkpoints', opsPerSec: r.limitOpsPerSec },
          ]),
          spec: {
            mark: { type: 'line', point: true },
            encoding: {
              x: { field: 'keys', type: 'ordinal', title: 'keys (records of LevelDB state)' },
              y: { field: 'opsPerSec', type: 'quantitative', title: 'throughput (writes/s)' },
              color: { field: 'run', type: 'nominal', title: '' },
            },
          },
        },
        {
          name: 'checkpoint-timeline',
          title: 'Checkpoints: the cost of each one over a run',
          rows: timeline,
          spec: {
            mark: { type: 'line', point: true },
            encoding: {
              x: { field: 'checkpoint', type: 'quantitative', title: 'checkpoint (one a second)' },
              y: { field: 'durationMs', type: 'quantitative', title: 'duration (ms)' },
              color: { field: 'keys', type: 'nominal', title: 'run' },
              tooltip: [{ field: 'sizeMB', title: 'size (MB)' }],
            },
          },
        },
      ]);
  if (flags.write) {
    writeResults(
      'Checkpoints: cost and restore',
      command,
      table,
      'YCSB write-only at maximum throughput over `keys` records of LevelDB state (10 fields of 128 bits each). `limitOpsPerSec` is the same ' +
        'run without checkpoints; `opsPerSec` with a checkpoint every 1000 ms (output is then published per completed checkpoint, so ' +
        'latency includes the wait for it); `dip` is the throughput lost. Duration is from the trigger to the atomic write of _metadata; ' +
        'size is the last checkpoint\'s state and in-flight log files. `restoreMs` is from submit with restoreFrom to the first output ' +
        '(starting the workers included). `recoveryMs` is from killing a worker thread of that restored job to its state being `running` ' +
        'again with its new workers invoking (failure detection, stopping the other workers, restoring the state during the 100 ms backoff, ' +
        'starting the routers); `recoveryDuringRestoreMs` the same for a second kill that lands 100 ms into the restore after another one ' +
        '(the third restart: its backoff is 400 ms). Measured after a 3 s warm-up, for the given duration. ' +
        'Checkpoints are incremental: most write only the keys changed since the previous one (`sizeMB` of the last one), a full file at least ' +
        'every 10; the slowest (`maxDurationMs`) are the full ones, and at 1M keys (about 400 MB of state) they dominate the dip.',
      charts,
    );
  }
}
