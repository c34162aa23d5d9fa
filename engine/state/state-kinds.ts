/**
 * The state kinds: their declarations (`valueState`, `mapState`, `listState`) and the handles bound to
 * one invocation. Map entries and list elements are keys of their own under the instance's prefix
 * (state-keys.ts), so they carry the key group (checkpoints, restores and rescaling move them like any
 * state) and a change writes one entry, never the whole collection.
 */
import { type Codec, decodeOrExplain, jsonCodec } from '../codec.js';
import { EddyError } from '../errors.js';
import { listIndexEntry, stateEntriesPrefix, stateEntryKey } from './state-keys.js';
import type {
  AnyStateSpec,
  ListStateHandle,
  ListStateOptions,
  ListStateSpec,
  MapStateHandle,
  MapStateOptions,
  MapStateSpec,
  StateHandle,
  StateSpec,
  ValueStateOptions,
} from './state-types.js';

function checkTtl(ttlMs: number | undefined, where: string): void {
  if (ttlMs !== undefined && !(Number.isFinite(ttlMs) && ttlMs > 0)) {
    throw new EddyError('EDDY_INVALID_JOB', `${where} ttlMs must be a positive number of milliseconds, got ${ttlMs}`);
  }
}

/** Declares a single value of state per function instance. */
export function valueState<T>(options: ValueStateOptions<T> = {}): StateSpec<T> {
  checkTtl(options.ttlMs, 'valueState');
  return { kind: 'value', codec: options.codec ?? jsonCodec<T>(), ttlMs: options.ttlMs };
}

/**
 * Declares a map per function instance: `ctx.state.<name>.get(key)`, `set`, `delete`, `has`, and the
 * async `entries()`, `keys()`, `size()`, `clear()`. Each entry is stored under a key of its own, with
 * its own TTL if `ttlMs` is given.
 */
export function mapState<K, V>(options: MapStateOptions<K, V> = {}): MapStateSpec<K, V> {
  checkTtl(options.ttlMs, 'mapState');
  return { kind: 'map', keyCodec: options.keyCodec ?? jsonCodec<K>(), codec: options.codec ?? jsonCodec<V>(), ttlMs: options.ttlMs };
}

/** Declares a list per function instance: `append`, `values()`, `length()`, `clear()`. */
export function listState<T>(options: ListStateOptions<T> = {}): ListStateSpec<T> {
  return { kind: 'list', codec: options.codec ?? jsonCodec<T>() };
}

/** Whether `spec` is a declared state of any kind (for defineFunction's checks). */
export function isStateSpec(spec: unknown): spec is AnyStateSpec {
  const s = spec as Partial<AnyStateSpec> | null | undefined;
  return s !== null && typeof s === 'object' && (s.kind === 'value' || s.kind === 'map' || s.kind === 'list') && typeof s.codec?.encode === 'function';
}

/**
 * What a state handle needs from its invocation: reads that see the invocation's own staged writes,
 * staging, and a scan of the live store (for whole-map reads).
 */
export interface StateAccess {
  /** `type:id` of the instance, for error messages. */
  readonly instanceName: string;
  /** Key of the declared state `name` of this instance. */
  stateKey(name: string): string;
  readStaged(key: string): Uint8Array | null | undefined;
  stageWrite(key: string, value: Uint8Array | null): void;
  /** This invocation's staged writes (key to value; null: deleted). */
  readonly writes: ReadonlyMap<string, Uint8Array | null> | undefined;
  /** Entries of the store whose keys start with `prefix`, in key order, with every write applied so far. */
  scanState(prefix: string): AsyncIterable<[string, Uint8Array]>;
}

/** The handle of declared state `name` for one invocation. */
export function bindState(access: StateAccess, name: string, spec: AnyStateSpec): StateHandle<unknown> | MapStateHandle<unknown, unknown> | ListStateHandle<unknown> {
  switch (spec.kind) {
    case 'map':
      return new BoundMap(access, name, spec);
    case 'list':
      return new BoundList(access, name, spec);
    default:
      return new BoundValue(access, name, spec);
  }
}

