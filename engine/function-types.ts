/**
 * The public types of function types: addresses typed by their message, the handler's context and
 * effects, egress declarations, and the spec and handle of a function type. Implementation (and the
 * declarations' checks): function-type.ts.
 */
import type { Codec } from './codec.js';
import type { InvocationFailed } from './errors.js';
import type { StateHandles, StateSpecs } from './state/state-types.js';

/** Carries an address's message type at compile time only; no address has it at run time. */
declare const messageType: unique symbol;

/**
 * One function instance: a function type and an id. It exists once it is addressed. `M` is the type
 * of the messages it takes: `account.address(id)` is an `Address<AccountOp>`, so sending it anything
 * else does not compile. A plain `{ type, id }` is an `Address<unknown>` and takes any message (the
 * dynamic case, checked by the target's codec at run time).
 */
export interface Address<M = unknown> {
  readonly type: string;
  readonly id: string;
  readonly [messageType]?: M;
}

/**
 * Declares the record type of an egress a function writes to, for `egresses` of `defineFunction` and
 * the coordinators, when the function does not hold the egress itself (one function, several jobs).
 */
export interface EgressType<R> {
  readonly kind: 'egress-type';
  /** Compile time only. */
  readonly [messageType]?: R;
}

/**
 * The egresses a function writes to, by name: an egress of the job (its `name` must be the key) or
 * an `egressType<R>()`.
 */
export type EgressDeclarations = Readonly<Record<string, EgressType<any> | { readonly name: string; readonly codec: Codec<any> }>>;

/** Egress names to record types: what `ctx.egress(name, record)` accepts. */
export type EgressRecords = Readonly<Record<string, unknown>>;

/** The record types of declared egresses. */
export type RecordsOf<E extends EgressDeclarations> = {
  readonly [K in keyof E]: E[K] extends EgressType<infer R> ? R : E[K] extends { readonly codec: Codec<infer R> } ? R : never;
};

/** Egress records of a function that declares none: any name, any record (checked at run time). */
export type AnyEgressRecords = Record<string, unknown>;

export interface SendAfterOptions {
  /**
   * A token to cancel this message with; unique among the pending delayed messages of the sending
   * instance. Default: a fresh one, returned by `sendAfter`.
   */
  token?: string;
}

/** Sending and egress, typed by the target's address and the declared egresses. */
export interface Effects<E extends EgressRecords = AnyEgressRecords> {
  /** Sends `message` to `to`; a typed address (`fn.address(id)`) takes only its function's message type. */
  send<T>(to: Address<T>, message: NoInfer<T>): void;
  /** Delivers `message` after `delayMs`; survives restarts (kept in keyed state). Returns the token. */
  sendAfter<T>(delayMs: number, to: Address<T>, message: NoInfer<T>, options?: SendAfterOptions): string;
  /**
   * Writes `record` to the egress `name`. With `egresses` declared, only their names compile and each
   * takes its record type; without, any name (an unknown one is a dead letter at run time).
   */
  egress<N extends keyof E & string>(name: N, record: E[N]): void;
}

/** What a handler can see and do. All effects are applied only if the invocation succeeds. */
export interface Context<S extends StateSpecs = StateSpecs, M = unknown, E extends EgressRecords = AnyEgressRecords> extends Effects<E> {
  /** This instance. */
  readonly self: Address<M>;
  /** The function instance that sent this message; undefined for messages from an ingress. */
  readonly caller: Address | undefined;
  readonly state: StateHandles<S>;
  /** Cancels a pending delayed message of this instance; a no-op if it was delivered already. */
  cancelDelayed(token: string): void;
}

export type Handler<M, S extends StateSpecs, E extends EgressRecords = AnyEgressRecords> = (ctx: Context<S, M, E>, message: M) => void | Promise<void>;
export type FailureHandler<M, S extends StateSpecs, E extends EgressRecords = AnyEgressRecords> = (
  ctx: Context<S, M, E>,
  error: InvocationFailed,
  message: M,
) => void | Promise<void>;

export interface FunctionSpec<M, S extends StateSpecs, E extends EgressDeclarations = Record<string, never>> {
  /** `namespace/name`, e.g. `bank/account`. */
  type: string;
  /** Declared state; reading anything else is an error. Default: none. */
  state?: S;
  /** Codec of the messages this function receives. Default: JSON. */
  codec?: Codec<M>;
  /**
   * The egresses the handler writes to, by name: `{ responses }` (an egress of the job) or
   * `{ responses: egressType<Response>() }`. Then `ctx.egress` takes only these names, each with its
   * record type, and the job must define them. Default: none declared, and `ctx.egress` is unchecked.
   */
  egresses?: E;
  handler: Handler<M, S, EgressRecordsOf<E>>;
  /**
   * Runs when the handler threw `InvocationFailed`, after its effects were discarded; its own effects
   * apply (e.g. egress a rejection). Default: the failure is only counted.
   */
  onInvocationFailed?: FailureHandler<M, S, EgressRecordsOf<E>>;
}

/** What `ctx.egress` accepts for declarations `E`: unchecked when none are declared. */
export type EgressRecordsOf<E extends EgressDeclarations> = string extends keyof E ? AnyEgressRecords : [keyof E] extends [never] ? AnyEgressRecords : RecordsOf<E>;

export interface FunctionType<M = unknown, S extends StateSpecs = StateSpecs, E extends EgressRecords = AnyEgressRecords> {
  readonly kind: 'regular';
  readonly type: string;
  readonly state: S;
  readonly codec: Codec<M>;
  /** The egress names the handlers declared (the job must define them); empty if none. */
  readonly egresses: readonly string[];
  readonly handler: Handler<M, S, E>;
  readonly onInvocationFailed: FailureHandler<M, S, E> | undefined;
  /** The address of this type's instance `id`, typed: sending it anything but an `M` does not compile. */
  address(id: string): Address<M>;
}
