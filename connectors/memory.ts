import { type Codec, jsonCodec } from '../engine/codec.js';
import { invalidOption } from '../engine/errors.js';
import type { Egress, Ingress, ReadResult, Sink, SplitReader } from '../engine/job.js';
import { keyGroupOf } from '../engine/key-groups.js';

export interface MemoryIngressOptions<R> {
  /** Records, unless `submit(job, { inputs: { <name>: records } })` gives them. Default: none. */
  records?: readonly R[];
  /** Splits the records are dealt into (record i goes to split i mod splits). Default: 16. */
  splits?: number;
  /**
   * Deals records by key instead (like a keyed Kafka partitioner): records with the same key land in
   * the same split, so their order is kept all the way to the function instance.
   */
  splitBy?: (record: R) => string;
  /** Records per second over all splits; unlimited when absent. */
  ratePerSec?: number;
}

/** What `inputs` of submit may give a memory ingress. */
export type MemoryInput<R> = readonly R[] | { records: readonly R[]; ratePerSec?: number };

/**
 * What a paced split may still read at once after it fell behind (it was not read, e.g. while its
 * router waited for credits or the job was starting): a token bucket of this many milliseconds of
 * records. Without the bound, a slow start would be paid back later as a burst above the rate, and a
 * latency measured "at 80% load" would be measured at full load.
 */
const MAX_BURST_MS = 100;

/**
 * Paces a split at `ratePerSec` from its first read: how many records may be read now (0: wait).
 * Unlimited when the rate is undefined.
 */
function pacer(ratePerSec: number | undefined): (wanted: number) => number {
  if (ratePerSec === undefined) return (wanted) => wanted;
  // At least 2 records: with a bucket of 1, a retry timer that fires late would lose that time at low rates.
  const burst = Math.max(2, (ratePerSec * MAX_BURST_MS) / 1000);
  // The clock starts at the first read, not at open: workers open their splits before the job starts.
  let last: number | undefined;
  let allowance = 0;
  return (wanted) => {
    const now = Date.now();
    allowance = Math.min(burst, allowance + ((now - (last ?? now)) * ratePerSec) / 1000);
    last = now;
    const count = Math.min(wanted, Math.floor(allowance));
    allowance -= count;
    return count;
  };
}

function waitFor(ratePerSec: number): number {
  return Math.max(1, Math.ceil(1000 / ratePerSec));
}

interface MemorySplit<R> {
  records: R[];
  ratePerSec: number | undefined;
}

/**
 * An in-process source: records given in the job module or at submit. Each submit reads them from
 * the start; positions are record counts per split.
 */
export function memoryIngress<R = unknown>(name: string, options: MemoryIngressOptions<R> = {}): Ingress<R> {
  const splits = options.splits ?? 16;
  if (!Number.isInteger(splits) || splits < 1) throw invalidOption(`memoryIngress(${name}).splits`, `is ${splits}`, 'must be an integer >= 1');
  return {
    name,
    kind: 'memory',
    resumable: false,
    planSplits(input: unknown): MemorySplit<R>[] {
      let records = options.records ?? [];
      let ratePerSec = options.ratePerSec;
      if (Array.isArray(input)) records = input as R[];
      else if (input !== undefined) {
        const given = input as { records?: unknown; ratePerSec?: number };
        if (!Array.isArray(given.records)) throw invalidOption(`inputs.${name}`, 'is neither an array nor { records: [...] }', 'pass an array of records');
        records = given.records as R[];
        ratePerSec = given.ratePerSec ?? ratePerSec;
      }
      if (ratePerSec !== undefined && !(ratePerSec > 0)) throw invalidOption(`inputs.${name}.ratePerSec`, `is ${ratePerSec}`, 'must be > 0');
      const dealt: MemorySplit<R>[] = Array.from({ length: splits }, () => ({ records: [], ratePerSec: ratePerSec === undefined ? undefined : ratePerSec / splits }));
      const splitBy = options.splitBy;
      records.forEach((record, i) => dealt[splitBy === undefined ? i % splits : keyGroupOf(splitBy(record), splits)]!.records.push(record));
      return dealt;
    },
    openSplit(split: unknown, position: unknown): SplitReader<R> {
      const { records, ratePerSec } = split as MemorySplit<R>;
      let next = typeof position === 'number' ? position : 0;
      const allowed = pacer(ratePerSec);
      return {
        read(max: number): ReadResult<R> {
          const count = allowed(Math.min(max, records.length - next));
          if (count === 0 && ratePerSec !== undefined && next < records.length) return { records: [], done: false, retryAfterMs: waitFor(ratePerSec) };
          const batch = records.slice(next, next + count);
          next += count;
          return { records: batch, done: next >= records.length };
        },
        position: () => next,
        close: () => {},
      };
    },
  };
}

