import type { AnyFunctionType } from '../coordinator-type.js';
import protobuf from 'protobufjs';
import { type Codec, jsonCodec } from '../codec.js';
import { EddyError } from '../errors.js';

/**
 * A codec with a StateFun typename: what a value's TypedValue carries on the wire, and what the
 * runtime checks state mutations against.
 */
export interface TypedCodec<T> extends Codec<T> {
  readonly typename: string;
}

/**
 * The built-in StateFun types (`io.statefun.types/*`). Each value is its protobuf wrapper message
 * `{ value = 1 }` (types.proto of statefun-sdk-protos), encoded by hand here: int is sfixed32 and long
 * sfixed64 (fixed width, not varints), and proto3 leaves a default value out, so 0, false and "" are
 * zero bytes.
 */
const WIRE_VARINT = 0;
const WIRE_FIXED64 = 1;
const WIRE_LENGTH = 2;
const WIRE_FIXED32 = 5;

/** The bytes of field 1 of a wrapper (its last occurrence, as protobuf merges), or undefined if absent. */
function wrapped(bytes: Uint8Array, wireType: number, typename: string): { reader: protobuf.Reader; at: number } | undefined {
  const reader = protobuf.Reader.create(bytes);
  let at: number | undefined;
  while (reader.pos < reader.len) {
    const tag = reader.uint32();
    const type = tag & 7;
    if (tag >>> 3 === 1 && type !== wireType) {
      throw new EddyError('EDDY_UNDECODABLE_PAYLOAD', `${typename}: field 1 has wire type ${type}, expected ${wireType}`);
    }
    if (tag >>> 3 === 1) at = reader.pos;
    reader.skipType(type);
  }
  if (at === undefined) return undefined;
  reader.pos = at;
  return { reader, at };
}

function fixed(tag: number, width: 4 | 8, write: (view: DataView) => void): Uint8Array {
  const bytes = new Uint8Array(1 + width);
  bytes[0] = tag;
  write(new DataView(bytes.buffer, 1, width));
  return bytes;
}

function view(bytes: Uint8Array, at: number, width: number): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset + at, width);
}

/** `io.statefun.types/string`: StringWrapper. */
export const stringType: TypedCodec<string> = {
  name: 'io.statefun.types/string',
  typename: 'io.statefun.types/string',
  encode(value) {
    if (typeof value !== 'string') throw notA('string', value);
    if (value.length === 0) return new Uint8Array(0);
    const writer = protobuf.Writer.create();
    return writer.uint32((1 << 3) | WIRE_LENGTH).string(value).finish();
  },
  decode(bytes) {
    const found = wrapped(bytes, WIRE_LENGTH, 'io.statefun.types/string');
    return found === undefined ? '' : found.reader.string();
  },
};

/** `io.statefun.types/int`: IntWrapper, sfixed32. */
export const intType: TypedCodec<number> = {
  name: 'io.statefun.types/int',
  typename: 'io.statefun.types/int',
  encode(value) {
    if (!Number.isInteger(value) || value < -0x80000000 || value > 0x7fffffff) throw notA('32-bit integer', value);
    if (value === 0) return new Uint8Array(0);
    return fixed((1 << 3) | WIRE_FIXED32, 4, (v) => v.setInt32(0, value, true));
  },
  decode(bytes) {
    const found = wrapped(bytes, WIRE_FIXED32, 'io.statefun.types/int');
    return found === undefined ? 0 : view(bytes, found.at, 4).getInt32(0, true);
  },
};

/** `io.statefun.types/long`: LongWrapper, sfixed64, as a bigint (a number loses precision past 2^53). */
export const longType: TypedCodec<bigint> = {
  name: 'io.statefun.types/long',
  typename: 'io.statefun.types/long',
  encode(value) {
    if (typeof value !== 'bigint' || BigInt.asIntN(64, value) !== value) throw notA('64-bit bigint', value);
    if (value === 0n) return new Uint8Array(0);
    return fixed((1 << 3) | WIRE_FIXED64, 8, (v) => v.setBigInt64(0, value, true));
  },
  decode(bytes) {
    const found = wrapped(bytes, WIRE_FIXED64, 'io.statefun.types/long');
    return found === undefined ? 0n : view(bytes, found.at, 8).getBigInt64(0, true);
  },
};

