import type { StateBackend } from './state-backend.js';
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

  async *scan(gte: Uint8Array, lt: Uint8Array): AsyncIterable<[Uint8Array, Uint8Array]> {
    const from = fromBytes(gte);
    const to = fromBytes(lt);
    const keys = [...this.entries.keys()].filter((k) => k >= from && k < to).sort();
    for (const key of keys) {
      const value = this.entries.get(key);
      if (value !== undefined) yield [toBytes(key), value];
    }
  }

  async close(): Promise<void> {}
}
