import type { StateBackend, StateSnapshot } from './state-backend.js';
import { fromBytes, toBytes } from './state-keys.js';

/** Keeps state on the heap; lost when the worker ends. For tests and engine-only benchmarks. */
export class MemoryBackend implements StateBackend {
  readonly kind = 'memory' as const;
  private readonly entries = new Map<string, Uint8Array>();

  async open(): Promise<void> {}

  getSync(key: Uint8Array): Uint8Array | undefined {
    return this.entries.get(fromBytes(key));
  }

  async write(entries: ReadonlyArray<readonly [Uint8Array, Uint8Array | null]>): Promise<void> {
    for (const [key, value] of entries) {
      if (value === null) this.entries.delete(fromBytes(key));
      else this.entries.set(fromBytes(key), Uint8Array.from(value));
    }
  }

  scan(gte: Uint8Array, lt: Uint8Array): AsyncIterable<[Uint8Array, Uint8Array]> {
    return scanMap(this.entries, gte, lt);
  }

  snapshot(): StateSnapshot {
    const frozen = new Map(this.entries);
    return {
      async *scanBatches(gte, lt) {
        const batch: Array<[Uint8Array, Uint8Array]> = [];
        for await (const entry of scanMap(frozen, gte, lt)) batch.push(entry);
        yield batch;
      },
      close: async () => {},
    };
  }

  async close(): Promise<void> {}
}

async function* scanMap(entries: ReadonlyMap<string, Uint8Array>, gte: Uint8Array, lt: Uint8Array): AsyncIterable<[Uint8Array, Uint8Array]> {
  const from = fromBytes(gte);
  const to = fromBytes(lt);
  const keys = [...entries.keys()].filter((k) => k >= from && k < to).sort();
  for (const key of keys) {
    const value = entries.get(key);
    if (value !== undefined) yield [toBytes(key), value];
  }
}
