/** Deletions after which a TransientMap moves its entries to a fresh table. */
const REBUILD_EVERY = 4096;

/**
 * A Map for entries that come and go fast (one per transaction or per held instance), whose table
 * is rebuilt every few thousand deletions so it stays in V8's young generation.
 *
 * Why: V8 rehashes a Map whose table is in old space into another old-space table, and the dead
 * table keeps pointing at every entry it held. Until the next full GC, a scavenge takes those
 * pointers for live ones, so every entry that was in the map at a rehash (with all it refers to) is
 * copied and then promoted. With one entry per transaction that was nearly every transaction: in
 * ycsb-t, 2-4 MB promoted per scavenge and 7-11 ms pauses. A fresh table starts young and, while
 * entries churn, is replaced by the next rehash before it can be promoted.
 *
 * Do not delete while iterating: a rebuild would leave the iteration on the old table.
 */
export class TransientMap<K, V> implements Iterable<[K, V]> {
  private map = new Map<K, V>();
  private deletions = 0;

  get size(): number {
    return this.map.size;
  }

  get(key: K): V | undefined {
    return this.map.get(key);
  }

  has(key: K): boolean {
    return this.map.has(key);
  }

  set(key: K, value: V): this {
    this.map.set(key, value);
    return this;
  }

  delete(key: K): boolean {
    if (!this.map.delete(key)) return false;
    if (++this.deletions >= REBUILD_EVERY) {
      this.deletions = 0;
      this.map = new Map(this.map);
    }
    return true;
  }

  clear(): void {
    this.map = new Map();
    this.deletions = 0;
  }

  keys(): IterableIterator<K> {
    return this.map.keys();
  }

  values(): IterableIterator<V> {
    return this.map.values();
  }

  entries(): IterableIterator<[K, V]> {
    return this.map.entries();
  }

  [Symbol.iterator](): IterableIterator<[K, V]> {
    return this.map.entries();
  }
}
