import type { StateBackend, StateSnapshot } from './state-backend.js';
import { fromBytes, prefixEnd, toBytes } from './state-keys.js';

interface Taken {
  entries: Map<string, CacheEntry> | Array<readonly [string, CacheEntry]>;
  /** Keys with their values as of the take (an entry may be rewritten before the write runs). */
  batch: Array<[string, Uint8Array | null]>;
}

/** When `flushSoon` writes: a write may wait in the cache for `intervalMs`, or until `maxDirty` wait. */
export interface FlushPolicy {
  /** How long a key stays dirty before it is written (written about `intervalMs` to `1.05 * intervalMs` after its first unwritten change). */
  intervalMs: number;
  maxDirty: number;
  /** A background write failed; its entries are dirty again, so a later flush retries them. */
  onError(error: unknown): void;
}

/**
 * Entries per backend write: a flush of many entries goes out in several batches, each after an
 * event-loop turn, so building one never stalls the worker for long.
 */
const WRITE_CHUNK = 1000;

/** Entries `start` to `end` (exclusive) with their keys as bytes, ready for the backend. */
function asBytes(entries: ReadonlyArray<readonly [string, Uint8Array | null]>, start: number, end: number): Array<[Uint8Array, Uint8Array | null]> {
  const out: Array<[Uint8Array, Uint8Array | null]> = [];
  for (let i = start; i < Math.min(end, entries.length); i++) out.push([toBytes(entries[i]![0]), entries[i]![1]]);
  return out;
}

/** The write of `taken` completed or failed: its entries may be evicted again. */
function writeEnded(taken: Taken): void {
  for (const [, entry] of taken.entries) entry.writing--;
}

/**
 * A cut of the state: a frozen backend snapshot, and what changed since the previous cut (the value
 * written last per key; null: deleted), or undefined when that is not known (tracking is off, or more
 * keys changed than it keeps): then only the whole snapshot describes the cut.
 */
export interface StateCut {
  snapshot: StateSnapshot;
  changes: Map<string, Uint8Array | null> | undefined;
}

interface CacheEntry {
  /** null: known to be absent (or deleted). */
  value: Uint8Array | null;
  dirty: boolean;
  /** When the entry became dirty (ms), while it is: its write is due `intervalMs` later. */
  dirtySince: number;
  /**
   * Writes taken with this entry that have not completed: such an entry is not evicted, or a read
   * could fetch the older value from the backend before the write lands and cache it as clean.
   */
  writing: number;
}

/**
 * A write-back cache in front of a StateBackend. Reads hit the cache or fall through to a synchronous
 * backend read; writes only mark entries dirty; `flush` writes every dirty entry.
 * Only clean entries whose write has landed are evicted, so nothing written is ever lost or read stale
 * before it reaches the backend.
 *
 * Between cuts the backend's content promises nothing (a failed attempt restores a checkpoint; a stop
 * flushes everything), so `flushSoon` lets writes wait, as Kafka Streams' record cache does until a
 * commit: a key written many times is written once, and the backend gets fewer, larger batches.
 */
export class StateStore {
  private readonly cache = new Map<string, CacheEntry>();
  /** The dirty entries, so a flush touches only them, not the whole cache. */
  private dirty = new Map<string, CacheEntry>();
  private flushing: Promise<void> | undefined;
  /** Keys written since the last cut, with their last value (for incremental checkpoints). */
  private changes: Map<string, Uint8Array | null> | undefined;
  private flushTimer: NodeJS.Timeout | undefined;
  private closed = false;
  /** The write of restored entries (see `preload`) while it runs, with the key prefixes it holds. */
  private preloading: { write: Promise<void>; prefixes: Set<string>; entries: number } | undefined;
  /** Told of every read (and whether it missed the cache) and write: per-function-type metrics. */
  observer: ((key: string, access: 'read' | 'miss' | 'write') => void) | undefined;

  /**
   * `trackChanges`: the most changed keys remembered between cuts (0: none), so a checkpoint can
   * write only what changed; beyond it the next cut reports its changes as unknown.
   */
  constructor(
    readonly backend: StateBackend,
    private readonly capacity: number,
    private readonly trackChanges = 0,
    private readonly policy: FlushPolicy | undefined = undefined,
  ) {
    this.changes = trackChanges > 0 ? new Map() : undefined;
  }

  get(key: string): Uint8Array | undefined {
    let entry = this.cache.get(key);
    this.observer?.(key, 'read');
    if (entry === undefined) {
      this.observer?.(key, 'miss');
      entry = { value: this.backend.getSync(toBytes(key)) ?? null, dirty: false, dirtySince: 0, writing: 0 };
      this.cache.set(key, entry);
      // Reads fill the cache too: bound it here, not only after writes (a read-only job never flushes).
      if (this.cache.size > this.capacity * 1.1) this.evict();
    }
    return entry.value ?? undefined;
  }

