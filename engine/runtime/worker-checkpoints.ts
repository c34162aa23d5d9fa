import { type FileHandle, mkdir, open } from 'node:fs/promises';
import { join } from 'node:path';
import { forEachEntry, KeyGroupFileReader, type KeyGroupIndex, writeKeyGroupFile } from '../checkpoint/key-group-file.js';
import { checkpointPath, type StateFile, type WorkerCheckpoint } from '../checkpoint/metadata.js';
import { describeError } from '../errors.js';
import type { KeyGroupRange } from '../key-groups.js';
import type { StateCut, StateStore } from '../state/state-store.js';
import { parkedKey, parkedSeqOf, Space, toBytes } from '../state/state-keys.js';
import type { FromWorker, SplitPosition } from './worker-protocol.js';

/** The feedback log in key-group order, each entry keyed by its key group (the file's order key). */
function* logEntries(groups: readonly number[], log: Map<number, Uint8Array[]>): Iterable<readonly [Uint8Array, Uint8Array]> {
  for (const kg of groups) {
    const key = Uint8Array.of(kg >>> 8, kg & 0xff);
    for (const bytes of log.get(kg) ?? []) yield [key, bytes];
  }
}

function keyGroups(range: KeyGroupRange): number[] {
  return Array.from({ length: range.end - range.start + 1 }, (_, i) => range.start + i);
}

function keyGroupBounds(kg: number): [Uint8Array, Uint8Array] {
  return [Uint8Array.of(kg >>> 8, kg & 0xff), kg === 0xffff ? Uint8Array.of(0xff, 0xff, 0xff) : Uint8Array.of((kg + 1) >>> 8, (kg + 1) & 0xff)];
}

/** A full state file at least this often in a worker's chain, so a restore reads a bounded number of files. */
export const FULL_CHECKPOINT_EVERY = 10;

/**
 * The chain's deltas add up to more bytes than its full file: a restore would read and merge more
 * than a full file holds (a job that rewrites most keys between checkpoints), so the next is full.
 */
function deltasOutweighFull(chain: readonly StateFile[]): boolean {
  let deltaBytes = 0;
  for (const file of chain) if (file.delta) deltaBytes += file.bytes ?? 0;
  return deltaBytes > (chain[0]?.bytes ?? 0);
}

/** Delta entries: a put is the value behind a 1 byte, a delete is a lone 0 byte. */
const PUT = 1;
const DELETE = 0;

function deltaEntries(changes: Map<string, Uint8Array | null>): Array<readonly [Uint8Array, Uint8Array]> {
  // Keys are latin1 strings of the key bytes: string order is byte order, which is key-group order.
  const keys = [...changes.keys()].sort();
  return keys.map((key) => {
    const value = changes.get(key)!;
    if (value === null) return [toBytes(key), Uint8Array.of(DELETE)] as const;
    const entry = new Uint8Array(value.byteLength + 1);
    entry[0] = PUT;
    entry.set(value, 1);
    return [toBytes(key), entry] as const;
  });
}

interface Pending {
  positions: Promise<SplitPosition[]>;
  setPositions: (positions: SplitPosition[]) => void;
  aborted: boolean;
}

/**
 * A worker's side of checkpoints: once the dispatcher has cut checkpoint n, writes the state
 * snapshot of the owned key groups and, when every feedback channel has delivered its barrier, the
 * feedback log, both key-group-ordered and fsynced, in the background; then acknowledges to the job
 * manager with the router's positions.
 */
export class WorkerCheckpoints {
  private readonly pending = new Map<number, Pending>();
  /**
   * The state files of the last checkpoint acknowledged here: a full one, then deltas. The next
   * checkpoint adds its delta, unless it must be full: at the start, after an abort (the chain may
   * hold a delta no complete checkpoint has), every FULL_CHECKPOINT_EVERY, or once the deltas
   * outweigh the full file.
   */
  private chain: StateFile[] = [];
  private abortedUpTo = 0;

  constructor(
    private readonly config: {
      worker: number;
      keyGroups: KeyGroupRange;
      directory: string | undefined;
      post: (message: FromWorker) => void;
      log: (line: string) => void;
    },
  ) {}

  private entry(id: number): Pending {
    let pending = this.pending.get(id);
    if (pending === undefined) {
      let setPositions!: (positions: SplitPosition[]) => void;
      const positions = new Promise<SplitPosition[]>((resolve) => (setPositions = resolve));
      pending = { positions, setPositions, aborted: false };
      this.pending.set(id, pending);
    }
    return pending;
  }

  /** The router emitted barrier `id` at these positions. */
  positions(id: number, positions: SplitPosition[]): void {
    this.entry(id).setPositions(positions);
  }