/**
 * Stored value layout: [flags:u8][expiresAt:f64 BE if flags & 1][codec bytes]. The flag byte keeps
 * values readable when a TTL is added to or removed from a declaration later.
 */
const EXPIRES = 1;

function readValue<T>(codec: Codec<T>, bytes: Uint8Array, what: string): T | undefined {
  let offset = 1;
  if ((bytes[0]! & EXPIRES) !== 0) {
    const expiresAt = Buffer.from(bytes.buffer, bytes.byteOffset + 1, 8).readDoubleBE(0);
    if (expiresAt <= Date.now()) return undefined;
    offset = 9;
  }
  return decodeOrExplain(codec, bytes.subarray(offset), what);
}

function writeValue<T>(codec: Codec<T>, ttlMs: number | undefined, value: T): Uint8Array {
  const header = ttlMs === undefined ? 1 : 9;
  let bytes: Uint8Array;
  if (codec.encodeAfter !== undefined) bytes = codec.encodeAfter(value, header);
  else {
    const payload = codec.encode(value);
    bytes = Buffer.allocUnsafe(header + payload.byteLength);
    bytes.set(payload, header);
  }
  if (ttlMs === undefined) bytes[0] = 0;
  else {
    bytes[0] = EXPIRES;
    new DataView(bytes.buffer, bytes.byteOffset, header).setFloat64(1, Date.now() + ttlMs); // big-endian
  }
  return bytes;
}

class BoundValue<T> implements StateHandle<T> {
  constructor(
    private readonly access: StateAccess,
    private readonly name: string,
    private readonly spec: StateSpec<T>,
  ) {}

  get(): T | undefined {
    const bytes = this.access.readStaged(this.access.stateKey(this.name));
    if (bytes === null || bytes === undefined) return undefined;
    return readValue(this.spec.codec, bytes, `state ${this.name} of ${this.access.instanceName}`);
  }

  set(value: T): void {
    if (value === undefined) {
      this.delete();
      return;
    }
    this.access.stageWrite(this.access.stateKey(this.name), writeValue(this.spec.codec, this.spec.ttlMs, value));
  }

  delete(): void {
    this.access.stageWrite(this.access.stateKey(this.name), null);
  }
}

class BoundMap<K, V> implements MapStateHandle<K, V> {
  private readonly prefix: string;

  constructor(
    private readonly access: StateAccess,
    private readonly name: string,
    private readonly spec: MapStateSpec<K, V>,
  ) {
    this.prefix = stateEntriesPrefix(access.stateKey(name));
  }

