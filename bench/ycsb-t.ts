/**
 * YCSB-T: the seed thesis's transfer experiment on the memory connector with LevelDB state. Accounts
 * (10 fields and a balance of 10000) and a mix of reads, writes and transfers of 1 between two distinct
 * accounts, as two-phase commit (serializable) or sagas. Per configuration: throughput at maximum
 * (unlimited input), and with `--latency` also latency with the input fixed at 80% of that maximum;
 * transactions committed, aborted and retryable (deadlock victims), deadlocks per 1000 transfers and
 * the mean lock hold time. Does not measure: Kafka, checkpoints, client retries (a deadlock victim is
 * answered as retryable and counted, not retried).
 *
 * The default matrix keeps a run under about five minutes; flags narrow or widen it:
 *   --transfer-ratios 0,10,50,100  --protocols tpc,saga  --fail-ratios 0,50,100  --zipfian
 *   --max-transactions 32,128,512 (the engine's maxTransactionsPerWorker, for sagas maxSagasPerWorker)
 *   --latency-load 0.6 (the share of the maximum for the latency run; default 0.8)
 */
import { parseArgs } from 'node:util';
import { defaultOptions, engine, type JobHandle, type JobSummary } from '../index.js';
import { type BenchFlags, FlagError, measure, type Measured, printTable, round, type Row, writeResults } from './harness.js';
import job, { type YcsbTParams } from './ycsb-t-job.js';

interface Config {
  workers: number;
  keys: number;
  transferRatio: number;
  protocol: 'tpc' | 'saga';
  failRatio: number;
  distribution: 'uniform' | 'zipfian';
  /** Also measure latency at 80% of the maximum. */
  at80: boolean;
  /** The engine option maxTransactionsPerWorker, or maxSagasPerWorker for sagas (undefined: its default). */
  maxTransactions: number | undefined;
}

function percentList(flag: string, value: string | undefined, fallback: number[]): number[] {
  if (value === undefined) return fallback;
  const numbers = value.split(',').map(Number);
  if (numbers.some((n) => !(n >= 0 && n <= 100))) throw new FlagError(`${flag}: expected percentages 0..100, got ${value}`);
  return numbers;
}

/** The configurations to run: a fixed default matrix, or the cross product of the given flags. */
function configs(flags: BenchFlags, argv: string[]): Config[] {
  const { values } = parseArgs({
    args: argv,
    strict: false,
    options: {
      'transfer-ratios': { type: 'string' },
      protocols: { type: 'string' },
      'fail-ratios': { type: 'string' },
      zipfian: { type: 'boolean', default: false },
      'max-transactions': { type: 'string' },
      'latency-load': { type: 'string' },
    },
  });
  const custom = ['transfer-ratios', 'protocols', 'fail-ratios', 'max-transactions'].some((flag) => values[flag] !== undefined) || argv.includes('--workers') || argv.includes('--keys');
  const bounds = typeof values['max-transactions'] === 'string' ? values['max-transactions'].split(',').map(Number) : [undefined];
  if (bounds.some((n) => n !== undefined && !(Number.isInteger(n) && n > 0))) throw new FlagError(`--max-transactions: expected positive integers, got ${values['max-transactions']}`);
  const distribution = values.zipfian === true ? 'zipfian' : 'uniform';
  if (custom) {
    const protocols = (typeof values.protocols === 'string' ? values.protocols.split(',') : ['tpc', 'saga']) as Array<'tpc' | 'saga'>;
    const out: Config[] = [];
    for (const workers of flags.workers) {
      for (const keys of flags.keys) {
        for (const transferRatio of percentList('--transfer-ratios', values['transfer-ratios'] as string | undefined, [100])) {
          for (const protocol of transferRatio === 0 ? (['tpc'] as const) : protocols) {
            for (const failRatio of percentList('--fail-ratios', values['fail-ratios'] as string | undefined, [0])) {
              for (const maxTransactions of bounds) out.push({ workers, keys, transferRatio, protocol, failRatio, distribution, at80: true, maxTransactions });
            }
          }
        }
      }
    }
    return out;
  }
  const main = (protocol: 'tpc' | 'saga', extra: Partial<Config> = {}): Config => ({
    workers: 2, keys: 5000, transferRatio: 100, protocol, failRatio: 0, distribution: 'uniform', at80: false, maxTransactions: undefined, ...extra,
  });
  return [
    main('tpc', { at80: true }),
    main('saga', { at80: true }),
    main('tpc', { transferRatio: 0 }),
    main('tpc', { transferRatio: 10 }),
    main('tpc', { transferRatio: 50 }),
    main('saga', { transferRatio: 50 }),
    main('tpc', { keys: 100 }),
    main('saga', { keys: 100 }),
    main('tpc', { failRatio: 50 }),
    main('saga', { failRatio: 50 }),
    main('tpc', { failRatio: 100 }),
    main('saga', { failRatio: 100 }),
    main('tpc', { distribution: 'zipfian' }),
    main('tpc', { workers: 1 }),
    main('saga', { workers: 1 }),
    main('tpc', { workers: 3 }),
  ];
}

function start(config: Config, seed: number, ratePerSec?: number): JobHandle {
  const params: YcsbTParams = {
    keys: config.keys,
    seed,
    transferRatio: config.transferRatio / 100,
    failRatio: config.failRatio / 100,
    protocol: config.protocol,
    distribution: config.distribution,
  };
  const bound =
    config.maxTransactions === undefined ? {}
    : config.protocol === 'tpc' ? { maxTransactionsPerWorker: config.maxTransactions }
    : { maxSagasPerWorker: config.maxTransactions };
  return engine.submit(job, { workers: config.workers, ...bound, inputs: { requests: { params, ratePerSec } }, log: () => {} });
}

