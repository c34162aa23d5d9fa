/** Deletions after which a TransientMap moves its entries to a fresh table. */
const REBUILD_EVERY = 4096;

/**
 * A Map for entries that come and go fast (one per transaction or per held instance), whose hash
 * table is moved to a fresh one every few thousand deletions.
 *
 * Why: V8 allocates a rehashed table in the generation of the table it replaces, and the dead table's
 * pointers stay in the old-to-new remembered set, which a scavenge treats as roots until the next full
 * GC. Once a churning Map's table is in old space, every entry it held at a rehash (with all it refers
 * to) is copied and promoted: with one entry per transaction, 2-4 MB per scavenge and 7-11 ms pauses
 * in ycsb-t. A fresh table starts young, and while entries churn the next rehash replaces it before a
 * scavenge can promote it.
 *
 * Do not modify it while iterating: after a rebuild the iteration goes on over the old table.
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
