import { closeSync, mkdirSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { EddyError } from '../errors.js';

/** The lock file a running job keeps in its checkpoint folder and its state directory. */
export const LOCK_FILE = '.lock';

export interface DirLock {
  /** Removes the lock file (if it is still this process's). Safe to call twice. */
  release(): void;
}

/** The pid in a lock file, or undefined if it holds none (a file being written, or garbage). */
function holderOf(path: string): number | undefined {
  try {
    const pid = Number.parseInt(readFileSync(path, 'utf8'), 10);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists, under another user.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Takes `<dir>/.lock` for this process (created with O_EXCL, holding the pid), or throws
 * EDDY_DIR_LOCKED naming the process that holds it: two runs of a job on one checkpoint folder or
 * state directory would overwrite each other's checkpoints and state. A lock whose process is gone
 * (killed, crashed) is stale and taken over. `what` names the folder in the message ("checkpoint
 * folder"), `option` the option to change ("checkpointDir (--checkpoint-dir)").
 */
export function lockDir(dir: string, what: string, option: string): DirLock {
  mkdirSync(dir, { recursive: true });
  const path = join(dir, LOCK_FILE);
  for (let attempt = 0; ; attempt++) {
    try {
      const fd = openSync(path, 'wx');
      try {
        writeSync(fd, `${process.pid}\n`);
      } finally {
        closeSync(fd);
      }
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const holder = holderOf(path);
      // No pid yet: another process is writing it this instant; look again.
      if ((holder !== undefined && alive(holder)) || (holder === undefined && attempt >= 3)) {
        const by = holder === process.pid ? `another job of this process (pid ${holder})` : holder === undefined ? 'another process' : `process ${holder}`;
        throw new EddyError(
          'EDDY_DIR_LOCKED',
          `the ${what} ${dir} is in use by ${by}: two runs of a job on one ${what} overwrite each other's state; ` +
            `stop that run first, or give this one another ${option} (if no Eddy job runs there, delete ${path})`,
        );
      }
      if (holder === undefined) {
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
        continue;
      }
      // Stale (its process is gone): taken over, unless another process took it over meanwhile.
      if (holderOf(path) === holder) {
        try {
          unlinkSync(path);
        } catch {
          // Removed by another process taking it over: the next try tells.
        }
      }
    }
  }
  held.add(path);
  if (held.size === 1) process.on('exit', releaseAll);
  let released = false;
  return {
    release: () => {
      if (released) return;
      released = true;
      held.delete(path);
      if (held.size === 0) process.off('exit', releaseAll);
      unlinkIfOurs(path);
    },
  };
}

/** Lock files this process holds: a process that exits without ending its jobs (process.exit) leaves none behind; one killed does, and the next run finds them stale. */
const held = new Set<string>();

function releaseAll(): void {
  for (const path of held) unlinkIfOurs(path);
}

function unlinkIfOurs(path: string): void {
  if (holderOf(path) !== process.pid) return;
  try {
    unlinkSync(path);
  } catch {
    // Already gone.
  }
}
