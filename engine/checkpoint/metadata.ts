import { createHash, randomUUID } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { open, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { EddyError } from '../errors.js';
import { EGRESS_LOG_FILE } from './egress-log.js';
import type { KeyGroupIndex } from './key-group-file.js';

export const CHECKPOINT_FORMAT_VERSION = 2;

/** A key-group file of state: the whole state of a worker's key groups, or what changed since its previous file. */
export interface StateFile {
  /** The checkpoint whose folder holds it (an earlier one for all but the last file of a chain). */
  checkpoint: number;
  file: string;
  index: KeyGroupIndex;
  /** Entries are changes: a put (value behind a 1 byte) or a delete (a lone 0 byte). */
  delta: boolean;
  /** The file's size and CRC-32, checked before a restore (absent in checkpoints of earlier versions). */
  bytes?: number;
  crc32?: number;
}

/** What one worker wrote for a checkpoint. */
export interface WorkerCheckpoint {
  worker: number;
  keyGroups: { start: number; end: number };
  /** State of the worker's key groups (user and engine state): a full file, then deltas over it, in order. */
  state: StateFile[];
  /** Feedback envelopes in flight at the cut, by target key group. */
  logFile: string;
  logIndex: KeyGroupIndex;
  /** The log file's size and CRC-32 (absent in checkpoints of earlier versions). */
  logBytes?: number;
  logCrc32?: number;
  bytes: number;
}

/** `chk-<id>/_metadata`: written last and atomically; a checkpoint without it does not exist. */
export interface CheckpointMetadata {
  version: number;
  id: number;
  job: string;
  workers: number;
  maxParallelism: number;
  /** Wall-clock ms when it completed. */
  completedAt: number;
  durationMs: number;
  bytes: number;
  /** Operator ids of the graph the state belongs to. */
  operators: Record<string, string>;
  /** Per ingress name, per split index: where reading stood at the cut. */
  positions: Record<string, Record<string, unknown>>;
  parts: WorkerCheckpoint[];
  /** Size and CRC-32 of `egress.log` (absent in checkpoints of earlier versions). */
  egress?: { bytes: number; crc32: number };
  /** CRC-32 of this JSON without this field (indented by 1, as written): catches a damaged _metadata that still parses. */
  checksum?: number;
}

export function checkpointPath(dir: string, id: number): string {
  return join(dir, `chk-${id}`);
}

/** The text of `_metadata`: the JSON with its own CRC-32 as the last field. */
function metadataText(metadata: CheckpointMetadata): string {
  const { checksum: _checksum, ...rest } = metadata;
  return JSON.stringify({ ...rest, checksum: crc32(JSON.stringify(rest, null, 1)) }, null, 1);
}

/** Writes _metadata via a temporary file, fsync and rename, so it is there whole or not at all. */
export async function writeMetadata(dir: string, metadata: CheckpointMetadata): Promise<void> {
  const path = checkpointPath(dir, metadata.id);
  const temporary = join(path, '_metadata.tmp');
  const file = await open(temporary, 'w');
  try {
    await file.writeFile(metadataText(metadata));
    await file.sync();
  } finally {
    await file.close();
  }
  await rename(temporary, join(path, '_metadata'));
  // The rename (and the checkpoint's folder itself) last through a power loss only once their directories are synced.
  for (const folder of [path, dir]) {
    const handle = await open(folder, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  }
}

function corrupt(file: string, problem: string, cause?: unknown): EddyError {
  return new EddyError('EDDY_CHECKPOINT_CORRUPT', `${file} ${problem}: the checkpoint is corrupt; restore from another one (eddy checkpoints --checkpoint-dir <dir> lists which are good)`, { cause });
}

export function readMetadata(dir: string, id: number): CheckpointMetadata {
  const file = join(checkpointPath(dir, id), '_metadata');
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (cause) {
    const problem = existsSync(checkpointPath(dir, id)) ? 'is not complete (no _metadata)' : 'does not exist';
    throw new EddyError('EDDY_CHECKPOINT_NOT_FOUND', `checkpoint ${id} in ${dir} ${problem}; list the complete ones with \`eddy checkpoints --checkpoint-dir ${dir}\``, { cause });
  }
  let metadata: CheckpointMetadata;
  try {
    metadata = JSON.parse(text) as CheckpointMetadata;
  } catch (cause) {
    throw corrupt(file, 'is not valid JSON (cut short or overwritten)', cause);
  }
  if (typeof metadata !== 'object' || metadata === null || Array.isArray(metadata)) throw corrupt(file, 'is not a checkpoint description');
  if (metadata.version !== CHECKPOINT_FORMAT_VERSION) {
    throw new EddyError('EDDY_CHECKPOINT_CORRUPT', `${file} has format version ${String(metadata.version)}; this engine reads version ${CHECKPOINT_FORMAT_VERSION}`);
  }
  if (metadata.checksum !== undefined) {
    const { checksum, ...rest } = metadata;
    if (crc32(JSON.stringify(rest, null, 1)) !== checksum) throw corrupt(file, 'does not match its checksum');
  }
  const wellFormed =
    metadata.id === id &&
    Array.isArray(metadata.parts) &&
    metadata.parts.length === metadata.workers &&
    metadata.parts.every((part) => typeof part === 'object' && part !== null && Array.isArray(part.state) && part.state.length > 0 && Array.isArray(part.logIndex));
  if (!wellFormed) throw corrupt(file, `does not describe checkpoint ${id} with ${String(metadata.workers)} worker parts`);
  return metadata;
}

/** CRC-32 of a whole file, read in large blocks. */
function fileCrc32(path: string, size: number): number {
  const fd = openSync(path, 'r');
  try {
    const block = Buffer.allocUnsafe(Math.min(size, 4 << 20) || 1);
    let crc = 0;
    for (let at = 0; at < size; ) {
      const read = readSync(fd, block, 0, Math.min(block.length, size - at), at);
      if (read === 0) break;
      crc = crc32(block.subarray(0, read), crc);
      at += read;
    }
    return crc;
  } finally {
    closeSync(fd);
  }
}

/**
 * Checks that every file checkpoint `metadata` needs is there, whole and unchanged: each state file
 * of its chains (some in earlier checkpoints' folders), each feedback log, its egress log. Sizes and
 * CRC-32s are recorded in _metadata when the files are written; for checkpoints of earlier versions
 * (no checksums) the size must still match the end of the file's last key-group section. Throws
 * EDDY_CHECKPOINT_CORRUPT naming the first bad file. One sequential read of the checkpoint (a restore
 * reads the same files next, so they are then in the page cache) at about 4 GB/s of CRC.
 */
export function verifyCheckpoint(dir: string, metadata: CheckpointMetadata): void {
  const check = (folderId: number, name: string, expected: { bytes?: number; crc32?: number; index?: KeyGroupIndex }): void => {
    const path = join(checkpointPath(dir, folderId), name);
    let size: number;
    try {
      size = statSync(path).size;
    } catch (cause) {
      throw corrupt(path, 'is missing', cause);
    }
    const sections = expected.index ?? [];
    const bytes = expected.bytes ?? (sections.length === 0 ? undefined : Math.max(...sections.map(([, offset, length]) => offset + length)));
    if (bytes !== undefined && size !== bytes) throw corrupt(path, `has ${size} bytes, not the ${bytes} written`);
    if (expected.crc32 === undefined) return;
    let crc: number;
    try {
      crc = fileCrc32(path, size);
    } catch (cause) {
      throw corrupt(path, 'cannot be read', cause);
    }
    if (crc !== expected.crc32) throw corrupt(path, 'does not match its checksum');
  };
  for (const part of metadata.parts) {
    for (const file of part.state) check(file.checkpoint, file.file, file);
    check(metadata.id, part.logFile, { bytes: part.logBytes, crc32: part.logCrc32, index: part.logIndex });
  }
  if (metadata.egress !== undefined) check(metadata.id, EGRESS_LOG_FILE, metadata.egress);
}

/** One complete checkpoint as `eddy checkpoints` shows it: its metadata, or why it cannot be restored. */
export type CheckpointEntry = { id: number; metadata: CheckpointMetadata; error?: undefined } | { id: number; metadata?: undefined; error: EddyError };

/** Reads and verifies checkpoint `id`; a corrupt one comes back with its error instead of throwing. */
export function inspectCheckpoint(dir: string, id: number): CheckpointEntry {
  try {
    const metadata = readMetadata(dir, id);
    verifyCheckpoint(dir, metadata);
    return { id, metadata };
  } catch (error) {
    if (error instanceof EddyError) return { id, error };
    return { id, error: new EddyError('EDDY_CHECKPOINT_CORRUPT', `checkpoint ${id} in ${dir} cannot be read: ${String(error)}`, { cause: error }) };
  }
}

/** Ids of the complete checkpoints in `dir`, oldest first. */
export function listCheckpoints(dir: string): number[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const ids: number[] = [];
  for (const name of names) {
    const match = /^chk-(\d+)$/.exec(name);
    if (match === null) continue;
    try {
      readFileSync(join(dir, name, '_metadata'));
      ids.push(Number(match[1]));
    } catch {
      // Incomplete (aborted or still being written): not a checkpoint.
    }
  }
  return ids.sort((a, b) => a - b);
}

/**
 * The metadata of a checkpoint to restore, its files verified (verifyCheckpoint). A given id is
 * restored as asked or refused. `'latest'` is the newest good checkpoint (up to `atMost`): a corrupt
 * newer one is skipped, and the log says so, since the output the job published for the epochs
 * after the one restored is then produced and published again.
 */
export function resolveCheckpoint(dir: string, which: 'latest' | number, options: { atMost?: number; log?: (line: string) => void } = {}): CheckpointMetadata {
  if (which !== 'latest') {
    const metadata = readMetadata(dir, which);
    verifyCheckpoint(dir, metadata);
    return metadata;
  }
  const ids = listCheckpoints(dir).filter((id) => id <= (options.atMost ?? Infinity));
  if (ids.length === 0) throw new EddyError('EDDY_CHECKPOINT_NOT_FOUND', `no complete checkpoint in ${dir}: run with checkpointDir and checkpointIntervalMs (eddy run --checkpoint-dir <dir> --checkpoint-interval-ms <ms>), or take one with handle.checkpoint() / eddy checkpoint, first`);
  const skipped: number[] = [];
  for (const id of ids.reverse()) {
    const entry = inspectCheckpoint(dir, id);
    if (entry.error !== undefined) {
      skipped.push(id);
      options.log?.(`checkpoint ${id} cannot be restored, skipping it: ${entry.error.message}`);
      continue;
    }
    if (skipped.length > 0) {
      options.log?.(
        `restoring checkpoint ${id}, the newest good one, instead of ${skipped.join(', ')}: ` +
          `output already published for checkpoint${skipped.length > 1 ? 's' : ''} after ${id} is produced and published again (at-least-once for those epochs)`,
      );
    }
    return entry.metadata;
  }
  throw new EddyError('EDDY_CHECKPOINT_CORRUPT', `no good checkpoint in ${dir}: ${skipped.join(', ')} cannot be restored (see the log or eddy checkpoints --checkpoint-dir ${dir}); start without --restore to begin from the input's start`);
}

/** The highest id ever started in `dir` (complete or not), so new ids never reuse a folder. */
export function highestCheckpointId(dir: string): number {
  mkdirSync(dir, { recursive: true });
  let highest = 0;
  for (const name of readdirSync(dir)) {
    const match = /^chk-(\d+)$/.exec(name);
    if (match !== null) highest = Math.max(highest, Number(match[1]));
  }
  return highest;
}

/**
 * Keeps the newest `retained` complete checkpoints and any from `keep` on, removes the rest, except
 * the folders of earlier ones whose state files they build on: those stay as bases only (their
 * _metadata is renamed, so they are no longer listed or restorable: their own chains may be gone).
 */
export function pruneCheckpoints(dir: string, retained: number, keep: number): void {
  const complete = listCheckpoints(dir);
  const retainedIds = new Set(complete.slice(-retained));
  const kept = new Set(retainedIds);
  for (const id of retainedIds) {
    let parts: WorkerCheckpoint[];
    try {
      parts = readMetadata(dir, id).parts;
    } catch {
      // A corrupt retained checkpoint is never restored, so it keeps no bases; it goes when it ages out.
      continue;
    }
    for (const part of parts) for (const file of part.state) if (Number.isInteger(file.checkpoint)) kept.add(file.checkpoint);
  }
  for (const id of complete) {
    if (kept.has(id) && !retainedIds.has(id) && id < keep) renameSync(join(checkpointPath(dir, id), '_metadata'), join(checkpointPath(dir, id), '_metadata.base-only'));
  }
  for (const name of readdirSync(dir)) {
    const match = /^chk-(\d+)$/.exec(name);
    if (match === null) continue;
    const id = Number(match[1]);
    if (!kept.has(id) && id < keep) rmSync(join(dir, name), { recursive: true, force: true });
  }
}

const JOB_STAMP = '_job';

/**
 * The folder name of a job's checkpoints under a shared checkpoint directory: the job name, with
 * characters outside [A-Za-z0-9_.-] (and a leading `.` or `_`, and the `-` of a name like
 * `chk-12`) percent-encoded, so distinct names never share a folder or look like a checkpoint.
 */
export function jobFolderName(job: string): string {
  let name = '';
  for (const byte of Buffer.from(job, 'utf8')) {
    const char = String.fromCharCode(byte);
    name += /[A-Za-z0-9_.-]/.test(char) ? char : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  name = name.replace(/^[._]/, (char) => `%${char.charCodeAt(0).toString(16).toUpperCase()}`).replace(/^chk-(?=\d+$)/, 'chk%2D');
  // File names are at most 255 bytes: a long name is cut and told apart by a hash of the whole.
  if (name.length > 200) name = `${name.slice(0, 180)}~${createHash('sha256').update(job).digest('hex').slice(0, 16)}`;
  return name;
}

function readStamp(folder: string): string | undefined {
  try {
    return readFileSync(join(folder, JOB_STAMP), 'utf8').replace(/\n$/, '');
  } catch {
    return undefined;
  }
}

function writeStamp(folder: string, job: string): void {
  writeFileSync(join(folder, `${JOB_STAMP}.tmp`), `${job}\n`);
  renameSync(join(folder, `${JOB_STAMP}.tmp`), join(folder, JOB_STAMP));
}

/** The job named in the newest readable _metadata (or base) among the chk-<id> folders directly in `dir`. */
function legacyOwner(dir: string, names: readonly string[]): string | undefined {
  const ids = names.flatMap((name) => /^chk-(\d+)$/.exec(name)?.slice(1).map(Number) ?? []).sort((a, b) => b - a);
  for (const id of ids) {
    for (const file of ['_metadata', '_metadata.base-only']) {
      try {
        const job = (JSON.parse(readFileSync(join(checkpointPath(dir, id), file), 'utf8')) as { job?: unknown }).job;
        if (typeof job === 'string') return job;
      } catch {
        // Missing or unreadable: try the next.
      }
    }
  }
  return undefined;
}

/**
 * The folder of job `job`'s checkpoints in checkpoint directory `dir`: `<dir>/<job name>/`, so jobs
 * given the same directory never see (or prune) each other's checkpoints, as Flink keeps
 * `<state.checkpoints.dir>/<job id>/`. Each job folder holds a `_job` stamp with the exact name.
 * - `dir` may be a job folder itself (its stamp names this job): it is used as it is.
 * - A directory written before job folders existed (`chk-<id>` folders or `_lineage` directly in
 *   it) stays the folder of the job its checkpoints belong to, in place, so that job's checkpoints
 *   and lineage (its sinks' epoch markers) carry on; the owner is stamped. Other jobs get subfolders.
 */
export function jobCheckpointDir(dir: string, job: string): string {
  try {
    return openJobCheckpointDir(dir, job);
  } catch (error) {
    if (error instanceof EddyError) throw error;
    throw new EddyError('EDDY_INVALID_OPTION', `checkpointDir ${dir} cannot be used: ${String(error)}; give a folder this process can write (eddy run --checkpoint-dir)`, { cause: error });
  }
}

function openJobCheckpointDir(dir: string, job: string): string {
  mkdirSync(dir, { recursive: true });
  const stamp = readStamp(dir);
  if (stamp === job) return dir;
  if (stamp === undefined) {
    const names = readdirSync(dir);
    if (names.includes('_lineage') || names.some((name) => /^chk-\d+$/.test(name))) {
      const owner = legacyOwner(dir, names);
      if (owner !== undefined) {
        try {
          writeStamp(dir, owner);
        } catch {
          // Not writable (a full disk, say): the owner is read from its checkpoints again next time.
        }
      }
      if (owner === job) return dir;
    }
  }
  const folder = join(dir, jobFolderName(job));
  mkdirSync(folder, { recursive: true });
  const owner = readStamp(folder);
  if (owner === undefined) writeStamp(folder, job);
  else if (owner !== job) {
    throw new EddyError('EDDY_INVALID_OPTION', `checkpoint folder ${folder} belongs to job ${JSON.stringify(owner)}, not ${JSON.stringify(job)}: give this job another checkpointDir (eddy run --checkpoint-dir)`);
  }
  return folder;
}

/** The job folders in checkpoint directory `dir` (and `dir` itself if it is one), with their job names. */
export function jobCheckpointDirs(dir: string): Array<{ job: string | undefined; folder: string }> {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const folders: Array<{ job: string | undefined; folder: string }> = [];
  const stamp = readStamp(dir);
  if (stamp !== undefined || names.some((name) => /^chk-\d+$/.test(name))) folders.push({ job: stamp ?? legacyOwner(dir, names), folder: dir });
  for (const name of names.sort()) {
    if (/^chk-\d+$/.test(name)) continue;
    const job = readStamp(join(dir, name));
    if (job !== undefined) folders.push({ job, folder: join(dir, name) });
  }
  return folders;
}

/**
 * The lineage of a job's checkpoint folder (jobCheckpointDir): a random id made when the folder is
 * first used. Sinks key their epoch markers by it, since checkpoint ids start at 1 again in a fresh
 * folder. Never changed for an existing folder: a new lineage would be a new marker group.
 */
export function checkpointLineage(dir: string): string {
  mkdirSync(dir, { recursive: true });
  const file = join(dir, '_lineage');
  try {
    return readFileSync(file, 'utf8').trim();
  } catch {
    const lineage = randomUUID();
    writeFileSync(`${file}.tmp`, `${lineage}\n`);
    renameSync(`${file}.tmp`, file);
    return lineage;
  }
}
