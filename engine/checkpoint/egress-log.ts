import { open, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { EddyError } from '../errors.js';

/**
 * The egress output of a checkpoint's epoch (DESIGN.md section 8, write-ahead sinks): the encoded
 * egress batches the workers produced up to the cut of checkpoint n that no earlier complete
 * checkpoint holds. Written and fsynced before `_metadata`, so once checkpoint n is complete its
 * output can be published again after any crash.
 *
 *   header: "EDDYEG" u16 version
 *   then per batch: [length:u32][EgressBatch bytes]
 */
export const EGRESS_LOG_VERSION = 1;
export const EGRESS_LOG_FILE = 'egress.log';
const MAGIC = Buffer.from('EDDYEG', 'latin1');
const HEADER_BYTES = MAGIC.length + 2;

export async function writeEgressLog(checkpointFolder: string, batches: readonly Uint8Array[]): Promise<number> {
  const header = Buffer.alloc(HEADER_BYTES);
  MAGIC.copy(header);
  header.writeUInt16BE(EGRESS_LOG_VERSION, MAGIC.length);
  const chunks: Uint8Array[] = [header];
  let bytes = header.length;
  for (const batch of batches) {
    const length = Buffer.allocUnsafe(4);
    length.writeUInt32BE(batch.byteLength);
    chunks.push(length, batch);
    bytes += 4 + batch.byteLength;
  }
  const file = await open(join(checkpointFolder, EGRESS_LOG_FILE), 'w');
  try {
    await file.writev(chunks);
    await file.sync();
  } finally {
    await file.close();
  }
  return bytes;
}

export async function readEgressLog(checkpointFolder: string): Promise<Uint8Array[]> {
  const path = join(checkpointFolder, EGRESS_LOG_FILE);
  const corrupt = (problem: string): EddyError =>
    new EddyError('EDDY_CHECKPOINT_CORRUPT', `${path} ${problem}: the checkpoint's output cannot be published again; restore from another checkpoint`);
  let data: Buffer;
  try {
    data = await readFile(path);
  } catch (cause) {
    throw new EddyError('EDDY_CHECKPOINT_CORRUPT', `${path} is missing: the checkpoint's output cannot be published again`, { cause });
  }
  if (data.length < HEADER_BYTES || !data.subarray(0, MAGIC.length).equals(MAGIC)) throw corrupt('is not an egress log');
  const version = data.readUInt16BE(MAGIC.length);
  if (version !== EGRESS_LOG_VERSION) throw corrupt(`has format version ${version}; this engine reads version ${EGRESS_LOG_VERSION}`);
  const batches: Uint8Array[] = [];
  let offset = HEADER_BYTES;
  while (offset < data.length) {
    if (offset + 4 > data.length) throw corrupt('ends inside a length');
    const length = data.readUInt32BE(offset);
    offset += 4;
    if (offset + length > data.length) throw corrupt('ends inside a batch');
    batches.push(data.subarray(offset, offset + length));
    offset += length;
  }
  return batches;
}
