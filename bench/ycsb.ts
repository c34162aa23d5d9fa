/**
 * YCSB on the memory connector: read-only and write-only workloads, uniform keys, LevelDB state.
 * For each (workload, keys, workers): the `limit` run (same envelopes, same channels, no-op
 * handlers) at maximum throughput, the real run at maximum throughput, and the real run with the
 * input rate fixed at 80% of that maximum. Measures egress records per second and ingress-to-egress
 * latency. Does not measure: Kafka, checkpoints, transactions, or the load generator (records are
 * generated inside the workers, outside the timed part's accounting only by the CPU they use).
 */
import { engine, type JobHandle } from '../index.js';
import { type BenchFlags, measureMax, printTable, round, type Row, writeResults } from './harness.js';
import job, { SPLITS, type YcsbParams } from './ycsb-job.js';

const WORKLOADS = ['read-only', 'write-only'] as const;

function start(params: YcsbParams, workers: number, extra: { countPerSplit?: number; ratePerSec?: number } = {}): JobHandle {
  return engine.submit(job, { workers, inputs: { requests: { params, ...extra } }, log: () => {} });
}

export async function runYcsb(flags: BenchFlags, command: string): Promise<void> {
  const rows: Row[] = [];
  for (const workload of WORKLOADS) {
    for (const keys of flags.keys) {
      for (const workers of flags.workers) {
        const params = (target: 'record' | 'limit'): YcsbParams => ({ target, workload, keys, seed: flags.seed });
        const ready = (count: number): boolean => count >= keys;
        const limit = await measureMax(start(params('limit'), workers), 'responses', flags.durationS, 500, ready);
        const max = await measureMax(start(params('record'), workers), 'responses', flags.durationS, 500, ready);
        const rate = Math.round(max.opsPerSec * 0.8);
        const perSplit = Math.ceil(keys / SPLITS) + Math.ceil((rate * flags.durationS) / SPLITS);
        const handle = start(params('record'), workers, { countPerSplit: perSplit, ratePerSec: rate });
        const at80 = await handle.done;
        for (const [load, run] of [['max', max.summary], ['80%', at80]] as const) {
          const row = {
            workload,
            workers,
            keys,
            load,
            opsPerSec: Math.round(load === 'max' ? max.opsPerSec : rate),
            limitOpsPerSec: Math.round(limit.opsPerSec),
            p50Ms: round(run.latency.p50Ms, 2),
            p95Ms: round(run.latency.p95Ms, 2),
            p99Ms: round(run.latency.p99Ms, 2),
          };
          rows.push(row);
          if (flags.json) console.log(JSON.stringify(row));
        }
        if (!flags.json) console.error(`ycsb ${workload} keys=${keys} workers=${workers}: max ${Math.round(max.opsPerSec)} ops/s (limit ${Math.round(limit.opsPerSec)}), p99 at 80% ${round(at80.latency.p99Ms, 2)} ms`);
      }
    }
  }
  const table = printTable(rows.map((r) => ({ ...r, 'of limit': `${Math.round((Number(r.opsPerSec) / Number(r.limitOpsPerSec)) * 100)}%` })));
  if (!flags.json) console.log(table);
  if (flags.write) {
    writeResults(
      'YCSB on the memory connector',
      command,
      table,
      'opsPerSec at `max` is the measured egress rate with unlimited input; at `80%` the input rate is fixed at 80% of that maximum ' +
        '(the row shows the offered rate). Latency is from the moment a record is read by its router to the moment its response reaches ' +
        'the sink on the main thread, over the whole run. `limitOpsPerSec` is the same envelopes through the same channels with no-op handlers ' +
        '(no state access), measured in the same run.',
    );
  }
}