  private keyOf(key: K): string {
    const bytes = this.spec.keyCodec.encode(key);
    if (bytes.byteLength > 0xffff) {
      throw new EddyError('EDDY_INVALID_ARGUMENT', `map state ${this.name} of ${this.access.instanceName}: a key of ${bytes.byteLength} bytes; keys are at most 65535 bytes encoded`);
    }
    return stateEntryKey(this.prefix, Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1'));
  }

  private what(): string {
    return `map state ${this.name} of ${this.access.instanceName}`;
  }

  get(key: K): V | undefined {
    const bytes = this.access.readStaged(this.keyOf(key));
    if (bytes === null || bytes === undefined) return undefined;
    return readValue(this.spec.codec, bytes, this.what());
  }

  has(key: K): boolean {
    return this.get(key) !== undefined;
  }

  set(key: K, value: V): void {
    if (value === undefined) {
      this.delete(key);
      return;
    }
    this.access.stageWrite(this.keyOf(key), writeValue(this.spec.codec, this.spec.ttlMs, value));
  }

  delete(key: K): void {
    this.access.stageWrite(this.keyOf(key), null);
  }

  /** Live entries as stored keys and values: the store overlaid with this invocation's staged writes, expired ones left out. */
  private async live(): Promise<Array<[string, V]>> {
    const merged = new Map<string, Uint8Array>();
    for await (const [key, value] of this.access.scanState(this.prefix)) merged.set(key, value);
    const staged: string[] = [];
    for (const [key, value] of this.access.writes ?? []) {
      if (!key.startsWith(this.prefix)) continue;
      if (value === null) merged.delete(key);
      else {
        if (!merged.has(key)) staged.push(key);
        merged.set(key, value);
      }
    }
    // The scan is in key order; keys first written by this invocation go in their place.
    const keys = staged.length === 0 ? [...merged.keys()] : [...merged.keys()].sort();
    const out: Array<[string, V]> = [];
    for (const key of keys) {
      const value = readValue(this.spec.codec, merged.get(key)!, this.what());
      if (value !== undefined) out.push([key, value]);
    }
    return out;
  }

  private decodeKey(key: string): K {
    return decodeOrExplain(this.spec.keyCodec, Buffer.from(key.slice(this.prefix.length), 'latin1'), `a key of ${this.what()}`);
  }

  async entries(): Promise<Array<[K, V]>> {
    return (await this.live()).map(([key, value]) => [this.decodeKey(key), value]);
  }

  async keys(): Promise<K[]> {
    return (await this.live()).map(([key]) => this.decodeKey(key));
  }

  async size(): Promise<number> {
    return (await this.live()).length;
  }

  async clear(): Promise<void> {
    const keys: string[] = [];
    for await (const [key] of this.access.scanState(this.prefix)) keys.push(key);
    for (const key of this.access.writes?.keys() ?? []) if (key.startsWith(this.prefix)) keys.push(key);
    for (const key of keys) this.access.stageWrite(key, null);
  }
}

/** A list's counter: its elements are the indexes [start, end). */
interface ListBounds {
  start: number;
  end: number;
}

const MAX_LIST_INDEX = 0xffffffff;

class BoundList<T> implements ListStateHandle<T> {
  private readonly counterKey: string;
  private readonly prefix: string;

  constructor(
    private readonly access: StateAccess,
    private readonly name: string,
    private readonly spec: ListStateSpec<T>,
  ) {
    this.counterKey = access.stateKey(name);
    this.prefix = stateEntriesPrefix(this.counterKey);
  }

  private bounds(): ListBounds {
    const bytes = this.access.readStaged(this.counterKey);
    if (bytes === null || bytes === undefined) return { start: 0, end: 0 };
    const view = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    return { start: view.readUInt32BE(0), end: view.readUInt32BE(4) };
  }

  private setBounds({ start, end }: ListBounds): void {
    if (start === end) {
      this.access.stageWrite(this.counterKey, null);
      return;
    }
    const bytes = Buffer.allocUnsafe(8);
    bytes.writeUInt32BE(start, 0);
    bytes.writeUInt32BE(end, 4);
    this.access.stageWrite(this.counterKey, bytes);
  }

  append(...values: T[]): void {
    if (values.length === 0) return;
    const bounds = this.bounds();
    if (bounds.end + values.length > MAX_LIST_INDEX) {
      throw new EddyError('EDDY_INVALID_ARGUMENT', `list state ${this.name} of ${this.access.instanceName} is full (${MAX_LIST_INDEX} appends since its last clear); clear it`);
    }
    for (const value of values) {
      if (value === undefined) throw new EddyError('EDDY_INVALID_ARGUMENT', `list state ${this.name} of ${this.access.instanceName}: cannot append undefined`);
      this.access.stageWrite(stateEntryKey(this.prefix, listIndexEntry(bounds.end++)), writeValue(this.spec.codec, undefined, value));
    }
    this.setBounds(bounds);
  }

  values(): T[] {
    const { start, end } = this.bounds();
    const out: T[] = [];
    for (let i = start; i < end; i++) {
      const bytes = this.access.readStaged(stateEntryKey(this.prefix, listIndexEntry(i)));
      if (bytes === null || bytes === undefined) continue;
      const value = readValue(this.spec.codec, bytes, `list state ${this.name} of ${this.access.instanceName}`);
      if (value !== undefined) out.push(value);
    }
    return out;
  }

  length(): number {
    const { start, end } = this.bounds();
    return end - start;
  }

  clear(): void {
    const { start, end } = this.bounds();
    for (let i = start; i < end; i++) this.access.stageWrite(stateEntryKey(this.prefix, listIndexEntry(i)), null);
    this.setBounds({ start: 0, end: 0 });
  }
}
