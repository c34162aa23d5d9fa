import { type Codec, jsonCodec } from './codec.js';
import { EddyError } from './errors.js';
import {
  type Address,
  type AnyEgressRecords,
  type EgressDeclarations,
  type EgressRecords,
  type EgressRecordsOf,
  type Effects,
  type FunctionType,
  type StateSpecs,
  validateEgressDeclarations,
  validateFunctionTypeName,
} from './function-type.js';

/**
 * Effects a coordinator declares for one outcome of its transaction; they apply when it ends that way.
 * `sendAfter` delivers `delayMs` after the outcome (not after the declaration); a pending delayed
 * message of this coordinator with the same `options.token` is replaced.
 */
export type OutcomeEffects<E extends EgressRecords = AnyEgressRecords> = Effects<E>;

/** What every coordinator handler can see and declare. `M`: its request type; `E`: its declared egresses. */
export interface CoordinatorContext<M = unknown, E extends EgressRecords = AnyEgressRecords> {
  /** This coordinator instance. */
  readonly self: Address<M>;
  /** Who sent the request; undefined for requests from an ingress. */
  readonly caller: Address | undefined;
  /** Applies when every participant succeeded (2PC: committed). */
  readonly onSuccess: OutcomeEffects<E>;
  /** Applies when a participant failed with `InvocationFailed` (2PC: aborted; saga: after its compensations). */
  readonly onFailure: OutcomeEffects<E>;
}

/** The context of a two-phase-commit coordinator. */
export interface TpcContext<M = unknown, E extends EgressRecords = AnyEgressRecords> extends CoordinatorContext<M, E> {
  /**
   * Makes `message` to `to` part of the transaction. Several invocations of one instance are one
   * participant: they run in declared order, in one isolated step, and see each other's writes. A typed
   * address (`fn.address(id)`) takes only its function's message type.
   */
  invoke<T>(to: Address<T>, message: NoInfer<T>): void;
  /** Applies when the transaction was chosen as a deadlock victim (or waited too long for a lock): retry it, e.g. with `sendAfter(..., ctx.self, request)`. */
  readonly onRetryable: OutcomeEffects<E>;
}

/** The context of a saga coordinator. */
export interface SagaContext<M = unknown, E extends EgressRecords = AnyEgressRecords> extends CoordinatorContext<M, E> {
  /**
   * A step of the saga: `forward` to `to` now, and `compensation` to `to` if the saga fails after this
   * step succeeded. Both are ordinary invocations of `to`, typed by its address.
   */
  invokePair<T>(to: Address<T>, forward: NoInfer<T>, compensation: NoInfer<T>): void;
}

export interface TpcOptions<M, E extends EgressDeclarations = Record<string, never>> {
  /** Codec of the requests this coordinator receives. Default: JSON. */
  codec?: Codec<M>;
  /** The egresses the outcomes write to, as for `defineFunction`. Default: none declared (unchecked). */
  egresses?: E;
  /**
   * Longest time a transaction may wait for all its votes (its PREPAREs for their locks) before it
   * ends as retryable (`onRetryable`): a second line of defence behind deadlock detection, for
   * participants that hold locks too long. Default: none (wait).
   */
  lockWaitTimeoutMs?: number;
}

export interface SagaOptions<M, E extends EgressDeclarations = Record<string, never>> {
  /** Codec of the requests this coordinator receives. Default: JSON. */
  codec?: Codec<M>;
  /** The egresses the outcomes write to, as for `defineFunction`. Default: none declared (unchecked). */
  egresses?: E;
  /** Times a compensation is tried before it goes to the dead letters. Default: 5. */
  compensationAttempts?: number;
  /** Wait before the first retry of a failed compensation; doubles with each retry. Default: 50 ms. */
  compensationRetryDelayMs?: number;
}

export interface CoordinatorBase<M> {
  readonly type: string;
  readonly codec: Codec<M>;
  /** Coordinators declare no state of their own: their transaction record is engine state. */
  readonly state: Record<string, never>;
  /** The egress names the coordinator declared (the job must define them); empty if none. */
  readonly egresses: readonly string[];
  /** The address of this coordinator's instance `id`; one transaction at a time runs per instance. */
  address(id: string): Address<M>;
}