  cut(id: number, cut: Promise<StateCut>, feedbackLog: Promise<Map<number, Uint8Array[]>>): void {
    const pending = this.entry(id);
    // A cut of a checkpoint aborted before it got here (its barriers came late): nothing to write.
    if (id <= this.abortedUpTo) pending.aborted = true;
    this.write(id, cut, feedbackLog, pending).catch((error: unknown) => {
      // Declined (a full disk, say): the job manager aborts the checkpoint at once and goes on.
      this.chain = [];
      if (pending.aborted) return;
      this.config.post({ type: 'checkpoint-declined', id, reason: `worker ${this.config.worker} could not write its part: ${describeError(error)}` });
    });
  }

  abort(id: number): void {
    const pending = this.pending.get(id);
    if (pending !== undefined) pending.aborted = true;
    this.pending.delete(id);
    this.abortedUpTo = Math.max(this.abortedUpTo, id);
    // Its delta may be in the chain, or its changes consumed by its cut: start again with a full one.
    this.chain = [];
  }

  private async write(id: number, cutPromise: Promise<StateCut>, feedbackLog: Promise<Map<number, Uint8Array[]>>, pending: Pending): Promise<void> {
    const { worker, directory } = this.config;
    const { snapshot, changes } = await cutPromise;
    try {
      if (directory === undefined || pending.aborted) {
        if (directory !== undefined) this.chain = [];
        return;
      }
      const full = changes === undefined || this.chain.length === 0 || this.chain.length >= FULL_CHECKPOINT_EVERY || deltasOutweighFull(this.chain);
      const base = full ? [] : this.chain;
      const folder = checkpointPath(directory, id);
      await mkdir(folder, { recursive: true });
      const groups = keyGroups(this.config.keyGroups);
      const file = `worker-${worker}.${full ? 'state' : 'delta'}`;
      const { start, end } = this.config.keyGroups;
      const written = full
        ? await writeKeyGroupFile(join(folder, file), groups, snapshot.scanBatches(keyGroupBounds(start)[0], keyGroupBounds(end)[1]))
        : await writeKeyGroupFile(join(folder, file), groups, [deltaEntries(changes)]);
      await snapshot.close();
      const log = await feedbackLog;
      if (pending.aborted) return;
      const logFile = `worker-${worker}.log`;
      const logged = await writeKeyGroupFile(join(folder, logFile), groups, [[...logEntries(groups, log)]]);
      const positions = await pending.positions;
      if (pending.aborted) return;
      const state = [...base, { checkpoint: id, file, index: written.index, delta: !full, bytes: written.bytes, crc32: written.crc32 }];
      const part: WorkerCheckpoint = {
        worker,
        keyGroups: { ...this.config.keyGroups },
        state,
        logFile,
        logIndex: logged.index,
        logBytes: logged.bytes,
        logCrc32: logged.crc32,
        bytes: written.bytes + logged.bytes,
      };
      this.chain = state;
      this.config.post({ type: 'checkpoint-ack', id, part, positions });
    } finally {
      this.pending.delete(id);
      await snapshot.close().catch(() => {});
    }
  }
}

/** A view of part of a checkpoint section (a plain Uint8Array: cheaper to make than a Buffer's subarray). */
function view(section: Buffer, start: number, end: number): Uint8Array {
  return new Uint8Array(section.buffer, section.byteOffset + start, end - start);
}

/** Entries per backend write during a restore: large batches, few event-loop turns. */
const RESTORE_BATCH = 10_000;

/**
 * Loads the key groups of `range` from the checkpoint parts that hold them (any worker count may
 * have written it) into a store just opened on an empty backend. The feedback envelopes that were in flight at the cut are
 * stored as parked work behind the checkpoint's own parked envelopes (so they run first, in that
 * order, and a checkpoint taken before they have run still holds them). Returns how many were
 * logged, `parked`: 0 only if the restored state holds no parked entry (nothing to replay),
 * `timers` and `transactions`: the entries of those spaces (0: nothing to load), and `entries`: the
 * state entries restored.
 * `givenUp()` is asked between key groups: once it holds, the restore stops where it is (the attempt
 * was given up; its state is thrown away).
 *
 * Writing into LevelDB is most of a restore's time, so each key is written once (a key group's full
 * file and its deltas are merged first: a key rewritten by every delta, or put then deleted, is one
 * write or none, as the backend is empty), and user state is not waited for: it goes into the
 * store's cache, readable at once, and is written in the background (`StateStore.preload`). The
 * engine's own entries (timers, transactions, parked work), which the worker scans at start, are
 * written before this returns, the next key groups read while a batch is written.
 */