  put(key: string, value: Uint8Array | null): void {
    this.observer?.(key, 'write');
    this.set(key, value);
  }

  /** Sets an entry's value and marks it dirty (a write of the engine's own, not counted as the function's). */
  private set(key: string, value: Uint8Array | null): void {
    const entry = this.cache.get(key);
    if (entry === undefined) {
      const created = { value, dirty: true, dirtySince: performance.now(), writing: 0 };
      this.cache.set(key, created);
      this.dirty.set(key, created);
    } else {
      entry.value = value;
      if (!entry.dirty) this.markDirty(key, entry);
    }
  }

  /**
   * Restored entries, readable at once: they enter the cache as entries being written, and are
   * written to the backend in the background, so a restore does not wait for LevelDB to take them
   * (most of its time); once written, they leave the cache. Every later write and cut goes after this one, as after any running write;
   * if it fails, the entries are dirty again and the next flush retries them. Call it on a store
   * that has not been written to (a restore into an empty backend): the entries are not changes.
   */
  preload(entries: ReadonlyArray<readonly [string, Uint8Array]>): void {
    if (entries.length === 0) return;
    if (this.flushing !== undefined || this.dirty.size > 0) throw new Error('preload: the store has writes of its own; preload only into a store just opened on an empty backend');
    const taken: { entries: Array<readonly [string, CacheEntry]>; batch: Array<[string, Uint8Array | null]> } = { entries: [], batch: [] };
    // [key group][space] of each key: scanPrefix need not wait for this write unless it holds the prefix.
    const heads = new Set<number>();
    for (const [key, value] of entries) {
      const entry: CacheEntry = { value, dirty: false, dirtySince: 0, writing: 1 };
      this.cache.set(key, entry);
      taken.entries.push([key, entry]);
      taken.batch.push([key, value]);
      heads.add((key.charCodeAt(0) << 16) | (key.charCodeAt(1) << 8) | key.charCodeAt(2));
    }
    const prefixes = new Set([...heads].map((head) => String.fromCharCode(head >>> 16, (head >>> 8) & 0xff, head & 0xff)));
    this.writeInBackground(taken);
    const write = this.flushing!;
    this.preloading = { write, prefixes, entries: taken.entries.length };
    void write.then(
      () => {
        this.preloading = undefined;
        // Written: they leave the cache (reads find them in the backend, as after any restore), and
        // with them the checkpoint file buffers their values are views of.
        for (const [key, entry] of taken.entries) {
          if (this.cache.get(key) === entry && !entry.dirty && entry.writing === 0) this.cache.delete(key);
        }
      },
      () => (this.preloading = undefined),
    );
  }

  get pendingWrites(): number {
    return this.dirty.size;
  }

  /** Writes all dirty entries in one backend batch. Concurrent calls coalesce; resolves when durable. */
  flush(): Promise<void> {
    if (this.flushing !== undefined) {
      // Entries dirtied since the running write began are not in it: this caller waits for the next
      // write, which takes them (with those of every other caller waiting meanwhile), and sees its outcome.
      return this.flushing.then(() => this.flush(), () => this.flush());
    }
    if (this.dirty.size === 0) return Promise.resolve();
    return this.startWrite(this.takeDirty());
  }

  /** Writes `taken` as the running write, which later flushes and cuts wait for. */
  private startWrite(taken: Taken): Promise<void> {
    const flushing: Promise<void> = this.write(taken).finally(() => {
      // Only if no later write (or cut) took its place meanwhile.
      if (this.flushing === flushing) this.flushing = undefined;
    });
    this.flushing = flushing;
    return flushing;
  }

  /**
   * Writes the dirty entries at once when the policy's `maxDirty` are waiting; else each entry about
   * `intervalMs` after it became dirty (no policy: at once). Failures go to the policy's `onError`
   * and are retried after the interval.
   *
   * Writes that are due go out every twentieth of the interval, a small batch each time, not all
   * dirty entries once per interval: a worker near its capacity has little time to spare, and the
   * one large write per second (about 5 ms of the worker's time plus LevelDB's thread) delayed every
   * message behind it for the 100 ms it took to catch up again (ycsb-t sagas at 80% of their maximum:
   * p99 about 60 ms with, 20-30 ms without that write).
   */
  flushSoon(): void {
    if (this.closed || this.dirty.size === 0) return;
    const policy = this.policy;
    // While a write runs, the next one is left to the timer: called every turn, chaining a flush
    // behind the running one each time would pile up waiters that then flush back to back.
    if ((policy === undefined || this.dirty.size >= policy.maxDirty) && this.flushing === undefined) {
      this.writeInBackground(this.takeDirty());
    } else {
      this.flushTimer ??= setTimeout(() => this.writeDue(), this.tickMs());
    }
  }

