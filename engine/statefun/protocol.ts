import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';
import { EddyError } from '../errors.js';

/**
 * StateFun 3.x request-reply messages (request-reply.proto) as protobufjs decodes them: camelCase
 * fields, absent fields undefined or defaulted. Messages built here leave default values out (as the
 * official SDKs do, so the bytes are the same): proto3 writes a field protobufjs was given even when
 * it holds the default.
 */
export interface SfAddress {
  namespace?: string;
  type?: string;
  id?: string;
}

export interface TypedValue {
  typename?: string;
  hasValue?: boolean;
  value?: Uint8Array;
}

export interface PersistedValue {
  stateName?: string;
  stateValue?: TypedValue | null;
}

export interface ToFunctionInvocation {
  caller?: SfAddress | null;
  argument?: TypedValue | null;
}

export interface InvocationBatchRequest {
  target?: SfAddress | null;
  state?: PersistedValue[];
  invocations?: ToFunctionInvocation[];
}

export interface ToFunction {
  invocation?: InvocationBatchRequest | null;
}

export const MutationType = { DELETE: 0, MODIFY: 1 } as const;
export const ExpireMode = { NONE: 0, AFTER_WRITE: 1, AFTER_INVOKE: 2 } as const;

export interface PersistedValueMutation {
  mutationType?: number;
  stateName?: string;
  stateValue?: TypedValue | null;
}

export interface FromFunctionInvocation {
  target?: SfAddress | null;
  argument?: TypedValue | null;
}

export interface DelayedInvocation {
  /** A number when built here; protobufjs decodes int64 as a Long (use `Number(...)`). */
  delayInMs?: number | { toNumber(): number };
  target?: SfAddress | null;
  argument?: TypedValue | null;
  isCancellationRequest?: boolean;
  cancellationToken?: string;
}

export interface EgressMessage {
  egressNamespace?: string;
  egressType?: string;
  argument?: TypedValue | null;
}

export interface InvocationResponse {
  stateMutations?: PersistedValueMutation[];
  outgoingMessages?: FromFunctionInvocation[];
  delayedInvocations?: DelayedInvocation[];
  outgoingEgresses?: EgressMessage[];
}

export interface ExpirationSpec {
  mode?: number;
  expireAfterMillis?: number | { toNumber(): number };
}

export interface PersistedValueSpec {
  stateName?: string;
  expirationSpec?: ExpirationSpec | null;
  typeTypename?: string;
}

export interface FromFunction {
  invocationResult?: InvocationResponse | null;
  incompleteInvocationContext?: { missingValues?: PersistedValueSpec[] } | null;
}

/** KafkaProducerRecord of kafka-egress.proto: what a StateFun Kafka egress takes. */
export interface KafkaProducerRecord {
  key?: string;
  valueBytes?: Uint8Array;
  topic?: string;
}

export const KAFKA_PRODUCER_RECORD_TYPENAME = 'type.googleapis.com/io.statefun.sdk.egress.KafkaProducerRecord';

const root = new protobuf.Root();
root.loadSync([fileURLToPath(new URL('./request-reply.proto', import.meta.url)), fileURLToPath(new URL('./kafka-egress.proto', import.meta.url))]);
const ToFunctionType = root.lookupType('io.statefun.sdk.reqreply.ToFunction');
const FromFunctionType = root.lookupType('io.statefun.sdk.reqreply.FromFunction');
const KafkaProducerRecordType = root.lookupType('io.statefun.sdk.egress.KafkaProducerRecord');

/** The protobufjs types, for tools and tests that walk a message by reflection. */
export const statefunTypes = { ToFunction: ToFunctionType, FromFunction: FromFunctionType, KafkaProducerRecord: KafkaProducerRecordType };

function decodeWith<T>(type: protobuf.Type, bytes: Uint8Array, what: string): T {
  try {
    return type.decode(bytes) as unknown as T;
  } catch (cause) {
    throw new EddyError(
      'EDDY_UNDECODABLE_PAYLOAD',
      `${bytes.byteLength} bytes are not a StateFun ${what} (${(cause as Error).message}); check that the caller speaks StateFun 3.x request-reply`,
      { cause },
    );
  }
}

export function decodeToFunction(bytes: Uint8Array): ToFunction {
  return decodeWith(ToFunctionType, bytes, 'ToFunction');
}

export function encodeToFunction(message: ToFunction): Uint8Array {
  return ToFunctionType.encode(message).finish();
}

export function decodeFromFunction(bytes: Uint8Array): FromFunction {
  return decodeWith(FromFunctionType, bytes, 'FromFunction');
}

export function encodeFromFunction(message: FromFunction): Uint8Array {
  return FromFunctionType.encode(message).finish();
}

export function decodeKafkaProducerRecord(bytes: Uint8Array): KafkaProducerRecord {
  return decodeWith(KafkaProducerRecordType, bytes, 'KafkaProducerRecord');
}

export function encodeKafkaProducerRecord(record: KafkaProducerRecord): Uint8Array {
  return KafkaProducerRecordType.encode(record).finish();
}

/**
 * A typename `namespace/name` split at its last `/`, as StateFun's TypeName.parseFrom does (the
 * namespace may hold dots and slashes, the name not).
 */
export function splitTypename(typename: string): { namespace: string; name: string } {
  const at = typename.lastIndexOf('/');
  if (at <= 0 || at === typename.length - 1) {
    throw new EddyError('EDDY_INVALID_ARGUMENT', `typename ${JSON.stringify(typename)} must look like "namespace/name"`);
  }
  return { namespace: typename.slice(0, at), name: typename.slice(at + 1) };
}

/** The function type `namespace/type` of a StateFun address. */
export function functionTypeOf(address: SfAddress): string {
  return `${address.namespace ?? ''}/${address.type ?? ''}`;
}

/** A StateFun address of function type `type` (`namespace/name`), instance `id`. */
export function sfAddress(type: string, id: string): SfAddress {
  const { namespace, name } = splitTypename(type);
  return { namespace, type: name, id };
}

/** A present TypedValue, defaults left out (an empty value has no `value` field on the wire). */
export function typedValue(typename: string, value: Uint8Array): TypedValue {
  return value.byteLength === 0 ? { typename, hasValue: true } : { typename, hasValue: true, value };
}

const EMPTY = new Uint8Array(0);

/**
 * The bytes of a TypedValue, empty when it has none. proto3 leaves empty bytes off the wire, and
 * protobufjs then hands out its default, a plain array rather than a Uint8Array.
 */
export function valueBytes(value: TypedValue | null | undefined): Uint8Array {
  const bytes = value?.value;
  return bytes instanceof Uint8Array ? bytes : EMPTY;
}
