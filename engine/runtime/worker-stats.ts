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
import { Space } from '../state/state-keys.js';

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
  private readonly types = new Map<string, FunctionTypeMetrics>();

  private of(type: string): FunctionTypeMetrics {
    let metrics = this.types.get(type);
    if (metrics === undefined) {
      metrics = { invocations: 0, failures: 0, handlerBuckets: new Array<number>(HANDLER_BUCKETS_MS.length + 1).fill(0), handlerMsSum: 0, stateReads: 0, stateCacheMisses: 0, stateWrites: 0 };
      this.types.set(type, metrics);
    }
    return metrics;
  }

  /** Registers the job's function types, so each has samples (zeros) before its first invocation. */
  declare(types: Iterable<string>): void {
    for (const type of types) this.of(type);
  }

  /** An invocation of `type` that started at `startedAt` (performance.now()) has settled. */
  invoked(type: string, startedAt: number, failed: boolean): void {
    const metrics = this.of(type);
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
    const type = typeOfUserKey(key);
    if (type === undefined) return;
    const metrics = this.of(type);
    if (access === 'read') metrics.stateReads++;
    else if (access === 'miss') metrics.stateCacheMisses++;
    else metrics.stateWrites++;
  }

  snapshot(): Record<string, FunctionTypeMetrics> {
    return Object.fromEntries([...this.types].map(([type, m]) => [type, { ...m, handlerBuckets: [...m.handlerBuckets] }]));
  }
}

/** The function type of a user-state key (layout in state-keys.ts), undefined for engine keys. */
function typeOfUserKey(key: string): string | undefined {
  if (key.charCodeAt(2) !== Space.USER) return undefined;
  const length = (key.charCodeAt(3) << 8) | key.charCodeAt(4);
  const type = key.slice(5, 5 + length);
  // Keys are latin1 strings of UTF-8 bytes: printable ASCII (nearly every type name) is itself.
  return /^[ -~]*$/.test(type) ? type : Buffer.from(type, 'latin1').toString('utf8');
}

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

  read(): { eventLoopUtilization: number; heapUsedBytes: number; stateBytesOnDisk: number } {
    return { eventLoopUtilization: this.utilisation, heapUsedBytes: getHeapStatistics().used_heap_size, stateBytesOnDisk: this.stateLocation === undefined ? 0 : folderBytes(this.stateLocation) };
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
