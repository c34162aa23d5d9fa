import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { readKeyGroup, writeKeyGroupFile } from '../checkpoint/key-group-file.js';
import { checkpointPath, type WorkerCheckpoint } from '../checkpoint/metadata.js';
import { describeError } from '../errors.js';
import type { KeyGroupRange } from '../key-groups.js';
import type { StateBackend, StateSnapshot } from '../state/state-backend.js';
import { decodeF64, parkedKey, Space, toBytes } from '../state/state-keys.js';
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

  cut(id: number, snapshot: Promise<StateSnapshot>, feedbackLog: Promise<Map<number, Uint8Array[]>>): void {
    const pending = this.entry(id);
    this.write(id, snapshot, feedbackLog, pending).catch((error: unknown) => {
      // The job manager's checkpoint timeout aborts it; the job goes on.
      this.config.log(`worker ${this.config.worker}: checkpoint ${id} could not be written: ${describeError(error)}`);
    });
  }

  abort(id: number): void {
    const pending = this.pending.get(id);
    if (pending !== undefined) pending.aborted = true;
    this.pending.delete(id);
  }

  private async write(id: number, snapshotPromise: Promise<StateSnapshot>, feedbackLog: Promise<Map<number, Uint8Array[]>>, pending: Pending): Promise<void> {
    const { worker, directory } = this.config;
    const snapshot = await snapshotPromise;
    try {
      if (directory === undefined || pending.aborted) return;
      const folder = checkpointPath(directory, id);
      await mkdir(folder, { recursive: true });
      const groups = keyGroups(this.config.keyGroups);
      const stateFile = `worker-${worker}.state`;
      const { start, end } = this.config.keyGroups;
      const state = await writeKeyGroupFile(join(folder, stateFile), groups, snapshot.scanBatches(keyGroupBounds(start)[0], keyGroupBounds(end)[1]));
      await snapshot.close();
      const log = await feedbackLog;
      if (pending.aborted) return;
      const logFile = `worker-${worker}.log`;
      const logged = await writeKeyGroupFile(join(folder, logFile), groups, [[...logEntries(groups, log)]]);
      const positions = await pending.positions;
      if (pending.aborted) return;
      const part: WorkerCheckpoint = {
        worker,
        keyGroups: { ...this.config.keyGroups },
        stateFile,
        stateIndex: state.index,
        logFile,
        logIndex: logged.index,
        bytes: state.bytes + logged.bytes,
      };
      this.config.post({ type: 'checkpoint-ack', id, part, positions });
    } finally {
      this.pending.delete(id);
      await snapshot.close().catch(() => {});
    }
  }
}

/**
 * Loads the key groups of `range` from the checkpoint parts that hold them (any worker count may
 * have written it) into an empty backend. The feedback envelopes that were in flight at the cut are
 * stored as parked work behind the checkpoint's own parked envelopes (so they run first, in that
 * order, and a checkpoint taken before they have run still holds them). Returns how many.
 */
export async function restoreKeyGroups(
  restore: { directory: string; parts: WorkerCheckpoint[] },
  range: KeyGroupRange,
  backend: StateBackend,
): Promise<number> {
  const logged: Array<[number, Uint8Array]> = [];
  let lastParked = 0;
  for (const kg of keyGroups(range)) {
    const part = restore.parts.find((p) => p.keyGroups.start <= kg && kg <= p.keyGroups.end);
    if (part === undefined) continue;
    const entries = await readKeyGroup(join(restore.directory, part.stateFile), part.stateIndex, kg);
    for (const [key] of entries) if (key[2] === Space.PARKED) lastParked = Math.max(lastParked, decodeF64(key.subarray(3, 11)));
    if (entries.length > 0) await backend.write(entries);
    for (const [, bytes] of await readKeyGroup(join(restore.directory, part.logFile), part.logIndex, kg)) logged.push([kg, bytes]);
  }
  let seq = Math.max(lastParked, Date.now() * 1000);
  if (logged.length > 0) await backend.write(logged.map(([kg, bytes]) => [toBytes(parkedKey(kg, ++seq)), bytes] as const));
  return logged.length;
}
