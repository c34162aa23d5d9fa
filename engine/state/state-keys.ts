/**
 * Layout of keys in a worker's store. Every key starts with its key group (u16 big-endian), so one
 * key-group range is one contiguous scan that returns user state and engine state together.
 *
 *   [kg:u16][space:u8][...]
 *   space USER   : [typeLen:u16][type utf8][idLen:u16][id utf8][state name utf8]            value state; list: its counter
 *                  [typeLen:u16][type utf8][idLen:u16][id utf8][state name utf8][0x00][entry]  map entry (encoded key) or list element (u32 BE index)
 *   space TIMER  : [fireAt:f64 BE][typeLen:u16][type][idLen:u16][id][token utf8]   value: Timer proto
 *   space TOKEN  : [typeLen:u16][type][idLen:u16][id][token utf8]                   value: fireAt f64
 *   space PARKED : [seq:f64 BE]                                                      value: Envelope proto
 *   space TXN    : [typeLen:u16][type][idLen:u16][id]   value: ParticipantRecord or CoordinatorRecord proto
 *
 * Keys are kept as latin1 strings (one char per byte) in the cache: cheap to build, usable as Map
 * keys, and converted to bytes only when they reach the backend.
 */

export const Space = { USER: 1, TIMER: 2, TOKEN: 3, PARKED: 4, TXN: 5 } as const;

const ASCII = /^[ -~]*$/; // printable ASCII is its own UTF-8; anything else is converted

/** UTF-8 bytes of `s`, as a latin1 string. */
function utf8Latin1(s: string): string {
  return ASCII.test(s) ? s : Buffer.from(s, 'utf8').toString('latin1');
}

function u16(n: number): string {
  return String.fromCharCode(n >>> 8, n & 0xff);
}

function lengthPrefixed(s: string): string {
  const bytes = utf8Latin1(s);
  if (bytes.length > 0xffff) throw new RangeError(`identifier longer than 65535 bytes: ${s.slice(0, 40)}...`);
  return u16(bytes.length) + bytes;
}

function f64(n: number): string {
  const b = Buffer.allocUnsafe(8);
  b.writeDoubleBE(n);
  return b.toString('latin1');
}

export function keyGroupPrefix(kg: number, space: number): string {
  return u16(kg) + String.fromCharCode(space);
}

/** Prefix of every state value of every instance of `type` in key group `kg`. */
export function typeStatePrefix(kg: number, type: string): string {
  return keyGroupPrefix(kg, Space.USER) + lengthPrefixed(type);
}

/** Prefix of every state value of one function instance. */
export function instancePrefix(kg: number, type: string, id: string): string {
  return keyGroupPrefix(kg, Space.USER) + lengthPrefixed(type) + lengthPrefixed(id);
}

export function userStateKey(instance: string, stateName: string): string {
  return instance + utf8Latin1(stateName);
}

/**
 * Separates a state's name from the part that names one entry of a map or list state. State names
 * cannot contain it (defineFunction refuses them), so no state's key starts with another's entries.
 */
const ENTRY_SEPARATOR = '\u0000';

/**
 * Prefix of the entries of the map or list state whose key (`userStateKey`) is `stateKey`:
 * `[kg][USER][type][id][name]\0`. Under the instance prefix, so entries keep their key group and move
 * with it on rescale.
 */
export function stateEntriesPrefix(stateKey: string): string {
  return stateKey + ENTRY_SEPARATOR;
}

/** Key of one entry of a map (`entry`: the encoded key, as latin1) or list (`entry`: `u32(index)`). */
export function stateEntryKey(entriesPrefix: string, entry: string): string {
  return entriesPrefix + entry;
}

/** A list element's index as its entry: big-endian, so elements scan in append order. */
export function listIndexEntry(index: number): string {
  return String.fromCharCode((index >>> 24) & 0xff, (index >>> 16) & 0xff, (index >>> 8) & 0xff, index & 0xff);
}

export function timerKey(kg: number, fireAt: number, type: string, id: string, token: string): string {
  return keyGroupPrefix(kg, Space.TIMER) + f64(fireAt) + lengthPrefixed(type) + lengthPrefixed(id) + utf8Latin1(token);
}

export function tokenKey(kg: number, type: string, id: string, token: string): string {
  return keyGroupPrefix(kg, Space.TOKEN) + lengthPrefixed(type) + lengthPrefixed(id) + utf8Latin1(token);
}

export function parkedKey(kg: number, seq: number): string {
  return keyGroupPrefix(kg, Space.PARKED) + f64(seq);
}

/** The sequence number of a `parkedKey` (as the backend's bytes). */
export function parkedSeqOf(key: Uint8Array): number {
  return decodeF64(key.subarray(3, 11));
}

/** The transaction record of one instance: its lock as a participant, or its transaction as a coordinator. */
export function txnKey(kg: number, type: string, id: string): string {
  return keyGroupPrefix(kg, Space.TXN) + lengthPrefixed(type) + lengthPrefixed(id);
}

/** The space of a key (a value of `Space`). */
export function spaceOfKey(key: string): number {
  return key.charCodeAt(2);
}

/** Where the function type starts in a USER, TOKEN or TXN key: after [kg:u16][space:u8][typeLen:u16]. */
export const KEY_TYPE_START = 5;

/** The length of the function type (latin1 characters of its UTF-8 bytes) in a USER, TOKEN or TXN key. */
export function typeLengthOfKey(key: string): number {
  return (key.charCodeAt(3) << 8) | key.charCodeAt(4);
}

/** The instance a USER, TOKEN or TXN key belongs to (a `txnKey`, a state value's key). */
export function addressOfKey(key: string): { type: string; id: string } {
  const typeLength = typeLengthOfKey(key);
  const type = key.slice(KEY_TYPE_START, KEY_TYPE_START + typeLength);
  const idStart = KEY_TYPE_START + typeLength + 2;
  const idLength = (key.charCodeAt(idStart - 2) << 8) | key.charCodeAt(idStart - 1);
  const utf8 = (latin1: string): string => Buffer.from(latin1, 'latin1').toString('utf8');
  return { type: utf8(type), id: utf8(key.slice(idStart, idStart + idLength)) };
}

export function keyGroupOfKey(key: string): number {
  return (key.charCodeAt(0) << 8) | key.charCodeAt(1);
}

export function encodeF64(n: number): Uint8Array {
  const b = Buffer.allocUnsafe(8);
  b.writeDoubleBE(n);
  return b;
}

export function decodeF64(bytes: Uint8Array): number {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).readDoubleBE(0);
}

export function toBytes(key: string): Buffer {
  return Buffer.from(key, 'latin1');
}

export function fromBytes(key: Uint8Array): string {
  return Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString('latin1');
}

/** The smallest key strictly after every key that starts with `prefix`. */
export function prefixEnd(prefix: string): string {
  let i = prefix.length - 1;
  while (i >= 0 && prefix.charCodeAt(i) === 0xff) i--;
  if (i < 0) throw new RangeError('prefix has no upper bound');
  return prefix.slice(0, i) + String.fromCharCode(prefix.charCodeAt(i) + 1);
}
