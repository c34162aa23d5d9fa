/**
 * The public types of declared state: what `valueState`, `mapState` and `listState` declare, and the
 * handles a handler gets as `ctx.state.<name>`. Implementation: state-kinds.ts.
 */
import type { Codec } from '../codec.js';

/** A single value per function instance: `valueState<T>()`. */
export interface StateSpec<T> {
  readonly kind: 'value';
  readonly codec: Codec<T>;
  /** Time to live after the last write, in milliseconds; expired values read as absent. Default: none. */
  readonly ttlMs: number | undefined;
}

/** A map per function instance, each entry a key of its own in the store: `mapState<K, V>()`. */
export interface MapStateSpec<K, V> {
  readonly kind: 'map';
  /** Encodes keys; entries iterate in the order of the encoded keys' bytes. */
  readonly keyCodec: Codec<K>;
  readonly codec: Codec<V>;
  /** Time to live of each entry after its last write, in milliseconds; expired entries read as absent. Default: none. */
  readonly ttlMs: number | undefined;
}

/** A list per function instance, each element a key of its own in the store: `listState<T>()`. */
export interface ListStateSpec<T> {
  readonly kind: 'list';
  readonly codec: Codec<T>;
}

/** Any declared state. */
export type AnyStateSpec = StateSpec<any> | MapStateSpec<any, any> | ListStateSpec<any>;

export type StateSpecs = Record<string, AnyStateSpec>;

/** Options of `valueState`. */
export interface ValueStateOptions<T> {
  /** Encodes the value. Default: JSON. */
  codec?: Codec<T>;
  /** Time to live after the last write, in milliseconds. Default: none. */
  ttlMs?: number;
}

/** Options of `mapState`. */
export interface MapStateOptions<K, V> {
  /** Encodes keys (at most 65535 bytes each). Default: JSON. */
  keyCodec?: Codec<K>;
  /** Encodes values. Default: JSON. */
  codec?: Codec<V>;
  /** Time to live of each entry after its last write, in milliseconds. Default: none. */
  ttlMs?: number;
}

/** Options of `listState`. */
export interface ListStateOptions<T> {
  /** Encodes elements. Default: JSON. */
  codec?: Codec<T>;
}

/** Typed access to one declared state value of the current instance. */
export interface StateHandle<T> {
  get(): T | undefined;
  set(value: T): void;
  delete(): void;
}

/**
 * Typed access to a declared map of the current instance. Point operations are synchronous and touch
 * one entry; `entries`, `keys` and `size` read the whole map (a scan of its keys), so they are async.
 * Writes are staged with the invocation's other effects and seen by its later reads.
 */
export interface MapStateHandle<K, V> {
  get(key: K): V | undefined;
  has(key: K): boolean;
  set(key: K, value: V): void;
  delete(key: K): void;
  /** The live entries, in the order of their encoded keys. */
  entries(): Promise<Array<[K, V]>>;
  keys(): Promise<K[]>;
  /** The number of live entries (a scan: O(entries)). */
  size(): Promise<number>;
  /** Deletes every entry. */
  clear(): Promise<void>;
}

/**
 * Typed access to a declared list of the current instance. Elements are stored one per key, indexed
 * from a counter: `append` writes one element, never the whole list.
 */
export interface ListStateHandle<T> {
  append(...values: T[]): void;
  /** The elements in append order (one point read each). */
  values(): T[];
  /** The number of elements (no scan: kept with the counter). */
  length(): number;
  /** Deletes every element. */
  clear(): void;
}

/** The handle a handler gets for a declared state. */
export type StateHandleOf<S> = S extends MapStateSpec<infer K, infer V>
  ? MapStateHandle<K, V>
  : S extends ListStateSpec<infer T>
    ? ListStateHandle<T>
    : S extends StateSpec<infer T>
      ? StateHandle<T>
      : never;

export type StateHandles<S extends StateSpecs> = { readonly [K in keyof S]: StateHandleOf<S[K]> };