export interface TpcCoordinatorType<M = unknown, E extends EgressRecords = AnyEgressRecords> extends CoordinatorBase<M> {
  readonly kind: 'tpc';
  readonly handler: (ctx: TpcContext<M, E>, message: M) => void | Promise<void>;
  readonly lockWaitTimeoutMs: number | undefined;
}

export interface SagaCoordinatorType<M = unknown, E extends EgressRecords = AnyEgressRecords> extends CoordinatorBase<M> {
  readonly kind: 'saga';
  readonly handler: (ctx: SagaContext<M, E>, message: M) => void | Promise<void>;
  readonly compensationAttempts: number;
  readonly compensationRetryDelayMs: number;
}

export type CoordinatorType<M = unknown, E extends EgressRecords = AnyEgressRecords> = TpcCoordinatorType<M, E> | SagaCoordinatorType<M, E>;

/** Anything a job lists in `functions`: a regular function or a coordinator. */
export type AnyFunctionType = FunctionType<unknown, StateSpecs> | CoordinatorType<unknown>;

function checkHandler(kind: string, type: string, handler: unknown): void {
  validateFunctionTypeName(type, kind);
  if (typeof handler !== 'function') {
    throw new EddyError('EDDY_INVALID_JOB', `${kind} ${type}: the handler must be a function (ctx, message) => void`);
  }
}

function positive(kind: string, type: string, name: string, value: number | undefined, integer: boolean): void {
  if (value === undefined) return;
  if (typeof value !== 'number' || !(value > 0) || !Number.isFinite(value) || (integer && !Number.isInteger(value))) {
    throw new EddyError('EDDY_INVALID_JOB', `${kind} ${type}: ${name} must be a positive ${integer ? 'integer' : 'number'}, got ${String(value)}`);
  }
}

/**
 * A two-phase-commit coordinator: from one request, `handler` declares the invocations of the
 * transaction and the effects of its outcomes; the engine runs them as one serializable transaction
 * (two-phase commit with two-phase locking, deadlocks detected and broken).
 */
export function tpcCoordinator<M = unknown, E extends EgressDeclarations = Record<string, never>>(
  type: string,
  handler: (ctx: TpcContext<M, EgressRecordsOf<E>>, message: M) => void | Promise<void>,
  options: TpcOptions<M, E> = {},
): TpcCoordinatorType<M, EgressRecordsOf<E>> {
  checkHandler('tpcCoordinator', type, handler);
  validateEgressDeclarations(options.egresses, `tpcCoordinator ${type}`);
  positive('tpcCoordinator', type, 'lockWaitTimeoutMs', options.lockWaitTimeoutMs, false);
  return {
    kind: 'tpc',
    type,
    codec: options.codec ?? jsonCodec<M>(),
    state: {},
    egresses: Object.keys(options.egresses ?? {}),
    handler,
    lockWaitTimeoutMs: options.lockWaitTimeoutMs,
    address: (id: string) => ({ type, id }),
  };
}

/**
 * A saga coordinator: from one request, `handler` declares pairs of (invocation, compensation) and
 * the effects of the outcomes. Forward invocations run as ordinary invocations (no locks: other
 * invocations can see a saga's intermediate state); if any fails, every step that succeeded is
 * compensated, then the failure effects apply.
 */
export function sagaCoordinator<M = unknown, E extends EgressDeclarations = Record<string, never>>(
  type: string,
  handler: (ctx: SagaContext<M, EgressRecordsOf<E>>, message: M) => void | Promise<void>,
  options: SagaOptions<M, E> = {},
): SagaCoordinatorType<M, EgressRecordsOf<E>> {
  checkHandler('sagaCoordinator', type, handler);
  validateEgressDeclarations(options.egresses, `sagaCoordinator ${type}`);
  positive('sagaCoordinator', type, 'compensationAttempts', options.compensationAttempts, true);
  positive('sagaCoordinator', type, 'compensationRetryDelayMs', options.compensationRetryDelayMs, false);
  return {
    kind: 'saga',
    type,
    codec: options.codec ?? jsonCodec<M>(),
    state: {},
    egresses: Object.keys(options.egresses ?? {}),
    handler,
    compensationAttempts: options.compensationAttempts ?? 5,
    compensationRetryDelayMs: options.compensationRetryDelayMs ?? 50,
    address: (id: string) => ({ type, id }),
  };
}
