import { type FileHandle, open } from 'node:fs/promises';
import { crc32 } from 'node:zlib';
import { EddyError } from '../errors.js';

/**
 * A checkpoint file: entries grouped by key group, in key-group order, so a restore with another
 * worker count reads only the key groups it now owns.
 *
 *   header: "EDDYKG" u16 version
 *   per key group: [kg:u16][count:u32] then count x ([keyLen:u32][key][valueLen:u32][value])
 *
 * The index (key group -> byte offset and length) goes into the checkpoint's _metadata.
 */
export const KEY_GROUP_FILE_VERSION = 1;
const MAGIC = Buffer.from('EDDYKG', 'latin1');
const HEADER_BYTES = MAGIC.length + 2;

export type KeyGroupIndex = Array<[keyGroup: number, offset: number, length: number]>;

type Entry = readonly [Uint8Array, Uint8Array];

/** Entries are copied into blocks of this size, so a file is written in few large chunks. */
const BLOCK_BYTES = 1 << 20;

/**
 * Writes one section per key group of `keyGroups` (an empty one too) from `batches` of entries, which
 * come in key order with the key group in their first two key bytes (as every state key has), fsyncs,
 * and returns the index, the size and the CRC-32 of the whole file (checked before a restore). One pass over one ordered stream, in batches (as LevelDB iterators hand them
 * out): a checkpoint of a busy worker must not pay an event-loop turn per entry or per key group.
 */
export async function writeKeyGroupFile(
  path: string,
  keyGroups: readonly number[],
  batches: AsyncIterable<readonly Entry[]> | Iterable<readonly Entry[]>,
): Promise<{ index: KeyGroupIndex; bytes: number; crc32: number }> {
  const file = await open(path, 'w');
  try {
    const header = Buffer.alloc(HEADER_BYTES);
    MAGIC.copy(header);
    header.writeUInt16BE(KEY_GROUP_FILE_VERSION, MAGIC.length);
    const index: KeyGroupIndex = [];
    let chunks: Buffer[] = [header];
    let offset = header.length;
    let pending = header.length;
    // Entries are encoded into `block`; [blockStart, used) is not yet among `chunks`.
    let block = Buffer.allocUnsafe(BLOCK_BYTES);
    let blockStart = 0;
    let used = 0;
    let crc = 0;
    const cutBlock = (): void => {
      if (used > blockStart) chunks.push(block.subarray(blockStart, used));
      blockStart = used;
    };
    const reserve = (bytes: number): void => {
      if (used + bytes <= block.length) return;
      cutBlock();
      block = Buffer.allocUnsafe(Math.max(BLOCK_BYTES, bytes));
      blockStart = used = 0;
    };
    const flush = async (): Promise<void> => {
      cutBlock();
      if (chunks.length === 0) return;
      const out = chunks;
      chunks = [];
      pending = 0;
      // Section heads are filled in by now: the chunks are final.
      for (const chunk of out) crc = crc32(chunk, crc);
      await file.writev(out);
    };
    // The section being written: its head is filled in when it ends.
    let position = 0;
    let section: { kg: number; head: Buffer; start: number; count: number } | undefined;
    const open_ = (kg: number): void => {
      cutBlock();
      const head = Buffer.allocUnsafe(6);
      section = { kg, head, start: offset, count: 0 };
      chunks.push(head);
      offset += 6;
      pending += 6;
    };
    const close_ = (): void => {
      if (section === undefined) return;
      section.head.writeUInt16BE(section.kg);
      section.head.writeUInt32BE(section.count, 2);
      index.push([section.kg, section.start, offset - section.start]);
      section = undefined;
    };
    /** Opens (empty) sections up to key group `kg`, and `kg`'s own. */
    const advanceTo = (kg: number): void => {
      while (position < keyGroups.length && keyGroups[position]! <= kg) {
        close_();
        open_(keyGroups[position]!);
        position++;
      }
    };
    for await (const batch of batches) {
      for (const [key, value] of batch) {
        const kg = (key[0]! << 8) | key[1]!;
        if (section?.kg !== kg) {
          // Written out only between sections: a section's head is filled in when it ends.
          if (pending > 4 * BLOCK_BYTES) {
            close_();
            await flush();
          }
          advanceTo(kg);
        }
        if (section?.kg !== kg) throw new RangeError(`entry of key group ${kg} is not among the key groups written or out of order`);
        const length = 8 + key.byteLength + value.byteLength;
        reserve(length);
        block.writeUInt32BE(key.byteLength, used);
        block.set(key, used + 4);
        block.writeUInt32BE(value.byteLength, used + 4 + key.byteLength);
        block.set(value, used + 8 + key.byteLength);
        used += length;
        offset += length;
        pending += length;
        section.count++;
      }
    }
    advanceTo(Infinity);
    close_();
    await flush();
    await file.sync();
    return { index, bytes: offset, crc32: crc };
  } finally {
    await file.close();
  }
}