export async function restoreKeyGroups(
  restore: { checkpointDir: string; id: number; parts: WorkerCheckpoint[] },
  range: KeyGroupRange,
  store: StateStore,
  givenUp: () => boolean = () => false,
): Promise<{ logged: number; parked: number; timers: number; transactions: number; entries: number }> {
  const backend = store.backend;
  let entries = 0;
  const userState: Array<readonly [string, Uint8Array]> = [];
  const logged: Array<[number, Uint8Array]> = [];
  let lastParked = 0;
  let parked = 0;
  let timers = 0;
  let transactions = 0;
  // Each file is opened once and read in a few large reads of the key groups this worker owns, not
  // once per key group (a worker's part has 64 of them by default).
  const files = new Map<string, Promise<FileHandle>>();
  const readers = new Map<string, Promise<KeyGroupFileReader>>();
  const owned = (part: WorkerCheckpoint) => (kg: number): boolean => range.start <= kg && kg <= range.end && part.keyGroups.start <= kg && kg <= part.keyGroups.end;
  const readerOf = (path: string, index: KeyGroupIndex, part: WorkerCheckpoint): Promise<KeyGroupFileReader> => {
    let reader = readers.get(path);
    if (reader === undefined) {
      const file = open(path, 'r');
      files.set(path, file);
      readers.set(path, (reader = file.then((handle) => new KeyGroupFileReader(path, index, handle, owned(part)))));
    }
    return reader;
  };
  let pending: Array<readonly [Uint8Array, Uint8Array]> = [];
  // One batch is written while the next key groups are read and decoded.
  let writing: Promise<void> = Promise.resolve();
  const writePending = async (): Promise<void> => {
    if (pending.length === 0) return;
    const writes = pending;
    pending = [];
    await writing;
    writing = backend.write(writes);
    // Awaited before the next batch or at the end; a failure is never left unobserved meanwhile.
    writing.catch(() => {});
  };
  const add = (key: string, value: Uint8Array): void => {
    entries++;
    const space = key.charCodeAt(2);
    if (space === Space.USER) {
      userState.push([key, value]);
      return;
    }
    const bytes = toBytes(key);
    if (space === Space.TIMER) timers++;
    else if (space === Space.TXN) transactions++;
    else if (space === Space.PARKED) {
      parked++;
      lastParked = Math.max(lastParked, parkedSeqOf(bytes));
    }
    pending.push([bytes, value]);
  };
  try {
    for (const kg of keyGroups(range)) {
      if (givenUp()) {
        await writing;
        return { logged: logged.length, parked, timers, transactions, entries };
      }
      const part = restore.parts.find((p) => p.keyGroups.start <= kg && kg <= p.keyGroups.end);
      if (part === undefined) continue;
      // Each entry of each file is visited in place; objects are made only of the entries kept.
      const visit = async (file: StateFile, entry: (key: string, section: Buffer, valueStart: number, valueEnd: number) => void): Promise<void> => {
        const path = join(checkpointPath(restore.checkpointDir, file.checkpoint), file.file);
        const section = await (await readerOf(path, file.index, part)).section(kg);
        if (section === undefined) return;
        forEachEntry(section, path, kg, (keyStart, keyEnd, valueStart, valueEnd) => entry(section.toString('latin1', keyStart, keyEnd), section, valueStart, valueEnd));
      };
      const [full, ...deltas] = part.state;
      if (deltas.length === 0 && full !== undefined && !full.delta) {
        await visit(full, (key, section, valueStart, valueEnd) => add(key, view(section, valueStart, valueEnd)));
      } else {
        // The full state file, then each delta over it, in order: the last write of a key wins.
        const merged = new Map<string, Uint8Array | null>();
        for (const file of part.state) {
          await visit(file, (key, section, valueStart, valueEnd) => {
            if (!file.delta) merged.set(key, view(section, valueStart, valueEnd));
            else merged.set(key, section[valueStart] === PUT ? view(section, valueStart + 1, valueEnd) : null);
          });
        }
        for (const [key, value] of merged) if (value !== null) add(key, value);
      }
      if (pending.length >= RESTORE_BATCH) await writePending();
      const logPath = join(checkpointPath(restore.checkpointDir, restore.id), part.logFile);
      const logSection = await (await readerOf(logPath, part.logIndex, part)).section(kg);
      if (logSection !== undefined) forEachEntry(logSection, logPath, kg, (_keyStart, _keyEnd, valueStart, valueEnd) => logged.push([kg, view(logSection, valueStart, valueEnd)]));
    }
    await writePending();
    await writing;
  } finally {
    await writing.catch(() => {});
    for (const file of files.values()) await file.then((f) => f.close(), () => {});
  }
  let seq = Math.max(lastParked, Date.now() * 1000);
  if (logged.length > 0) await backend.write(logged.map(([kg, bytes]) => [toBytes(parkedKey(kg, ++seq)), bytes] as const));
  store.preload(userState);
  return { logged: logged.length, parked: parked + logged.length, timers, transactions, entries };
}
