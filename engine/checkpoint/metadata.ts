import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { open, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { EddyError } from '../errors.js';
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
}

export function checkpointPath(dir: string, id: number): string {
  return join(dir, `chk-${id}`);
}

/** Writes _metadata via a temporary file, fsync and rename, so it is there whole or not at all. */
export async function writeMetadata(dir: string, metadata: CheckpointMetadata): Promise<void> {
  const path = checkpointPath(dir, metadata.id);
  const temporary = join(path, '_metadata.tmp');
  const file = await open(temporary, 'w');
  try {
    await file.writeFile(JSON.stringify(metadata, null, 1));
    await file.sync();
  } finally {
    await file.close();
  }
  await rename(temporary, join(path, '_metadata'));
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
    throw new EddyError('EDDY_CHECKPOINT_CORRUPT', `${file} is not valid JSON: the checkpoint is corrupt; restore from another one`, { cause });
  }
  if (metadata.version !== CHECKPOINT_FORMAT_VERSION) {
    throw new EddyError('EDDY_CHECKPOINT_CORRUPT', `${file} has format version ${String(metadata.version)}; this engine reads version ${CHECKPOINT_FORMAT_VERSION}`);
  }
  if (metadata.id !== id || !Array.isArray(metadata.parts) || metadata.parts.length !== metadata.workers) {
    throw new EddyError('EDDY_CHECKPOINT_CORRUPT', `${file} does not describe checkpoint ${id} with ${String(metadata.workers)} worker parts: it is corrupt`);
  }
  return metadata;
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

/** The metadata of `'latest'` or of a given id. */
export function resolveCheckpoint(dir: string, which: 'latest' | number): CheckpointMetadata {
  if (which === 'latest') {
    const ids = listCheckpoints(dir);
    const latest = ids.at(-1);
    if (latest === undefined) throw new EddyError('EDDY_CHECKPOINT_NOT_FOUND', `no complete checkpoint in ${dir}: run with checkpointDir and checkpointIntervalMs (eddy run --checkpoint-dir <dir> --checkpoint-interval-ms <ms>), or take one with handle.checkpoint() / eddy checkpoint, first`);
    return readMetadata(dir, latest);
  }
  return readMetadata(dir, which);
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
    for (const part of readMetadata(dir, id).parts) for (const file of part.state) kept.add(file.checkpoint);
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

/**
 * The lineage of a checkpoint directory: a random id made when the directory is first used. Sinks
 * key their epoch markers by it, since checkpoint ids start at 1 again in a fresh directory.
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