/** The entries of one key group of a checkpoint file (none if the file does not hold it), in key order. */
export async function readKeyGroup(path: string, index: KeyGroupIndex, keyGroup: number, file?: FileHandle): Promise<Array<[Buffer, Buffer]>> {
  const handle = file ?? (await open(path, 'r'));
  try {
    const section = await new KeyGroupFileReader(path, index, handle, (kg) => kg === keyGroup).section(keyGroup);
    const entries: Array<[Buffer, Buffer]> = [];
    if (section !== undefined) {
      forEachEntry(section, path, keyGroup, (keyStart, keyEnd, valueStart, valueEnd) => {
        entries.push([section.subarray(keyStart, keyEnd), section.subarray(valueStart, valueEnd)]);
      });
    }
    return entries;
  } finally {
    if (file === undefined) await handle.close();
  }
}

/** Bytes per read of consecutive sections: few reads for a restore, bounded memory at millions of keys. */
const READ_WINDOW_BYTES = 16 << 20;

/**
 * Reads the sections of one checkpoint file, asked for in key-group order: each read takes the asked
 * section and the next ones that `wanted` (up to READ_WINDOW_BYTES), so a restore reads a file in a
 * few large reads, not two per key group. The header is checked on the first read.
 */
export class KeyGroupFileReader {
  private readonly slots = new Map<number, number>();
  private window: { start: number; bytes: Buffer } | undefined;
  private headerChecked = false;

  constructor(
    private readonly path: string,
    private readonly index: KeyGroupIndex,
    private readonly file: FileHandle,
    private readonly wanted: (keyGroup: number) => boolean,
  ) {
    index.forEach(([kg], position) => this.slots.set(kg, position));
  }

  /** The section of `keyGroup` (undefined if the file does not hold it), its head checked. */
  async section(keyGroup: number): Promise<Buffer | undefined> {
    const position = this.slots.get(keyGroup);
    if (position === undefined) return undefined;
    const [, offset, length] = this.index[position]!;
    const { path } = this;
    if (this.window === undefined || offset < this.window.start || offset + length > this.window.start + this.window.bytes.length) {
      await this.checkHeader();
      let end = offset + length;
      for (let next = position + 1; next < this.index.length; next++) {
        const [kg, nextOffset, nextLength] = this.index[next]!;
        if (!this.wanted(kg) || nextOffset !== end || end + nextLength - offset > READ_WINDOW_BYTES) break;
        end += nextLength;
      }
      const bytes = Buffer.alloc(end - offset);
      const { bytesRead } = await this.file.read(bytes, 0, bytes.length, offset);
      // A file cut short inside a later section: that one's own read finds it.
      if (bytesRead < length) throw corrupt(path, `key group ${keyGroup} is cut short (${bytesRead} of ${length} bytes)`);
      this.window = { start: offset, bytes: bytes.subarray(0, bytesRead) };
    }
    const section = this.window.bytes.subarray(offset - this.window.start, offset - this.window.start + length);
    if (length < 6 || section.readUInt16BE(0) !== keyGroup) throw corrupt(path, `key group ${keyGroup} is not where the index says`);
    return section;
  }

  private async checkHeader(): Promise<void> {
    if (this.headerChecked) return;
    const header = Buffer.alloc(HEADER_BYTES);
    await this.file.read(header, 0, HEADER_BYTES, 0);
    if (!header.subarray(0, MAGIC.length).equals(MAGIC)) throw corrupt(this.path, 'it is not an Eddy checkpoint file');
    const version = header.readUInt16BE(MAGIC.length);
    if (version !== KEY_GROUP_FILE_VERSION) throw corrupt(this.path, `format version ${version}, this engine reads ${KEY_GROUP_FILE_VERSION}`);
    this.headerChecked = true;
  }
}

/** Calls `visit` with the byte offsets of each entry of a section (`path` and `keyGroup` name it in errors). */
export function forEachEntry(section: Buffer, path: string, keyGroup: number, visit: (keyStart: number, keyEnd: number, valueStart: number, valueEnd: number) => void): void {
  const length = section.length;
  const count = section.readUInt32BE(2);
  let at = 6;
  for (let i = 0; i < count; i++) {
    if (at + 4 > length) throw corrupt(path, `key group ${keyGroup} ends inside entry ${i}`);
    const keyStart = at + 4;
    const keyEnd = keyStart + section.readUInt32BE(at);
    if (keyEnd + 4 > length) throw corrupt(path, `key group ${keyGroup} ends inside entry ${i}`);
    const valueStart = keyEnd + 4;
    const valueEnd = valueStart + section.readUInt32BE(keyEnd);
    if (valueEnd > length) throw corrupt(path, `key group ${keyGroup} ends inside entry ${i}`);
    visit(keyStart, keyEnd, valueStart, valueEnd);
    at = valueEnd;
  }
}

function corrupt(path: string, problem: string): EddyError {
  return new EddyError('EDDY_CHECKPOINT_CORRUPT', `checkpoint file ${path} is corrupt or partial: ${problem}; restore from another checkpoint`);
}