export interface MemoryEgressOptions<R> {
  codec?: Codec<R>;
  /** Keep the records (readable with `handle.output(name)`), or only count them. Default: true. */
  retain?: boolean;
}

/** An in-process sink; `handle.output(name)` returns what it received. */
export function memoryEgress<R = unknown>(name: string, options: MemoryEgressOptions<R> = {}): Egress<R> {
  const retain = options.retain ?? true;
  return {
    name,
    kind: 'memory',
    codec: options.codec ?? jsonCodec<R>(),
    openSink(): Sink<R> {
      const records: R[] = [];
      return {
        records,
        write(batch) {
          if (retain) for (const record of batch) records.push(record);
        },
        close() {},
      };
    },
  };
}

export interface GeneratorIngressOptions<R, P> {
  /** Splits, each generating its own sequence. Default: 16. */
  splits?: number;
  /**
   * Makes the record at `index` of `split` (runs in the worker, so it can be unbounded and costs no
   * setup); `params` come from `inputs.<name>.params` of submit. Return undefined to end the split.
   */
  generate: (params: P, index: number, split: number) => R | undefined;
}

/** What `inputs` of submit gives a generator ingress. */
export interface GeneratorInput<P> {
  params: P;
  /** Records per split; unlimited when absent. */
  countPerSplit?: number;
  /** Records per second over all splits; unlimited when absent. */
  ratePerSec?: number;
}

interface GeneratorSplit<P> {
  split: number;
  params: P;
  count: number;
  ratePerSec: number | undefined;
}

/** An in-process source whose records are generated inside the workers: for benchmarks and load tests. */
export function generatorIngress<R = unknown, P = unknown>(name: string, options: GeneratorIngressOptions<R, P>): Ingress<R> {
  const splits = options.splits ?? 16;
  return {
    name,
    kind: 'generator',
    resumable: false,
    planSplits(input: unknown): GeneratorSplit<P>[] {
      const given = input as GeneratorInput<P> | undefined;
      if (given === undefined || typeof given !== 'object' || !('params' in given)) {
        throw invalidOption(`inputs.${name}`, 'is missing', 'pass { params, countPerSplit?, ratePerSec? }');
      }
      return Array.from({ length: splits }, (_, split) => ({
        split,
        params: given.params,
        count: given.countPerSplit ?? Infinity,
        ratePerSec: given.ratePerSec === undefined ? undefined : given.ratePerSec / splits,
      }));
    },
    openSplit(description: unknown, position: unknown): SplitReader<R> {
      const { split, params, count, ratePerSec } = description as GeneratorSplit<P>;
      let next = typeof position === 'number' ? position : 0;
      let ended = false;
      const allowed = pacer(ratePerSec);
      return {
        read(max: number): ReadResult<R> {
          const n = allowed(Math.min(max, count - next));
          if (n === 0 && ratePerSec !== undefined && next < count) return { records: [], done: false, retryAfterMs: waitFor(ratePerSec) };
          const records: R[] = [];
          for (let i = 0; i < n; i++) {
            const record = options.generate(params, next, split);
            if (record === undefined) {
              ended = true;
              break;
            }
            records.push(record);
            next++;
          }
          return { records, done: ended || next >= count };
        },
        position: () => next,
        close: () => {},
      };
    },
  };
}
