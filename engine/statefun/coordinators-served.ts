import type { AnyFunctionType } from '../coordinator-type.js';
import { EddyError } from '../errors.js';
import { Channel, decodeBatch, decodeEnvelope, encodeBatch, encodeEnvelope, type Envelope, Kind } from '../wire/envelope.js';
import type { HoldMode } from '../../operators/core-host.js';
import type { PersistedValueSpec } from './protocol.js';

/**
 * Transactions and sagas served over StateFun (issue 13): their bookkeeping lives in two declared
 * StateFun values of each instance that can take part, so that StateFun checkpoints it with the rest
 * of the instance's state and sends it with every request:
 * - `eddy_txn`: the transaction record (operators/coordinators: a participant's lock and staged
 *   effects, or a coordinator's record and votes), the bytes `InvocationCore.records()` makes;
 * - `eddy_order`: how a transaction holds the instance and what waits for it, in order.
 * The protocol messages are StateFun messages of typenames `io.eddy.types/<kind>` whose bytes are an
 * Eddy envelope (engine/wire/envelope.proto).
 */
export const TXN_STATE = 'eddy_txn';
export const ORDER_STATE = 'eddy_order';
export const TXN_RECORD_TYPENAME = 'io.eddy.types/txn-record';
export const ORDER_TYPENAME = 'io.eddy.types/order';
/** A coordinator's lock-wait timeout, as a delayed message to itself; its bytes are the transaction id (UTF-8). */
export const LOCK_WAIT_TYPENAME = 'io.eddy.types/lock-wait-timeout';

const KIND_NAMES: ReadonlyMap<number, string> = new Map([
  [Kind.INVOKE, 'invoke'],
  [Kind.PREPARE, 'prepare'],
  [Kind.VOTE, 'vote'],
  [Kind.COMMIT, 'commit'],
  [Kind.ABORT, 'abort'],
  [Kind.SAGA_STEP, 'saga-step'],
  [Kind.SAGA_RESULT, 'saga-result'],
  [Kind.WAITS_FOR, 'waits-for'],
  [Kind.PROBE, 'probe'],
]);
const KINDS_BY_TYPENAME = new Map([...KIND_NAMES].map(([kind, name]) => [`io.eddy.types/${name}`, kind]));

/** The StateFun typename of a protocol envelope of `kind`. */
export function protocolTypename(kind: number): string {
  return `io.eddy.types/${KIND_NAMES.get(kind) ?? `kind-${kind}`}`;
}

/** Whether a message of `typename` is a protocol envelope (true for the protocol kinds; INVOKE messages carry the user's typename). */
export function isProtocolTypename(typename: string): boolean {
  const kind = KINDS_BY_TYPENAME.get(typename);
  return kind !== undefined && kind !== Kind.INVOKE;
}

export function encodeProtocolMessage(envelope: Envelope): Uint8Array {
  return encodeEnvelope(envelope);
}

/** A protocol envelope from its StateFun message, checked against the typename it came with and the address it came to. */
export function decodeProtocolMessage(typename: string, bytes: Uint8Array, target: { type: string; id: string }): Envelope {
  const envelope = decodeEnvelope(bytes);
  if (KINDS_BY_TYPENAME.get(typename) !== envelope.kind || envelope.targetType !== target.type || envelope.targetId !== target.id) {
    throw new EddyError(
      'EDDY_INVALID_ARGUMENT',
      `a ${typename} message for ${target.type}:${target.id} holds an envelope of kind ${envelope.kind} for ${envelope.targetType}:${envelope.targetId}; ` +
        'io.eddy.types messages are made by eddy serve only: do not send them from elsewhere',
    );
  }
  return envelope;
}

/** The extra state specs of a function type of a job with coordinators (none without: nothing can take part in a transaction). */
export function transactionStateSpecs(fn: AnyFunctionType, jobHasCoordinators: boolean): PersistedValueSpec[] {
  if (!jobHasCoordinators) return [];
  if (Object.prototype.hasOwnProperty.call(fn.state, TXN_STATE) || Object.prototype.hasOwnProperty.call(fn.state, ORDER_STATE)) {
    throw new EddyError('EDDY_INVALID_JOB', `${fn.type} declares state named ${TXN_STATE} or ${ORDER_STATE}, which eddy serve keeps transactions in; rename that state`);
  }
  return [
    { stateName: TXN_STATE, expirationSpec: {}, typeTypename: TXN_RECORD_TYPENAME },
    { stateName: ORDER_STATE, expirationSpec: {}, typeTypename: ORDER_TYPENAME },
  ];
}

/** What `eddy_order` holds. */
export interface ServedOrder {
  mode: HoldMode | undefined;
  /** Envelopes waiting for the instance, in arrival order. */
  queue: Envelope[];
  /** Transactions this coordinator instance started (ids are made from it, so a replayed request makes the same one). */
  started: number;
}

const MODES: ReadonlyArray<HoldMode | undefined> = [undefined, 'busy', 'locked', 'shared'];

/** `eddy_order` as an envelope Batch (the wire the worker's mailboxes park in): `credits` is the hold mode, `feedbackAcks` the count of started transactions. */
export function encodeOrder(order: ServedOrder): Uint8Array | null {
  if (order.mode === undefined && order.queue.length === 0 && order.started === 0) return null;
  return new Uint8Array(encodeBatch({ channel: Channel.FEEDBACK, envelopes: order.queue, credits: MODES.indexOf(order.mode), feedbackAcks: order.started }));
}

export function decodeOrder(bytes: Uint8Array | undefined): ServedOrder {
  if (bytes === undefined || bytes.byteLength === 0) return { mode: undefined, queue: [], started: 0 };
  const copy = new Uint8Array(bytes.byteLength);
  copy.set(bytes);
  const batch = decodeBatch(copy.buffer);
  return { mode: MODES[batch.credits ?? 0], queue: batch.envelopes, started: batch.feedbackAcks ?? 0 };
}
