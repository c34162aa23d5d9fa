import { ClassicLevel } from 'classic-level';
import type { StateBackend, StateSnapshot } from './state-backend.js';

export class LevelDbBackend implements StateBackend {
  readonly kind = 'leveldb' as const;
  private readonly db: ClassicLevel<Uint8Array, Uint8Array>;

  constructor(location: string) {
    this.db = new ClassicLevel<Uint8Array, Uint8Array>(location, { keyEncoding: 'view', valueEncoding: 'view' });
  }

  async open(): Promise<void> {
    await this.db.open();
  }

  getSync(key: Uint8Array): Uint8Array | undefined {
    return this.db.getSync(key) ?? undefined;
  }

  async write(entries: ReadonlyArray<readonly [Uint8Array, Uint8Array | null]>): Promise<void> {
    if (entries.length === 0) return;
    // A chained batch: building 1000 writes blocks the worker about 1.2 ms, against 3 ms for an
    // array of operations (whose properties the native side reads one by one). Atomic all the same.
    const batch = this.db.batch();
    for (const [key, value] of entries) {
      if (value === null) batch.del(key);
      else batch.put(key, value);
    }
    await batch.write();
  }

  async *scan(gte: Uint8Array, lt: Uint8Array): AsyncIterable<[Uint8Array, Uint8Array]> {
    for await (const batch of this.batches(gte, lt, undefined)) yield* batch;
  }

  snapshot(): StateSnapshot {
    const snapshot = this.db.snapshot();
    return {
      scanBatches: (gte, lt) => this.batches(gte, lt, snapshot),
      close: () => snapshot.close(),
    };
  }

  private async *batches(gte: Uint8Array, lt: Uint8Array, snapshot: ReturnType<ClassicLevel['snapshot']> | undefined): AsyncIterable<Array<[Uint8Array, Uint8Array]>> {
    // Large reads per call: classic-level's default stops a batch at 16 KiB, and each further batch
    // waits for an event-loop turn, which on a busy worker made a checkpoint of 2 MB take seconds.
    const iterator = this.db.iterator({ gte, lt, highWaterMarkBytes: 4 * 1024 * 1024, ...(snapshot === undefined ? {} : { snapshot }) });
    try {
      for (;;) {
        const entries = await iterator.nextv(5000);
        if (entries.length === 0) return;
        yield entries;
      }
    } finally {
      await iterator.close();
    }
  }

  async close(): Promise<void> {
    await this.db.close();
  }
}