function row(config: Config, load: string, run: Measured): Row {
  const totals: JobSummary['totals'] = run.summary.totals;
  const transfers = config.protocol === 'tpc'
    ? totals.transactionsCommitted + totals.transactionsAborted + totals.transactionsRetryable
    : totals.sagasSucceeded + totals.sagasFailed;
  return {
    protocol: config.protocol,
    keys: config.keys,
    dist: config.distribution,
    workers: config.workers,
    transferRatio: config.transferRatio,
    failRatio: config.failRatio,
    maxTxns: config.maxTransactions ?? (config.protocol === 'tpc' ? defaultOptions.maxTransactionsPerWorker : defaultOptions.maxSagasPerWorker),
    // Where the adaptive 2PC limit ended, per worker (summed over workers in the totals); sagas have a fixed one.
    endLimit: config.protocol === 'tpc' ? round(totals.transactionLimit / config.workers, 1) : '-',
    load,
    opsPerSec: Math.round(run.opsPerSec),
    p50Ms: round(run.latency.p50Ms, 2),
    p95Ms: round(run.latency.p95Ms, 2),
    p99Ms: round(run.latency.p99Ms, 2),
    committed: config.protocol === 'tpc' ? totals.transactionsCommitted : totals.sagasSucceeded,
    aborted: config.protocol === 'tpc' ? totals.transactionsAborted : totals.sagasFailed,
    retryable: totals.transactionsRetryable,
    deadlocksPer1000: transfers === 0 ? 0 : round((totals.deadlocksFound * 1000) / transfers, 2),
    lockHoldMs: totals.locksReleased === 0 ? 0 : round(totals.lockHoldMsTotal / totals.locksReleased, 2),
  };
}

/** The share of the maximum at which latency is measured (`--latency-load`, default 0.8). */
function latencyLoad(argv: string[]): number {
  const { values } = parseArgs({ args: argv, strict: false, options: { 'latency-load': { type: 'string' } } });
  const load = values['latency-load'] === undefined ? 0.8 : Number(values['latency-load']);
  if (!(load > 0 && load <= 1)) throw new FlagError(`--latency-load: expected a share of the maximum in (0, 1], got ${String(values['latency-load'])}`);
  return load;
}

export async function runYcsbT(flags: BenchFlags, argv: string[], command: string): Promise<void> {
  const rows: Row[] = [];
  const load = latencyLoad(argv);
  const loadLabel = `${Math.round(load * 100)}%`;
  for (const config of configs(flags, argv)) {
    const ready = (count: number): boolean => count >= config.keys;
    // V8 still compiles the transaction code on its helper threads for about 4 s after the load
    // starts (up to a core of the two): a shorter warm-up measured a lower maximum and, at 80%, the
    // start-up's latency (per-thread CPU and 250 ms latency windows over the first seconds).
    const warmupMs = 5000;
    const max = await measure(start(config, flags.seed), 'responses', flags.durationS, warmupMs, ready);
    const runs: Array<[string, Measured]> = [['max', max]];
    if (config.at80) runs.push([loadLabel, await measure(start(config, flags.seed, Math.round(max.opsPerSec * load)), 'responses', flags.durationS, warmupMs, ready, true)]);
    for (const [load, run] of runs) {
      const r = row(config, load, run);
      rows.push(r);
      if (flags.json) console.log(JSON.stringify(r));
    }
    if (!flags.json) {
      const last = rows.at(-1)!;
      console.error(`ycsb-t ${config.protocol} keys=${config.keys} ${config.distribution} workers=${config.workers} transfers=${config.transferRatio}% fail=${config.failRatio}%: ` +
        `max ${Math.round(max.opsPerSec)} ops/s, p99 ${last.p99Ms} ms (${last.load})`);
    }
  }
  const table = printTable(rows);
  if (!flags.json) console.log(table);
  if (flags.write) {
    writeResults(
      'YCSB-T: transfers as 2PC and sagas',
      command,
      table,
      'Each run inserts the accounts (one per key, balance 10000), warms up for 5 s (at a fixed rate also until the backlog of the ' +
        'first seconds has drained), then measures for the given duration. `opsPerSec` ' +
        'counts answered requests per second (reads, writes and transfers; a transfer is answered by its coordinator once it ' +
        'committed, aborted or was chosen as a deadlock victim), at `max` with unlimited input and at `80%` with the input rate fixed at ' +
        '80% of that maximum; latency is from the router reading the request to the answer reaching the sink, over the measured window. ' +
        '`committed`/`aborted`/`retryable` and the deadlock and lock figures are totals of the whole run (warm-up included). Transfers move 1 ' +
        'between two distinct accounts; `failRatio` of them fail in their credit leg (2PC rolls the debit back, sagas compensate it). ' +
        'Every transfer has its own coordinator instance (keyed by its request id, as in the seed\'s benchmark); `maxTxns` is the ' +
        'engine option maxTransactionsPerWorker (for sagas maxSagasPerWorker) and `endLimit` where the adaptive admission limit of 2PC ended, per worker. ' +
        'The 0% row is the baseline of reads and writes without coordinators. Threads (job manager and workers) share the 2 cores; 3 ' +
        'workers are oversubscribed.',
    );
  }
}
