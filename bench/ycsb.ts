/**
 * YCSB on the memory connector: read-only and write-only workloads, uniform keys, LevelDB state.
 * For each (workload, keys, workers): the `limit` run (same envelopes, same channels, no-op
 * handlers) at maximum throughput, the real run at maximum throughput, and the real run with the
 * input rate fixed at 80% of that maximum. Measures egress records per second and ingress-to-egress
 * latency. Does not measure: Kafka, checkpoints, transactions, or the load generator (records are
 * generated inside the workers, outside the timed part's accounting only by the CPU they use).
 */
import { engine, type JobHandle } from '../index.js';
import { writeCharts } from './plot.js';
import { type BenchFlags, measure, printTable, round, type Row, writeResults } from './harness.js';
import job, { type YcsbParams } from './ycsb-job.js';

const WORKLOADS = ['read-only', 'write-only'] as const;

function start(params: YcsbParams, workers: number, ratePerSec?: number): JobHandle {
  return engine.submit(job, { workers, inputs: { requests: { params, ratePerSec } }, log: () => {} });
}

export async function runYcsb(flags: BenchFlags, command: string): Promise<void> {
  const rows: Row[] = [];
  for (const workload of WORKLOADS) {
    for (const keys of flags.keys) {
      for (const workers of flags.workers) {
        const params = (target: 'record' | 'limit'): YcsbParams => ({ target, workload, keys, seed: flags.seed });
        const ready = (count: number): boolean => count >= keys;
        const warmupMs = 3000;
        const limit = await measure(start(params('limit'), workers), 'responses', flags.durationS, warmupMs, ready);
        const max = await measure(start(params('record'), workers), 'responses', flags.durationS, warmupMs, ready);
        const rate = Math.round(max.opsPerSec * 0.8);
        const at80 = await measure(start(params('record'), workers, rate), 'responses', flags.durationS, warmupMs, ready, true);
        for (const [load, run] of [['max', max], ['80%', at80]] as const) {
          const row = {
            workload,
            workers,
            keys,
            load,
            opsPerSec: Math.round(run.opsPerSec),
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
  const series = (r: Row): string => `${String(r.workload)}, ${String(r.workers)} workers`;
  const charts = !flags.plot
    ? ''
    : await writeCharts([
        {
          name: 'ycsb-throughput',
          title: 'YCSB: throughput against keys (at max), beside the no-op limit',
          rows: rows.filter((r) => r.load === 'max').flatMap((r) => [
            { keys: r.keys, series: series(r), handlers: 'record (LevelDB state)', opsPerSec: r.opsPerSec },
            { keys: r.keys, series: series(r), handlers: 'limit (no-op)', opsPerSec: r.limitOpsPerSec },
          ]),
          spec: {
            mark: { type: 'line', point: true },
            encoding: {
              x: { field: 'keys', type: 'ordinal', title: 'keys (records)' },
              y: { field: 'opsPerSec', type: 'quantitative', title: 'throughput (ops/s)' },
              color: { field: 'series', type: 'nominal', title: 'workload' },
              strokeDash: { field: 'handlers', type: 'nominal', title: 'handlers' },
            },
          },
        },
        {
          name: 'ycsb-latency',
          title: 'YCSB: latency percentiles against load',
          rows: rows.flatMap((r) => (['p50Ms', 'p95Ms', 'p99Ms'] as const).map((p) => ({ load: r.load, run: `${series(r)}, ${String(r.keys)} keys`, percentile: p.slice(0, 3), ms: Math.max(0.01, Number(r[p])) }))),
          spec: {
            mark: { type: 'line', point: true },
            encoding: {
              x: { field: 'load', type: 'ordinal', title: 'load (80% of max, then max)', sort: ['80%', 'max'] },
              y: { field: 'ms', type: 'quantitative', title: 'ingress-to-egress latency (ms, log)', scale: { type: 'log' } },
              color: { field: 'percentile', type: 'nominal' },
              detail: { field: 'run', type: 'nominal' },
            },
          },
        },
      ]);
  if (flags.write) {
    writeResults(
      'YCSB on the memory connector',
      command,
      table,
      'Each run first loads the records (one insert per key), warms up for 3 s (at a fixed rate also until the backlog of the first seconds has drained), then measures for the given duration: `opsPerSec` is the ' +
        'egress rate in that window (at `max` with unlimited input, at `80%` with the input rate fixed at 80% of the measured maximum), and ' +
        'latency is from the moment a record is read by its router to the moment its response reaches the sink on the main thread, for the ' +
        'records of that window. `limitOpsPerSec` is the same envelopes through the same channels with no-op handlers (no state access), ' +
        'measured in the same run. Three threads (job manager and 2 workers) share the 2 cores.',
      charts,
    );
  }
}