/** `io.statefun.types/bool`: BooleanWrapper. */
export const boolType: TypedCodec<boolean> = {
  name: 'io.statefun.types/bool',
  typename: 'io.statefun.types/bool',
  encode(value) {
    if (typeof value !== 'boolean') throw notA('boolean', value);
    return value ? Uint8Array.of((1 << 3) | WIRE_VARINT, 1) : new Uint8Array(0);
  },
  decode(bytes) {
    const found = wrapped(bytes, WIRE_VARINT, 'io.statefun.types/bool');
    return found === undefined ? false : found.reader.bool();
  },
};

/** `io.statefun.types/float`: FloatWrapper, 32-bit IEEE 754 (a number is rounded to it). */
export const floatType: TypedCodec<number> = {
  name: 'io.statefun.types/float',
  typename: 'io.statefun.types/float',
  encode(value) {
    if (typeof value !== 'number') throw notA('number', value);
    if (Object.is(value, 0)) return new Uint8Array(0);
    return fixed((1 << 3) | WIRE_FIXED32, 4, (v) => v.setFloat32(0, value, true));
  },
  decode(bytes) {
    const found = wrapped(bytes, WIRE_FIXED32, 'io.statefun.types/float');
    return found === undefined ? 0 : view(bytes, found.at, 4).getFloat32(0, true);
  },
};

/** `io.statefun.types/double`: DoubleWrapper. */
export const doubleType: TypedCodec<number> = {
  name: 'io.statefun.types/double',
  typename: 'io.statefun.types/double',
  encode(value) {
    if (typeof value !== 'number') throw notA('number', value);
    if (Object.is(value, 0)) return new Uint8Array(0);
    return fixed((1 << 3) | WIRE_FIXED64, 8, (v) => v.setFloat64(0, value, true));
  },
  decode(bytes) {
    const found = wrapped(bytes, WIRE_FIXED64, 'io.statefun.types/double');
    return found === undefined ? 0 : view(bytes, found.at, 8).getFloat64(0, true);
  },
};

function notA(what: string, value: unknown): EddyError {
  const shown = typeof value === 'bigint' ? `${value}n` : JSON.stringify(value) ?? String(value);
  return new EddyError('EDDY_UNDECODABLE_PAYLOAD', `cannot encode ${shown} as a ${what}: pass a ${what}`);
}

/** JSON values under a typename of your choosing (`namespace/name`), as the SDKs' JSON types do. */
export function jsonType<T = unknown>(typename: string): TypedCodec<T> {
  if (typeof typename !== 'string' || typename.lastIndexOf('/') <= 0 || typename.endsWith('/')) {
    throw new EddyError('EDDY_INVALID_ARGUMENT', `jsonType: typename ${JSON.stringify(typename)} must look like "namespace/name"`);
  }
  return { ...jsonCodec<T>(), name: `json:${typename}`, typename };
}

/** The typename of the default JSON codec, and of any JSON codec not given one with jsonType. */
export const EDDY_JSON_TYPENAME = 'io.eddy.types/json';

/**
 * The StateFun typename of a codec: its own (the built-in types, jsonType), a protobuf codec's message
 * as `type.googleapis.com/<full name>` (as the SDKs name them), and `io.eddy.types/json` for JSON.
 */
export function typenameOf(codec: Codec<unknown>): string {
  const own = (codec as Partial<TypedCodec<unknown>>).typename;
  if (typeof own === 'string') return own;
  if (codec.name.startsWith('protobuf:')) return `type.googleapis.com/${codec.name.slice('protobuf:'.length)}`;
  if (codec.name === 'json') return EDDY_JSON_TYPENAME;
  // A custom codec: its name is the best id it has.
  return codec.name.includes('/') ? codec.name : `io.eddy.types/${codec.name}`;
}

/** Whether a codec names its typename itself (then a value with another typename is refused). */
export function hasOwnTypename(codec: Codec<unknown>): boolean {
  return typeof (codec as Partial<TypedCodec<unknown>>).typename === 'string' || codec.name.startsWith('protobuf:');
}

/** The typename of the messages function type `fn` takes: its codec's; a coordinator's requests are JSON. */
export function messageTypenameOf(fn: AnyFunctionType | undefined): string {
  return fn?.kind === 'regular' ? typenameOf(fn.codec) : EDDY_JSON_TYPENAME;
}

/** The StateFun egress typename of an egress of the job: its name if that is `namespace/name`, else `eddy/<name>`. */
export function egressTypename(name: string): string {
  return name.lastIndexOf('/') > 0 && !name.endsWith('/') ? name : `eddy/${name}`;
}
