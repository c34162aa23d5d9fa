import { mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describeError, EddyError } from '../errors.js';

/** What a state directory remembers between runs of a job: its shape and where sources stopped. */
export interface StateManifest {
  version: 1;
  job: string;
  workers: number;
  maxParallelism: number;
  /** Per ingress name, per split index: the split's description (JSON) and where reading stopped. */
  positions: Record<string, Record<string, { description: string; position: unknown }>>;
}

export interface StateDir {
  readonly path: string | undefined;
  /** A temporary folder nobody can continue from; removed when the job ends. */
  readonly temporary: boolean;
  readonly manifest: StateManifest;
  location(worker: number): string | undefined;
  save(manifest: StateManifest): void;
  /** Removes every worker's state (before a restore writes it anew). */
  wipe(): void;
  remove(): void;
}

const MANIFEST = 'eddy-state.json';
/** Prefix of a worker's state folder that a restore replaced, while it is deleted. */
const WIPED = '.wiped-';

/**
 * Opens (or creates) the state directory of a job and refuses one written with another layout: the
 * key-group formula maps state to workers by (workers, maxParallelism), so both must match.
 */
export function openStateDir(
  requested: string | undefined,
  backend: 'leveldb' | 'memory',
  job: string,
  workers: number,
  maxParallelism: number,
  /** A checkpoint restore replaces the state: another worker count is fine then. */
  restoring = false,
): StateDir {
  const fresh: StateManifest = { version: 1, job, workers, maxParallelism, positions: {} };
  if (backend === 'memory') {
    return { path: undefined, temporary: true, manifest: fresh, location: () => undefined, save: () => {}, wipe: () => {}, remove: () => {} };
  }
  const temporary = requested === undefined;
  const path = requested ?? mkdtempSync(join(tmpdir(), `eddy-${job.replace(/[^A-Za-z0-9_-]/g, '_')}-`));
  mkdirSync(path, { recursive: true });
  const file = join(path, MANIFEST);
  let manifest = fresh;
  let text: string | undefined;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    text = undefined;
  }
  if (text !== undefined) {
    let stored: StateManifest;
    try {
      stored = JSON.parse(text) as StateManifest;
    } catch (cause) {
      throw new EddyError('EDDY_STATE_DIR_MISMATCH', `${file} is not valid JSON; restore it or use another stateDir`, { cause });
    }
    if (stored.job !== job) {
      throw new EddyError('EDDY_STATE_DIR_MISMATCH', `stateDir ${path} holds the state of job ${stored.job}, not ${job}; use another stateDir`);
    }
    if (!restoring && (stored.maxParallelism !== maxParallelism || stored.workers !== workers)) {
      throw new EddyError(
        'EDDY_STATE_DIR_MISMATCH',
        `stateDir ${path} was written with workers=${stored.workers} and maxParallelism=${stored.maxParallelism}; ` +
          `run with those (got workers=${workers}, maxParallelism=${maxParallelism}); to change the worker count, restore a checkpoint ` +
          '(checkpointDir with restoreFrom, or eddy run --checkpoint-dir <dir> --restore latest --workers <n>)',
      );
    }
    manifest = restoring ? { ...fresh, positions: {} } : stored;
  }
  const save = (next: StateManifest): void => {
    try {
      writeFileSync(`${file}.tmp`, JSON.stringify(next, null, 2));
      renameSync(`${file}.tmp`, file);
    } catch (cause) {
      const why = (cause as NodeJS.ErrnoException).code === 'ENOSPC' ? 'its disk is full' : describeError(cause);
      throw new EddyError('EDDY_STATE_DIR_UNWRITABLE', `cannot write ${file}: ${why}; free space there (or fix its permissions), or use another stateDir`, { cause });
    }
  };
  save(manifest);
  return {
    path,
    temporary,
    manifest,
    location: (worker) => join(path, `worker-${worker}`),
    save,
    wipe: () => {
      // Moved aside at once and deleted in the background: deleting a large LevelDB takes a recovery
      // a quarter of a second and blocks the job manager meanwhile. Leftovers of a process that ended
      // meanwhile are deleted on the next wipe.
      let n = 0;
      for (const name of readdirSync(path)) {
        if (/^worker-\d+$/.test(name)) {
          const aside = join(path, `${WIPED}${Date.now()}-${n++}-${name}`);
          renameSync(join(path, name), aside);
          void rm(aside, { recursive: true, force: true }).catch(() => {});
        } else if (name.startsWith(WIPED)) void rm(join(path, name), { recursive: true, force: true }).catch(() => {});
      }
    },
    remove: () => rmSync(path, { recursive: true, force: true }),
  };
}
