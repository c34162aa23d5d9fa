import { type FileHandle, open } from 'node:fs/promises';
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

/** Writes one section per key group of `keyGroups` (an empty one too), fsyncs, and returns the index. */
export async function writeKeyGroupFile(
  path: string,
  keyGroups: readonly number[],
  entriesOf: (keyGroup: number) => AsyncIterable<readonly [Uint8Array, Uint8Array]> | Iterable<readonly [Uint8Array, Uint8Array]>,
): Promise<{ index: KeyGroupIndex; bytes: number }> {
  const file = await open(path, 'w');
  try {
    const header = Buffer.alloc(HEADER_BYTES);
    MAGIC.copy(header);
    header.writeUInt16BE(KEY_GROUP_FILE_VERSION, MAGIC.length);
    let offset = 0;
    const chunks: Buffer[] = [header];
    let pending = header.length;
    const flush = async (): Promise<void> => {
      if (chunks.length === 0) return;
      await file.writev(chunks.splice(0));
      pending = 0;
    };
    offset = header.length;
    const index: KeyGroupIndex = [];
    for (const kg of keyGroups) {
      const start = offset;
      const parts: Buffer[] = [];
      let count = 0;
      for await (const [key, value] of entriesOf(kg)) {
        const lengths = Buffer.allocUnsafe(4);
        lengths.writeUInt32BE(key.byteLength);
        const valueLength = Buffer.allocUnsafe(4);
        valueLength.writeUInt32BE(value.byteLength);
        parts.push(lengths, Buffer.from(key.buffer, key.byteOffset, key.byteLength), valueLength, Buffer.from(value.buffer, value.byteOffset, value.byteLength));
        count++;
      }
      const head = Buffer.allocUnsafe(6);
      head.writeUInt16BE(kg);
      head.writeUInt32BE(count, 2);
      chunks.push(head, ...parts);
      const length = head.length + parts.reduce((n, p) => n + p.length, 0);
      offset += length;
      pending += length;
      index.push([kg, start, length]);
      if (pending > 1 << 20) await flush();
    }
    await flush();
    await file.sync();
    return { index, bytes: offset };
  } finally {
    await file.close();
  }
}

/** Reads the entries of one key group; a file that does not match its index is refused clearly. */
export async function readKeyGroup(path: string, index: KeyGroupIndex, keyGroup: number, file?: FileHandle): Promise<Array<[Buffer, Buffer]>> {
  const slot = index.find(([kg]) => kg === keyGroup);
  if (slot === undefined) return [];
  const [, offset, length] = slot;
  const handle = file ?? (await open(path, 'r'));
  try {
    const header = Buffer.alloc(HEADER_BYTES);
    await handle.read(header, 0, HEADER_BYTES, 0);
    if (!header.subarray(0, MAGIC.length).equals(MAGIC)) throw corrupt(path, 'it is not an Eddy checkpoint file');
    const version = header.readUInt16BE(MAGIC.length);
    if (version !== KEY_GROUP_FILE_VERSION) throw corrupt(path, `format version ${version}, this engine reads ${KEY_GROUP_FILE_VERSION}`);
    const section = Buffer.alloc(length);
    const { bytesRead } = await handle.read(section, 0, length, offset);
    if (bytesRead !== length) throw corrupt(path, `key group ${keyGroup} is cut short (${bytesRead} of ${length} bytes)`);
    if (section.readUInt16BE(0) !== keyGroup) throw corrupt(path, `key group ${keyGroup} is not where the index says`);
    const count = section.readUInt32BE(2);
    const entries: Array<[Buffer, Buffer]> = [];
    let at = 6;
    for (let i = 0; i < count; i++) {
      if (at + 4 > length) throw corrupt(path, `key group ${keyGroup} ends inside entry ${i}`);
      const keyLength = section.readUInt32BE(at);
      const key = section.subarray(at + 4, at + 4 + keyLength);
      at += 4 + keyLength;
      if (at + 4 > length) throw corrupt(path, `key group ${keyGroup} ends inside entry ${i}`);
      const valueLength = section.readUInt32BE(at);
      const value = section.subarray(at + 4, at + 4 + valueLength);
      at += 4 + valueLength;
      if (at > length) throw corrupt(path, `key group ${keyGroup} ends inside entry ${i}`);
      entries.push([key, value]);
    }
    return entries;
  } finally {
    if (file === undefined) await handle.close();
  }
}

function corrupt(path: string, problem: string): EddyError {
  return new EddyError('EDDY_CHECKPOINT_CORRUPT', `checkpoint file ${path} is corrupt or partial: ${problem}; restore from another checkpoint`);
}
