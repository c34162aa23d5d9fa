import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';

/**
 * Version of envelope.proto; bump with any incompatible change and keep a reader for the old one.
 * 2 added the transaction kinds and `txn` (additively: version-1 bytes read unchanged).
 */
export const WIRE_VERSION = 2;

export const Kind = {
  INVOKE: 1,
  BARRIER: 2,
  PREPARE: 3,
  VOTE: 4,
  COMMIT: 5,
  ABORT: 6,
  SAGA_STEP: 7,
  SAGA_RESULT: 8,
  WAITS_FOR: 9,
  PROBE: 10,
} as const;
export const SagaPhase = { FORWARD: 0, COMPENSATION: 1 } as const;
export const Channel = { ROUTER: 1, FEEDBACK: 2, ACK: 3 } as const;
export type ChannelId = (typeof Channel)[keyof typeof Channel];

/** An envelope as protobufjs encodes and decodes it (camelCase fields). */
export interface Envelope {
  kind: number;
  targetType: string;
  targetId: string;
  sourceType: string;
  sourceId: string;
  payload: Uint8Array;
  ingressTime: number;
  origin: number;
  seq: number;
  /** BARRIER envelopes only (0 otherwise; protobufjs may leave it undefined on decode). */
  checkpointId?: number;
  /** Transaction kinds only (protobufjs decodes an absent one as null). */
  txn?: Transaction | null;
}

/** A transaction as others refer to it (see envelope.proto). */
export interface TxnRef {
  id: string;
  startedAt: number;
  coordinatorType: string;
  coordinatorId: string;
}

/** The transaction details of a protocol envelope; which fields are set depends on the kind. */
export interface Transaction {
  id: string;
  startedAt?: number;
  invocations?: Uint8Array[];
  ok?: boolean;
  step?: number;
  phase?: number;
  blockers?: TxnRef[];
  initiator?: TxnRef | null;
}

export interface Batch {
  channel: ChannelId;
  envelopes: Envelope[];
  credits: number;
  feedbackAcks: number;
}

export interface EgressRecord {
  egress: number;
  payload: Uint8Array;
  ingressTime: number;
}

export interface TimerEntry {
  envelope: Envelope;
  token: string;
  fireAt: number;
}

const root = protobuf.loadSync(fileURLToPath(new URL('./envelope.proto', import.meta.url)));
const BatchType = root.lookupType('eddy.wire.v1.Batch');
const EnvelopeType = root.lookupType('eddy.wire.v1.Envelope');
const EgressBatchType = root.lookupType('eddy.wire.v1.EgressBatch');
const TimerType = root.lookupType('eddy.wire.v1.Timer');

/**
 * protobufjs hands out slices of a shared slab for small messages; a transferred ArrayBuffer must be
 * the message's own, or the transfer would detach the slab under everyone else.
 */
function ownBuffer(bytes: Uint8Array): ArrayBuffer {
  if (bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength && bytes.buffer instanceof ArrayBuffer) {
    return bytes.buffer;
  }
  const copy = new Uint8Array(bytes.byteLength);
  copy.set(bytes);
  return copy.buffer;
}

/**
 * proto3 leaves an empty `bytes` field off the wire, and protobufjs then hands out its default, a
 * plain (frozen) Array: make it an empty Uint8Array, as codecs expect and as sent.
 */
function withPayload<M extends { payload: Uint8Array }>(message: M): M {
  if (!(message.payload instanceof Uint8Array)) message.payload = new Uint8Array(0);
  return message;
}

export function encodeBatch(batch: Batch): ArrayBuffer {
  return ownBuffer(BatchType.encode(batch).finish());
}

function readString(this: protobuf.BufferReader): string {
  return this.string();
}

/**
 * Reads bytes of our own encoder: strings as one native UTF-8 slice each, and `bytes` fields as Buffer
 * views (which the JSON codec reads without another wrapper). protobufjs checks every proto3 string
 * for valid UTF-8 in JS, a few characters at a time: that made a tenth of a worker's allocations.
 * A plain BufferReader with its own `stringVerify`, not a subclass: with `class extends BufferReader`,
 * V8 aborted every optimization of `decodeBatch` in a loaded worker ("dependency change" under
 * --trace-opt), so it ran unoptimized and the background compiles took a tenth of a core.
 */
function ownBytesReader(buffer: Buffer): protobuf.BufferReader {
  const reader = new protobuf.BufferReader(buffer);
  reader.stringVerify = readString;
  return reader;
}

export function decodeBatch(buffer: ArrayBuffer): Batch {
  const batch = BatchType.decode(ownBytesReader(Buffer.from(buffer))) as unknown as Batch;
  for (const envelope of batch.envelopes) withPayload(envelope);
  return batch;
}

export function encodeEgressBatch(records: EgressRecord[], epoch: number): ArrayBuffer {
  return ownBuffer(EgressBatchType.encode({ records, epoch }).finish());
}

export function decodeEgressBatch(buffer: ArrayBuffer | Uint8Array): { records: EgressRecord[]; epoch: number } {
  const bytes = buffer instanceof Uint8Array ? Buffer.from(buffer.buffer, buffer.byteOffset, buffer.byteLength) : Buffer.from(buffer);
  const batch = EgressBatchType.decode(ownBytesReader(bytes)) as unknown as { records: EgressRecord[]; epoch: number };
  batch.records.forEach(withPayload);
  return batch;
}

/** A checkpoint barrier for one channel. */
export function barrier(checkpointId: number, origin: number): Envelope {
  return { kind: Kind.BARRIER, targetType: '', targetId: '', sourceType: '', sourceId: '', payload: new Uint8Array(0), ingressTime: 0, origin, seq: 0, checkpointId };
}

export function encodeEnvelope(envelope: Envelope): Uint8Array {
  return EnvelopeType.encode(envelope).finish();
}

export function decodeEnvelope(bytes: Uint8Array): Envelope {
  return withPayload(EnvelopeType.decode(bytes) as unknown as Envelope);
}

export function encodeTimer(timer: TimerEntry): Uint8Array {
  return TimerType.encode(timer).finish();
}

export function decodeTimer(bytes: Uint8Array): TimerEntry {
  const timer = TimerType.decode(bytes) as unknown as TimerEntry;
  withPayload(timer.envelope);
  return timer;
}