  /** Writes the entries dirty for the interval (a running write puts them off to the next tick); looks again a tick later while any are dirty. */
  private writeDue(): void {
    this.flushTimer = undefined;
    if (this.closed) return;
    if (this.flushing === undefined) {
      const taken = this.takeDirty(performance.now() - (this.policy?.intervalMs ?? 0));
      if (taken.batch.length > 0) this.writeInBackground(taken);
    }
    if (this.dirty.size > 0) this.flushTimer = setTimeout(() => this.writeDue(), this.tickMs());
  }

  private tickMs(): number {
    return Math.max(1, Math.round((this.policy?.intervalMs ?? 0) / 20));
  }

  private writeInBackground(taken: Taken): void {
    this.startWrite(taken).catch((error: unknown) => {
      if (this.closed) return;
      if (this.policy === undefined) return; // no policy: the next flushSoon tries again
      this.policy.onError(error);
      // The entries are dirty again (since now): a tick takes them after the interval, even if nothing is written meanwhile.
      this.flushTimer ??= setTimeout(() => this.writeDue(), this.tickMs());
    });
  }

  /**
   * Stops background writes (a running one ends after its current batch) and closes the backend;
   * what is still dirty is not written: call `flushAll` first to keep it.
   */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    await this.flushing?.catch(() => {});
    await this.backend.close();
  }

  /** Resolves once nothing is dirty and no write is running. */
  async flushAll(): Promise<void> {
    while (this.dirty.size > 0 || this.flushing !== undefined) await this.flush();
  }

  /**
   * A consistent cut: takes every dirty entry now (plus `extra` writes that go to the snapshot only,
   * e.g. engine state that lives on the heap), writes them after any running write, and resolves with
   * a backend snapshot of exactly that state. Later writes wait until the snapshot is taken.
   */
  snapshot(extra: ReadonlyArray<readonly [string, Uint8Array | null]> = []): Promise<StateCut> {
    const taken = this.takeDirty();
    this.recordChanges(extra);
    const changes = this.changes;
    this.changes = this.trackChanges > 0 ? new Map() : undefined;
    const previous = this.flushing ?? Promise.resolve();
    const cut = (async (): Promise<StateCut> => {
      // If the running write fails, its entries are dirty again and not in `taken`: this cut would
      // miss them, so it fails too (the checkpoint is aborted; the next one takes them).
      try {
        await previous;
      } catch (error) {
        this.markDirtyAgain(taken);
        writeEnded(taken);
        throw error;
      }
      await this.write(taken, extra);
      let snapshot: StateSnapshot | undefined;
      try {
        snapshot = this.backend.snapshot();
      } finally {
        // The extra entries are only for the snapshot: remove them from the live state again (a
        // change of the next cut). Left there, every later cut would hold them: stale transaction
        // records and locks, and parked envelopes that a restore runs again.
        if (extra.length > 0) await this.removeExtra(extra, snapshot);
      }
      return { snapshot, changes };
    })();
    // Until the snapshot is taken, every later flush waits behind this one.
    const flushing: Promise<void> = cut
      .then(
        () => {},
        () => {},
      )
      .finally(() => {
        if (this.flushing === flushing) this.flushing = undefined;
      });
    this.flushing = flushing;
    return cut;
  }

  /**
   * Deletes a cut's snapshot-only entries from the live state. If that write fails (a full disk),
   * the cut fails, and the deletes wait as dirty entries, so the next write or cut makes them before
   * anything else.
   */
  private async removeExtra(extra: ReadonlyArray<readonly [string, Uint8Array | null]>, snapshot: StateSnapshot | undefined): Promise<void> {
    const deletes = extra.map(([key]) => [key, null] as const);
    try {
      await this.backend.write(asBytes(deletes, 0, deletes.length));
    } catch (error) {
      for (const [key] of extra) this.set(key, null);
      await snapshot?.close().catch(() => {});
      throw error;
    }
    this.recordChanges(deletes);
  }

  /**
   * The dirty entries with their values as of now (an entry may be rewritten before the write runs);
   * with `dirtyBefore`, only those dirty since before then (the oldest, as the map keeps the order in
   * which entries became dirty).
   */
  private takeDirty(dirtyBefore?: number): Taken {
    let entries = this.dirty;
    if (dirtyBefore === undefined) this.dirty = new Map();
    else {
      entries = new Map();
      for (const [key, entry] of this.dirty) {
        if (entry.dirtySince > dirtyBefore) break;
        entries.set(key, entry);
        this.dirty.delete(key);
      }
    }
    const batch: Array<[string, Uint8Array | null]> = [];
    for (const [key, entry] of entries) {
      entry.dirty = false;
      entry.writing++;
      batch.push([key, entry.value]);
      this.changes?.set(key, entry.value);
    }
    this.boundChanges();
    return { entries, batch };
  }

  private recordChanges(entries: ReadonlyArray<readonly [string, Uint8Array | null]>): void {
    if (this.changes === undefined) return;
    for (const [key, value] of entries) this.changes.set(key, value);
    this.boundChanges();
  }

  /** Too many changed keys to keep: the next cut is described by its snapshot alone. */
  private boundChanges(): void {
    if (this.changes !== undefined && this.changes.size > this.trackChanges) this.changes = undefined;
  }

  /**
   * Writes the taken entries in chunks, then `extra` (snapshot-only entries) in one batch of its own,
   * so a failure never leaves part of them in the live state.
   */
  private async write(taken: Taken, extra: ReadonlyArray<readonly [string, Uint8Array | null]> = []): Promise<void> {
    const { batch } = taken;
    try {
      for (let start = 0; start < batch.length; start += WRITE_CHUNK) {
        if (this.closed) throw new Error('the state store was closed during a write');
        await this.backend.write(asBytes(batch, start, start + WRITE_CHUNK));
      }
      if (extra.length > 0) await this.backend.write(asBytes(extra, 0, extra.length));
    } catch (error) {
      this.markDirtyAgain(taken);
      throw error;
    } finally {
      writeEnded(taken);
    }
    this.evict();
  }

  /** Not written: dirty again (unless rewritten meanwhile), so the next flush retries them. */
  private markDirtyAgain(taken: Taken): void {
    for (const [key, entry] of taken.entries) {
      if (!entry.dirty) this.markDirty(key, entry);
    }
  }

  private markDirty(key: string, entry: CacheEntry): void {
    entry.dirty = true;
    entry.dirtySince = performance.now();
    this.dirty.set(key, entry);
  }

  private evict(): void {
    // Restored entries being written cannot be evicted and may exceed the capacity by themselves: the
    // capacity bounds the others, and a pass over a cache they fill would find nothing to evict.
    const pinned = this.preloading?.entries ?? 0;
    if (this.cache.size - pinned <= this.capacity) return;
    const target = Math.floor(this.capacity * 0.9) + pinned;
    for (const [key, entry] of this.cache) {
      if (this.cache.size <= target) break;
      if (!entry.dirty && entry.writing === 0) this.cache.delete(key);
    }
  }

  /**
   * Every entry whose key starts with `prefix`, in key order, as reads see them now, without waiting
   * for a flush: the backend overlaid with the cache entries not known to be in it (dirty or being
   * written). Taken in one turn, then read from a backend iterator (its own snapshot) opened in the
   * same turn, so a write landing during the scan changes nothing. A pass over the cache: meant for
   * whole-collection reads of map state, not per-invocation use.
   */
  async *scanLive(prefix: string): AsyncIterable<[string, Uint8Array]> {
    const overlay = new Map<string, Uint8Array | null>();
    for (const [key, entry] of this.cache) {
      if ((entry.dirty || entry.writing > 0) && key.startsWith(prefix)) overlay.set(key, entry.value);
    }
    const stored = this.backend.scan(toBytes(prefix), toBytes(prefixEnd(prefix)))[Symbol.asyncIterator]();
    // Started now, in this turn: the iterator (and its snapshot) opens before any other write lands.
    let next = stored.next();
    const pending = [...overlay.keys()].sort();
    let p = 0;
    for (;;) {
      const item = await next;
      const key = item.done === true ? undefined : fromBytes(item.value[0]);
      // Overlay keys before this stored key (or all that are left).
      while (p < pending.length && (key === undefined || pending[p]! < key)) {
        const value = overlay.get(pending[p++]!);
        if (value !== null && value !== undefined) yield [pending[p - 1]!, value];
      }
      if (key === undefined) return;
      if (overlay.has(key)) {
        if (pending[p] === key) p++;
        const value = overlay.get(key);
        if (value !== null && value !== undefined) yield [key, value];
      } else yield [key, item.value![1]];
      next = stored.next();
    }
  }

  /** Every entry whose key starts with `prefix`, in key order, including unflushed writes. */
  async *scanPrefix(prefix: string): AsyncIterable<[string, Uint8Array]> {
    // Restored entries still being written in the background hold none of this prefix's keys (the
    // engine's own, read at start): they need not be waited for.
    const preloading = this.preloading;
    const unrelated =
      preloading !== undefined &&
      this.dirty.size === 0 &&
      this.flushing === preloading.write &&
      ![...preloading.prefixes].some((p) => p.startsWith(prefix) || prefix.startsWith(p));
    if (!unrelated) await this.flushAll();
    for await (const [key, value] of this.backend.scan(toBytes(prefix), toBytes(prefixEnd(prefix)))) {
      yield [fromBytes(key), value];
    }
  }
}
