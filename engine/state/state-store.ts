import type { StateBackend } from './state-backend.js';
import { fromBytes, prefixEnd, toBytes } from './state-keys.js';

interface CacheEntry {
  /** null: known to be absent (or deleted). */
  value: Uint8Array | null;
  dirty: boolean;
}

/**
 * A write-back cache in front of a StateBackend. Reads hit the cache or fall through to a synchronous
 * backend read; writes only mark entries dirty; `flush` writes every dirty entry in one batch.
 * Only clean entries are evicted, so nothing written is ever lost before it reaches the backend.
 */
export class StateStore {
  private readonly cache = new Map<string, CacheEntry>();
  private dirtyCount = 0;
  private flushing: Promise<void> | undefined;

  constructor(
    readonly backend: StateBackend,
    private readonly capacity: number,
  ) {}

  get(key: string): Uint8Array | undefined {
    let entry = this.cache.get(key);
    if (entry === undefined) {
      entry = { value: this.backend.getSync(toBytes(key)) ?? null, dirty: false };
      this.cache.set(key, entry);
    }
    return entry.value ?? undefined;
  }

  put(key: string, value: Uint8Array | null): void {
    const entry = this.cache.get(key);
    if (entry === undefined) {
      this.cache.set(key, { value, dirty: true });
      this.dirtyCount++;
    } else {
      if (!entry.dirty) this.dirtyCount++;
      entry.value = value;
      entry.dirty = true;
    }
  }

  get pendingWrites(): number {
    return this.dirtyCount;
  }

  /** Writes all dirty entries in one backend batch. Concurrent calls coalesce; resolves when durable. */
  flush(): Promise<void> {
    if (this.flushing !== undefined) {
      // Entries dirtied since the running write began are not in it: this caller waits for the next
      // write, which takes them (with those of every other caller waiting meanwhile), and sees its outcome.
      return this.flushing.then(() => this.flush(), () => this.flush());
    }
    if (this.dirtyCount === 0) return Promise.resolve();
    this.flushing = this.writeDirty().finally(() => {
      this.flushing = undefined;
    });
    return this.flushing;
  }

  /** Resolves once nothing is dirty and no write is running. */
  async flushAll(): Promise<void> {
    while (this.dirtyCount > 0 || this.flushing !== undefined) await this.flush();
  }

  private async writeDirty(): Promise<void> {
    const batch: Array<[Uint8Array, Uint8Array | null]> = [];
    const written: CacheEntry[] = [];
    for (const [key, entry] of this.cache) {
      if (!entry.dirty) continue;
      batch.push([toBytes(key), entry.value]);
      entry.dirty = false;
      written.push(entry);
    }
    this.dirtyCount = 0;
    try {
      await this.backend.write(batch);
    } catch (error) {
      // Not written: mark dirty again (unless rewritten meanwhile) so the next flush retries.
      for (const entry of written) {
        if (!entry.dirty) {
          entry.dirty = true;
          this.dirtyCount++;
        }
      }
      throw error;
    }
    this.evict();
  }

  private evict(): void {
    if (this.cache.size <= this.capacity) return;
    const target = Math.floor(this.capacity * 0.9);
    for (const [key, entry] of this.cache) {
      if (this.cache.size <= target) break;
      if (!entry.dirty) this.cache.delete(key);
    }
  }

  /** Every entry whose key starts with `prefix`, in key order, including unflushed writes. */
  async *scanPrefix(prefix: string): AsyncIterable<[string, Uint8Array]> {
    await this.flushAll();
    for await (const [key, value] of this.backend.scan(toBytes(prefix), toBytes(prefixEnd(prefix)))) {
      yield [fromBytes(key), value];
    }
  }
}
