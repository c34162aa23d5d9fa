import { type Codec, jsonCodec } from './codec.js';
import { EddyError, type InvocationFailed } from './errors.js';

/** One function instance: a function type and an id. It exists once it is addressed. */
export interface Address {
  readonly type: string;
  readonly id: string;
}

const TYPE_PATTERN = /^[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+$/;

export function validateFunctionTypeName(type: string, where: string): void {
  if (typeof type !== 'string' || !TYPE_PATTERN.test(type)) {
    throw new EddyError(
      'EDDY_INVALID_JOB',
      `${where}: function type ${JSON.stringify(type)} must look like "namespace/name" (letters, digits, _ . -)`,
    );
  }
}

export function validateAddress(value: unknown, where: string): asserts value is Address {
  const candidate = value as Partial<Address> | null | undefined;
  if (
    candidate === null ||
    typeof candidate !== 'object' ||
    typeof candidate.type !== 'string' ||
    typeof candidate.id !== 'string' ||
    candidate.id.length === 0
  ) {
    throw new EddyError(
      'EDDY_INVALID_ADDRESS',
      `${where}: ${JSON.stringify(value)} is not an address: pass { type: "namespace/name", id: "<non-empty string>" }`,
    );
  }
  // State keys and the wire carry ids as UTF-8, which has no encoding for an unpaired surrogate.
  if (!(candidate.id as string & { isWellFormed(): boolean }).isWellFormed()) {
    throw new EddyError(
      'EDDY_INVALID_ADDRESS',
      `${where}: id ${JSON.stringify(candidate.id)} is not well-formed Unicode (it has an unpaired surrogate); pass a well-formed string`,
    );
  }
}

export function formatAddress(address: Address): string {
  return `${address.type}:${address.id}`;
}

/** A declared piece of state of a function type. The key in the `state` object is its name. */
export interface StateSpec<T> {
  readonly codec: Codec<T>;
  /** Time to live after the last write, in milliseconds; expired values read as absent. Default: none. */
  readonly ttlMs: number | undefined;
}

/** Declares a single value of state per function instance. */
export function valueState<T>(options: { codec?: Codec<T>; ttlMs?: number } = {}): StateSpec<T> {
  if (options.ttlMs !== undefined && !(Number.isFinite(options.ttlMs) && options.ttlMs > 0)) {
    throw new EddyError('EDDY_INVALID_JOB', `valueState ttlMs must be a positive number of milliseconds, got ${options.ttlMs}`);
  }
  return { codec: options.codec ?? jsonCodec<T>(), ttlMs: options.ttlMs };
}

export type StateSpecs = Record<string, StateSpec<unknown>>;

/** Typed access to one declared state value of the current instance. */
export interface StateHandle<T> {
  get(): T | undefined;
  set(value: T): void;
  delete(): void;
}

export type StateHandles<S extends StateSpecs> = { readonly [K in keyof S]: StateHandle<S[K] extends StateSpec<infer T> ? T : never> };

export interface SendAfterOptions {
  /**
   * A token to cancel this message with; unique among the pending delayed messages of the sending
   * instance. Default: a fresh one, returned by `sendAfter`.
   */
  token?: string;
}

/** What a handler can see and do. All effects are applied only if the invocation succeeds. */
export interface Context<S extends StateSpecs = StateSpecs> {
  /** This instance. */
  readonly self: Address;
  /** The function instance that sent this message; undefined for messages from an ingress. */
  readonly caller: Address | undefined;
  readonly state: StateHandles<S>;
  send(to: Address, message: unknown): void;
  /** Delivers `message` after `delayMs`; survives restarts (kept in keyed state). Returns the token. */
  sendAfter(delayMs: number, to: Address, message: unknown, options?: SendAfterOptions): string;
  /** Cancels a pending delayed message of this instance; a no-op if it was delivered already. */
  cancelDelayed(token: string): void;
  egress(name: string, record: unknown): void;
}

export type Handler<M, S extends StateSpecs> = (ctx: Context<S>, message: M) => void | Promise<void>;
export type FailureHandler<M, S extends StateSpecs> = (
  ctx: Context<S>,
  error: InvocationFailed,
  message: M,
) => void | Promise<void>;

export interface FunctionSpec<M, S extends StateSpecs> {
  /** `namespace/name`, e.g. `bank/account`. */
  type: string;
  /** Declared state; reading anything else is an error. Default: none. */
  state?: S;
  /** Codec of the messages this function receives. Default: JSON. */
  codec?: Codec<M>;
  handler: Handler<M, S>;
  /**
   * Runs when the handler threw `InvocationFailed`, after its effects were discarded; its own effects
   * apply (e.g. egress a rejection). Default: the failure is only counted.
   */
  onInvocationFailed?: FailureHandler<M, S>;
}

export interface FunctionType<M = unknown, S extends StateSpecs = StateSpecs> {
  readonly kind: 'regular';
  readonly type: string;
  readonly state: S;
  readonly codec: Codec<M>;
  readonly handler: Handler<M, S>;
  readonly onInvocationFailed: FailureHandler<M, S> | undefined;
  /** The address of this type's instance `id`. */
  address(id: string): Address;
}

export function defineFunction<M = unknown, S extends StateSpecs = Record<string, never>>(
  spec: FunctionSpec<M, S>,
): FunctionType<M, S> {
  validateFunctionTypeName(spec.type, 'defineFunction');
  if (typeof spec.handler !== 'function') {
    throw new EddyError('EDDY_INVALID_JOB', `function ${spec.type}: handler must be a function (ctx, message) => void`);
  }
  const state = spec.state ?? ({} as S);
  for (const [name, decl] of Object.entries(state)) {
    if (name.length === 0 || typeof decl?.codec?.encode !== 'function') {
      throw new EddyError('EDDY_INVALID_JOB', `function ${spec.type}: state ${JSON.stringify(name)} must be declared with valueState()`);
    }
  }
  const type = spec.type;
  return {
    kind: 'regular',
    type,
    state,
    codec: spec.codec ?? jsonCodec<M>(),
    handler: spec.handler,
    onInvocationFailed: spec.onInvocationFailed,
    address: (id: string) => ({ type, id }),
  };
}
