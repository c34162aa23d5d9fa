/**
 * Figures a worker keeps for operators and the console: per function type (invocations, failures,
 * handler time, state access), time its router spent blocked, and its thread's event-loop
 * utilisation, heap and state size on disk. Counting is a few additions per invocation; the costly
 * reads (the state folder's size) happen only when metrics are asked for.
 */
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { getHeapStatistics } from 'node:v8';
import { KEY_TYPE_START, Space, spaceOfKey, typeLengthOfKey } from '../state/state-keys.js';

/** Upper bounds (ms) of the handler-time histogram's buckets; the last bucket is +Inf. */
export const HANDLER_BUCKETS_MS: readonly number[] = [0.1, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 1000, 5000];

export interface FunctionTypeMetrics {
  invocations: number;
  /** Invocations that threw (InvocationFailed or another error). */
  failures: number;
  /** Handler time, from the call to the settling of its promise: counts per HANDLER_BUCKETS_MS bucket (not cumulative), +Inf last. */
  handlerBuckets: number[];
  handlerMsSum: number;
  /** Reads of declared state, the ones that missed the cache (went to LevelDB), and writes committed. */
  stateReads: number;
  stateCacheMisses: number;
  stateWrites: number;
}

/** Counts per function type, kept by one worker. */
export class FunctionStats {
  /** Keyed by the type as it appears in state keys (UTF-8 bytes as latin1, which is the type itself for ASCII). */
  private readonly types = new Map<string, FunctionTypeMetrics>();
  // The last type seen: consecutive calls are nearly always for the same type (one invocation's reads
  // and writes, a run of messages to one type), and this runs on every invocation and state access.
  private last: { type: string; metrics: FunctionTypeMetrics } = { type: '\u0000', metrics: newMetrics() };

  private of(type: string): FunctionTypeMetrics {
    if (type === this.last.type) return this.last.metrics;
    let metrics = this.types.get(type);
    if (metrics === undefined) this.types.set(type, (metrics = newMetrics()));
    this.last = { type, metrics };
    return metrics;
  }

  /** Registers the job's function types, so each has samples (zeros) before its first invocation. */
  declare(types: Iterable<string>): void {
    for (const type of types) this.of(latin1(type));
  }

  /** An invocation of `type` that started at `startedAt` (performance.now()) has settled. */
  invoked(type: string, startedAt: number, failed: boolean): void {
    const metrics = type === this.last.type ? this.last.metrics : this.of(latin1(type));
    const ms = performance.now() - startedAt;
    metrics.invocations++;
    if (failed) metrics.failures++;
    metrics.handlerMsSum += ms;
    let bucket = 0;
    while (bucket < HANDLER_BUCKETS_MS.length && ms > HANDLER_BUCKETS_MS[bucket]!) bucket++;
    metrics.handlerBuckets[bucket]!++;
  }

  /** A state store access; only keys of declared user state count (engine keys have no function type). */
  stateAccess(key: string, access: 'read' | 'miss' | 'write'): void {
    if (spaceOfKey(key) !== Space.USER) return;
    const length = typeLengthOfKey(key);
    const last = this.last.type;
    // The same type as the last call: compared in place, without slicing the key.
    const metrics =
      last.length === length && key.startsWith(last, KEY_TYPE_START) ? this.last.metrics : this.of(key.slice(KEY_TYPE_START, KEY_TYPE_START + length));
    if (access === 'read') metrics.stateReads++;
    else if (access === 'miss') metrics.stateCacheMisses++;
    else metrics.stateWrites++;
  }

  snapshot(): Record<string, FunctionTypeMetrics> {
    return Object.fromEntries([...this.types].map(([type, m]) => [utf8(type), { ...m, handlerBuckets: [...m.handlerBuckets] }]));
  }
}

function newMetrics(): FunctionTypeMetrics {
  return { invocations: 0, failures: 0, handlerBuckets: new Array<number>(HANDLER_BUCKETS_MS.length + 1).fill(0), handlerMsSum: 0, stateReads: 0, stateCacheMisses: 0, stateWrites: 0 };
}

const ASCII = /^[ -~]*$/;
/** A type name as state keys hold it: its UTF-8 bytes as a latin1 string (printable ASCII is itself). */
const latin1 = (s: string): string => (ASCII.test(s) ? s : Buffer.from(s, 'utf8').toString('latin1'));
const utf8 = (s: string): string => (ASCII.test(s) ? s : Buffer.from(s, 'latin1').toString('utf8'));

/** Time spent blocked, per reason: a router marks whether it is blocked each time it tries to read. */
export class BlockedClock<R extends string> {
  private since = 0;
  private reason: R | undefined;
  private readonly totals = new Map<R, number>();

  mark(reason: R | undefined): void {
    if (reason === this.reason) return;
    const now = performance.now();
    if (this.reason !== undefined) this.totals.set(this.reason, (this.totals.get(this.reason) ?? 0) + now - this.since);
    this.reason = reason;
    this.since = now;
  }

  /** Total ms blocked for `reason`, the current spell included. */
  ms(reason: R): number {
    const current = this.reason === reason ? performance.now() - this.since : 0;
    return (this.totals.get(reason) ?? 0) + current;
  }
}

/** A worker thread's own figures: event-loop utilisation over the last second, heap, state on disk. */
export class ThreadStats {
  private last = performance.eventLoopUtilization();
  private utilisation = 0;
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly stateLocation: string | undefined) {
    this.timer = setInterval(() => {
      const now = performance.eventLoopUtilization();
      this.utilisation = performance.eventLoopUtilization(now, this.last).utilization;
      this.last = now;
    }, 1000);
    this.timer.unref();
  }

  private disk = { bytes: 0, at: -Infinity };

  read(): { eventLoopUtilization: number; heapUsedBytes: number; stateBytesOnDisk: number } {
    // Listing the LevelDB folder costs a stat per file: at most once a second, however often metrics are asked for (tests poll every few ms).
    const now = performance.now();
    if (this.stateLocation !== undefined && now - this.disk.at >= 1000) this.disk = { bytes: folderBytes(this.stateLocation), at: now };
    return { eventLoopUtilization: this.utilisation, heapUsedBytes: getHeapStatistics().used_heap_size, stateBytesOnDisk: this.disk.bytes };
  }

  close(): void {
    clearInterval(this.timer);
  }
}

/** Bytes of the files in a folder tree (LevelDB compacts and deletes files meanwhile: those are skipped). */
function folderBytes(folder: string): number {
  let total = 0;
  let entries;
  try {
    entries = readdirSync(folder, { withFileTypes: true });
  } catch {
    return 0;
  }
  for (const entry of entries) {
    const path = join(folder, entry.name);
    try {
      total += entry.isDirectory() ? folderBytes(path) : statSync(path).size;
    } catch {
      // Removed by a compaction since the listing.
    }
  }
  return total;
}
