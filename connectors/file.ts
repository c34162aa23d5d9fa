import { type FileHandle, open, readFile, rename, writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { type Codec, jsonCodec } from '../engine/codec.js';
import { describeError, EddyError, invalidOption } from '../engine/errors.js';
import type { Egress, Ingress, ReadResult, Sink, SinkContext, SplitReader } from '../engine/job.js';

const READ_BYTES = 64 * 1024;

export interface FileIngressOptions {
  /** One file or several (one split each); `inputs.<name>` of submit may give them instead. */
  path?: string | readonly string[];
}

interface FileSplit {
  path: string;
}

/**
 * Newline-delimited JSON files. Positions are byte offsets, so a job submitted again with the same
 * state directory continues after the last line it read. A line that is not JSON goes to the
 * dead-letter egress with its line number; reading goes on.
 */
export function fileIngress<R = unknown>(name: string, options: FileIngressOptions = {}): Ingress<R> {
  return {
    name,
    kind: 'file',
    resumable: true,
    planSplits(input: unknown): FileSplit[] {
      const given = (input as string | string[] | undefined) ?? options.path;
      const paths = typeof given === 'string' ? [given] : given;
      if (!Array.isArray(paths) || paths.length === 0 || paths.some((p) => typeof p !== 'string')) {
        throw invalidOption(`fileIngress(${name}).path`, 'is missing', 'give a file path (or several) in the ingress or in inputs');
      }
      return paths.map((path) => ({ path: resolve(path) }));
    },
    async openSplit(split: unknown, position: unknown): Promise<SplitReader<R>> {
      const { path } = split as FileSplit;
      const file = await open(path, 'r');
      return new NdjsonReader<R>(file, path, typeof position === 'number' ? position : 0);
    },
  };
}

class NdjsonReader<R> implements SplitReader<R> {
  /** Byte offset of the first byte not yet returned as a record. */
  private offset: number;
  private readOffset: number;
  private pending = Buffer.alloc(0);
  private eof = false;
  private line = 0;

  constructor(
    private readonly file: FileHandle,
    private readonly path: string,
    start: number,
  ) {
    this.offset = start;
    this.readOffset = start;
  }

  async read(max: number): Promise<ReadResult<R>> {
    const records: R[] = [];
    const rejected: Array<{ reason: string; raw: unknown }> = [];
    while (records.length + rejected.length < max) {
      const newline = this.pending.indexOf(10);
      if (newline < 0 && !this.eof) {
        await this.fill();
        continue;
      }
      if (newline < 0 && this.pending.length === 0) break;
      // The last line may lack its newline.
      const raw = newline < 0 ? this.pending : this.pending.subarray(0, newline);
      const consumed = newline < 0 ? this.pending.length : newline + 1;
      const lineStart = this.offset;
      this.pending = this.pending.subarray(consumed);
      this.offset += consumed;
      this.line++;
      const text = raw.toString('utf8').trim();
      if (text.length === 0) continue;
      try {
        records.push(JSON.parse(text) as R);
      } catch (error) {
        rejected.push({ reason: `${this.path} line ${this.line} (byte ${lineStart}) is not JSON: ${describeError(error)}`, raw: text });
      }
    }
    return { records, rejected, done: this.eof && this.pending.length === 0 };
  }

  private async fill(): Promise<void> {
    const chunk = Buffer.allocUnsafe(READ_BYTES);
    const { bytesRead } = await this.file.read(chunk, 0, READ_BYTES, this.readOffset);
    if (bytesRead === 0) {
      this.eof = true;
      return;
    }
    this.readOffset += bytesRead;
    this.pending = this.pending.length === 0 ? chunk.subarray(0, bytesRead) : Buffer.concat([this.pending, chunk.subarray(0, bytesRead)]);
  }

  position(): number {
    return this.offset;
  }

  async close(): Promise<void> {
    await this.file.close().catch(() => {});
  }
}

export interface FileEgressOptions<R> {
  path: string;
  codec?: Codec<R>;
}

/** `<path>.epoch`: the last epoch the file sink published, and the file's length right after it. */
interface EpochMarker {
  scope: string;
  epoch: number;
  length: number;
}

/**
 * Appends each record as one JSON line to a file, on the job manager's thread, in arrival order.
 *
 * With checkpoints the output of each epoch (kept in its checkpoint until then) is appended when the
 * checkpoint completes, fsynced, and then recorded in `<path>.epoch` (written to a temporary file and
 * renamed): the epoch and the file's length. After a crash the sink cuts off anything appended beyond
 * that length (an epoch published half-way) and the engine publishes the missing epochs again, so each
 * line is in the file exactly once.
 */
export function fileEgress<R = unknown>(name: string, options: FileEgressOptions<R>): Egress<R> {
  if (typeof options?.path !== 'string' || options.path.length === 0) {
    throw invalidOption(`fileEgress(${name}).path`, 'is missing', 'give the output file path');
  }
  const codec = options.codec ?? jsonCodec<R>();
  return {
    name,
    kind: 'file',
    codec,
    async openSink(context: SinkContext): Promise<Sink<R>> {
      const path = resolve(options.path);
      const markerPath = `${path}.epoch`;
      const file = await open(path, 'a');
      const lines = (batch: readonly R[]): string => batch.map((record) => `${JSON.stringify(record)}\n`).join('');
      let length = (await file.stat()).size;
      return {
        async write(batch) {
          await file.appendFile(lines(batch));
        },
        async publishedEpoch() {
          const marker = await readMarker(markerPath);
          if (marker === undefined || marker.scope !== context.epochScope) return 0;
          if (length > marker.length) {
            context.log(`egress ${name}: ${path} has ${length - marker.length} bytes beyond epoch ${marker.epoch} (a publication cut short): removing them`);
            await file.truncate(marker.length);
            length = marker.length;
          }
          return marker.epoch;
        },
        async publishEpoch(epoch, batch) {
          if (batch.length > 0) {
            const text = Buffer.from(lines(batch));
            await file.appendFile(text);
            await file.sync();
            length += text.length;
          }
          const marker: EpochMarker = { scope: context.epochScope, epoch, length };
          await writeFile(`${markerPath}.tmp`, JSON.stringify(marker));
          await rename(`${markerPath}.tmp`, markerPath);
        },
        async close() {
          await file.close();
        },
      };
    },
  };
}

async function readMarker(path: string): Promise<EpochMarker | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    return undefined;
  }
  try {
    return JSON.parse(text) as EpochMarker;
  } catch (cause) {
    throw new EddyError('EDDY_SINK_FAILED', `${path} is not valid JSON: delete it to publish the output of every checkpoint again, or restore the file and it together`, { cause });
  }
}
