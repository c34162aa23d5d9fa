import protobuf from 'protobufjs';
import { EddyError } from './errors.js';

/** Turns values into bytes and back. Messages, state values and egress records all use codecs. */
export interface Codec<T> {
  /** Shown in error messages, e.g. `json` or `protobuf:bank.Account`. */
  readonly name: string;
  encode(value: T): Uint8Array;
  decode(bytes: Uint8Array): T;
  /**
   * Optional: the encoded value behind `offset` bytes left free for the caller's header, in one
   * allocation (state values carry a header: without this they are encoded, then copied behind it).
   */
  encodeAfter?(value: T, offset: number): Uint8Array;
}

function jsonText(value: unknown): string {
  const text = JSON.stringify(value);
  if (text === undefined) {
    throw new EddyError('EDDY_UNDECODABLE_PAYLOAD', `json codec cannot encode ${typeof value}: pass a JSON value`);
  }
  return text;
}

/** JSON in UTF-8; the default codec everywhere. */
export function jsonCodec<T = unknown>(): Codec<T> {
  return {
    name: 'json',
    // Buffer's UTF-8 paths are 2-3x faster than TextEncoder/TextDecoder for message-sized strings.
    encode: (value) => Buffer.from(jsonText(value), 'utf8'),
    encodeAfter: (value, offset) => {
      const text = jsonText(value);
      const bytes = Buffer.allocUnsafe(offset + Buffer.byteLength(text, 'utf8'));
      bytes.write(text, offset, 'utf8');
      return bytes;
    },
    decode: (bytes) =>
      JSON.parse((Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)).toString('utf8')) as T,
  };
}

/**
 * A protobufjs message type as a codec. Values are plain objects (`toObject` with longs as strings
 * and bytes as Uint8Array), so they can cross threads and be logged.
 */
export function protobufCodec<T extends object>(type: protobuf.Type): Codec<T> {
  return {
    name: `protobuf:${type.fullName.replace(/^\./, '')}`,
    encode: (value) => {
      const problem = type.verify(longsFromStrings(type, value));
      if (problem !== null) {
        throw new EddyError('EDDY_UNDECODABLE_PAYLOAD', `protobuf type ${type.fullName} cannot encode value: ${problem}`);
      }
      return type.encode(type.fromObject(value)).finish();
    },
    decode: (bytes) => type.toObject(type.decode(bytes), { longs: String, defaults: true }) as T,
  };
}

const LONG_TYPES = new Set(['int64', 'uint64', 'sint64', 'fixed64', 'sfixed64']);

/** A 64-bit integer field's decimal string as protobufjs's `{ low, high }`; unchanged if out of range. */
function longBits(text: string, unsigned: boolean): unknown {
  const n = BigInt(text);
  if (unsigned ? n < 0n || n >= 1n << 64n : n < -(1n << 63n) || n >= 1n << 63n) return text;
  const bits = BigInt.asUintN(64, n);
  return { low: Number(bits & 0xffffffffn) | 0, high: Number(bits >> 32n) | 0, unsigned };
}

/**
 * `value` with 64-bit integers given as decimal strings (the form `decode` returns) made `{ low, high }`,
 * so that `verify`, which takes only numbers and Longs there, accepts what this codec decoded.
 */
function longsFromStrings(type: protobuf.Type, value: unknown): Record<string, unknown> {
  const object = value as Record<string, unknown>;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return object;
  let copy: Record<string, unknown> | undefined;
  for (const field of type.fieldsArray) {
    const given = object[field.name];
    if (given === undefined || given === null) continue;
    const resolved = field.resolve().resolvedType;
    const convert = (v: unknown): unknown =>
      typeof v === 'string' && LONG_TYPES.has(field.type) && /^-?\d+$/.test(v)
        ? longBits(v, field.type === 'uint64' || field.type === 'fixed64')
        : resolved instanceof protobuf.Type ? longsFromStrings(resolved, v) : v;
    const converted = field.map && typeof given === 'object' ? Object.fromEntries(Object.entries(given).map(([k, v]) => [k, convert(v)]))
      : field.repeated && Array.isArray(given) ? given.map(convert)
      : convert(given);
    (copy ??= { ...object })[field.name] = converted;
  }
  return copy ?? object;
}

export const defaultCodec: Codec<unknown> = jsonCodec();

/** Decodes, and names the codec and the place when the bytes are not what it expects. */
export function decodeOrExplain<T>(codec: Codec<T>, bytes: Uint8Array, what: string): T {
  try {
    return codec.decode(bytes);
  } catch (cause) {
    throw new EddyError(
      'EDDY_UNDECODABLE_PAYLOAD',
      `${what}: ${bytes.byteLength} bytes are not valid ${codec.name} (${(cause as Error).message}); ` +
        'check that the sender and the receiver declare the same codec',
      { cause },
    );
  }
}
