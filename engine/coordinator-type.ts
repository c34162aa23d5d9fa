import { type Codec, jsonCodec } from './codec.js';
import { EddyError } from './errors.js';
import { type Address, type FunctionType, type SendAfterOptions, type StateSpecs, validateFunctionTypeName } from './function-type.js';

/** Effects a coordinator declares for one outcome of its transaction; they apply when it ends that way. */
export interface OutcomeEffects {
  send(to: Address, message: unknown): void;
  /**
   * Delivers `message` `delayMs` after the outcome (not after the declaration). A pending delayed
   * message of this coordinator with the same `options.token` is replaced. Returns the token.
   */
  sendAfter(delayMs: number, to: Address, message: unknown, options?: SendAfterOptions): string;
  egress(name: string, record: unknown): void;
}

/** What every coordinator handler can see and declare. */
export interface CoordinatorContext {
  /** This coordinator instance. */
  readonly self: Address;
  /** Who sent the request; undefined for requests from an ingress. */
  readonly caller: Address | undefined;
  /** Applies when every participant succeeded (2PC: committed). */
  readonly onSuccess: OutcomeEffects;
  /** Applies when a participant failed with `InvocationFailed` (2PC: aborted; saga: after its compensations). */
  readonly onFailure: OutcomeEffects;
}

/** The context of a two-phase-commit coordinator. */
export interface TpcContext extends CoordinatorContext {
  /**
   * Makes `message` to `to` part of the transaction. Several invocations of one instance are one
   * participant: they run in declared order, in one isolated step, and see each other's writes.
   */
  invoke(to: Address, message: unknown): void;
  /** Applies when the transaction was chosen as a deadlock victim (or waited too long for a lock): retry it, e.g. with `sendAfter(..., ctx.self, request)`. */
  readonly onRetryable: OutcomeEffects;
}

/** The context of a saga coordinator. */
export interface SagaContext extends CoordinatorContext {
  /**
   * A step of the saga: `forward` to `to` now, and `compensation` to `to` if the saga fails after this
   * step succeeded. Both are ordinary invocations of `to`.
   */
  invokePair(to: Address, forward: unknown, compensation: unknown): void;
}

export interface TpcOptions<M> {
  /** Codec of the requests this coordinator receives. Default: JSON. */
  codec?: Codec<M>;
  /**
   * Longest time a transaction may wait for all its votes (its PREPAREs for their locks) before it
   * ends as retryable (`onRetryable`): a second line of defence behind deadlock detection, for
   * participants that hold locks too long. Default: none (wait).
   */
  lockWaitTimeoutMs?: number;
}

export interface SagaOptions<M> {
  /** Codec of the requests this coordinator receives. Default: JSON. */
  codec?: Codec<M>;
  /** Times a compensation is tried before it goes to the dead letters. Default: 5. */
  compensationAttempts?: number;
  /** Wait before the first retry of a failed compensation; doubles with each retry. Default: 50 ms. */
  compensationRetryDelayMs?: number;
}

interface CoordinatorBase<M> {
  readonly type: string;
  readonly codec: Codec<M>;
  /** Coordinators declare no state of their own: their transaction record is engine state. */
  readonly state: Record<string, never>;
  /** The address of this coordinator's instance `id`; one transaction at a time runs per instance. */
  address(id: string): Address;
}

export interface TpcCoordinatorType<M = unknown> extends CoordinatorBase<M> {
  readonly kind: 'tpc';
  readonly handler: (ctx: TpcContext, message: M) => void | Promise<void>;
  readonly lockWaitTimeoutMs: number | undefined;
}

export interface SagaCoordinatorType<M = unknown> extends CoordinatorBase<M> {
  readonly kind: 'saga';
  readonly handler: (ctx: SagaContext, message: M) => void | Promise<void>;
  readonly compensationAttempts: number;
  readonly compensationRetryDelayMs: number;
}

export type CoordinatorType<M = unknown> = TpcCoordinatorType<M> | SagaCoordinatorType<M>;

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
export function tpcCoordinator<M = unknown>(
  type: string,
  handler: (ctx: TpcContext, message: M) => void | Promise<void>,
  options: TpcOptions<M> = {},
): TpcCoordinatorType<M> {
  checkHandler('tpcCoordinator', type, handler);
  positive('tpcCoordinator', type, 'lockWaitTimeoutMs', options.lockWaitTimeoutMs, false);
  return {
    kind: 'tpc',
    type,
    codec: options.codec ?? jsonCodec<M>(),
    state: {},
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
export function sagaCoordinator<M = unknown>(
  type: string,
  handler: (ctx: SagaContext, message: M) => void | Promise<void>,
  options: SagaOptions<M> = {},
): SagaCoordinatorType<M> {
  checkHandler('sagaCoordinator', type, handler);
  positive('sagaCoordinator', type, 'compensationAttempts', options.compensationAttempts, true);
  positive('sagaCoordinator', type, 'compensationRetryDelayMs', options.compensationRetryDelayMs, false);
  return {
    kind: 'saga',
    type,
    codec: options.codec ?? jsonCodec<M>(),
    state: {},
    handler,
    compensationAttempts: options.compensationAttempts ?? 5,
    compensationRetryDelayMs: options.compensationRetryDelayMs ?? 50,
    address: (id: string) => ({ type, id }),
  };
}
