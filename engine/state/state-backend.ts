/**
 * Where a worker's keyed state lives. Keys and values are bytes; the layout is state-keys.ts's.
 * Implementations: LevelDB (classic-level) for real jobs, memory for tests and benchmarks of the
 * engine without disk. Both pass test/engine/state/state-backend.suite.ts.
 */
export interface StateBackend {
  readonly kind: 'leveldb' | 'memory';
  open(): Promise<void>;
  /** A synchronous point read: the hot path must never await a read per invocation. */
  getSync(key: Uint8Array): Uint8Array | undefined;
  /** Applies puts (value) and deletes (null) atomically. */
  write(entries: ReadonlyArray<readonly [key: Uint8Array, value: Uint8Array | null]>): Promise<void>;
  /** Entries with gte <= key < lt, in key order. */
  scan(gte: Uint8Array, lt: Uint8Array): AsyncIterable<[Uint8Array, Uint8Array]>;
  /** A frozen view of the state as of now; later writes do not change it. */
  snapshot(): StateSnapshot;
  close(): Promise<void>;
}

export interface StateSnapshot {
  /** Entries with gte <= key < lt, in key order, in batches (cheaper per entry for large scans). */
  scanBatches(gte: Uint8Array, lt: Uint8Array): AsyncIterable<Array<[Uint8Array, Uint8Array]>>;
  close(): Promise<void>;
}
