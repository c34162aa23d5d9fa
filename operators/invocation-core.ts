import { decodeOrExplain } from '../engine/codec.js';
import type { CoordinatorType } from '../engine/coordinator-type.js';
import { describeError, EddyError, isInvocationFailed } from '../engine/errors.js';
import type { Address, FunctionType, StateSpecs } from '../engine/function-type.js';
import { isPromise } from '../engine/promises.js';
import type { LockWait, TransactionMetrics } from '../engine/runtime/worker-protocol.js';
import { type Envelope, Kind } from '../engine/wire/envelope.js';
import { decodeCoordinatorRecord, decodeParticipantRecord } from '../engine/wire/transactions.js';
import { AdmissionLimit } from './coordinators/admission.js';
import { Coordinators } from './coordinators/coordinators.js';
import { Participants } from './coordinators/participant.js';
import type { CoreHost } from './core-host.js';
import { Invocation } from './invocation.js';
import { InvocationStats } from './invocation-stats.js';

export type CoordinatorKind = CoordinatorType['kind'];

/**
 * The invocation core: turns (state, envelope) into effects for any envelope a function instance
 * receives, through its host (core-host.ts), which it knows nothing else about. A regular message
 * runs the handler on a staged `Invocation`; a request to a coordinator declares and starts a
 * transaction or saga; the protocol envelopes drive the participant and coordinator state machines.
 *
 * A host calls `arrive` when an envelope comes in (protocol answers are consumed there, never queued
 * behind a mailbox) and `run` when the envelope's turn has come in its instance's order.
 */
export class InvocationCore {
  readonly stats: InvocationStats;
  private readonly participants: Participants;
  private readonly coordinators: Coordinators;
  private readonly limit: AdmissionLimit;

  constructor(
    private readonly host: CoreHost,
    maxTransactions: number,
    private readonly maxSagas: number,
    /** Failure drill (`faultInjection.staleProbes`): deadlock probes also go out in stale forms. */
    staleProbes = false,
  ) {
    this.stats = new InvocationStats(host);
    this.limit = new AdmissionLimit(maxTransactions);
    this.participants = new Participants(host, this.stats);
    this.coordinators = new Coordinators(host, this.stats, this.limit, staleProbes);
  }

  /**
   * An envelope arrives. Protocol envelopes that answer or steer a transaction are handled here and
   * consumed (true), as is a second copy of a PREPARE the instance already knows (answered again or
   * dropped). Everything else, PREPARE and SAGA_STEP included, is an invocation: it waits for its turn
   * in its instance's order (false), and a PREPARE that will wait reports whom it waits for.
   */
  arrive(envelope: Envelope): boolean {
    switch (envelope.kind) {
      case Kind.INVOKE:
      case Kind.SAGA_STEP:
        return false;
      case Kind.PREPARE:
        return this.participants.arriving(envelope);
      case Kind.COMMIT:
        this.participants.commit(envelope);
        return true;
      case Kind.ABORT:
        this.participants.abort(envelope, this.host.keyGroup(envelope.targetId));
        return true;
      case Kind.VOTE:
        this.coordinators.vote(envelope);
        return true;
      case Kind.WAITS_FOR:
        this.coordinators.waitsFor(envelope);
        return true;
      case Kind.PROBE:
        this.coordinators.probe(envelope);
        return true;
      case Kind.SAGA_RESULT:
        this.coordinators.sagaResult(envelope);
        return true;
      default:
        return false;
    }
  }

  /**
   * Runs an envelope whose turn has come: a message to a regular function, a PREPARE, a saga step or
   * a request to a coordinator. Returns a promise only when a handler went async (or the host loads
   * state); the instance's later envelopes wait for it.
   */
  run(envelope: Envelope): Promise<void> | undefined {
    const fn = this.host.functionType(envelope.targetType);
    if (fn === undefined) {
      this.host.deadLetter(envelope, 'EDDY_UNKNOWN_FUNCTION_TYPE', `no function type ${envelope.targetType} in this job; add it to the job's functions, or stop sending to it`);
      return undefined;
    }
    const kg = this.host.keyGroup(envelope.targetId);
    if (fn.kind !== 'regular') {
      if (envelope.kind === Kind.INVOKE) return this.coordinators.start(envelope, fn, kg);
      this.host.deadLetter(envelope, 'EDDY_INVALID_ARGUMENT', `${fn.type} is a coordinator; it cannot take part in another transaction`);
      return undefined;
    }
    const loading = this.host.loadState(envelope.targetType, envelope.targetId, kg);
    if (loading !== undefined) return loading.then(() => this.runRegular(envelope, fn, kg));
    return this.runRegular(envelope, fn, kg);
  }

  private runRegular(envelope: Envelope, fn: FunctionType<unknown, StateSpecs>, kg: number): Promise<void> | undefined {
    switch (envelope.kind) {
      case Kind.INVOKE:
        return this.invoke(envelope, fn, kg);
      case Kind.PREPARE:
        return this.participants.prepare(envelope, fn, kg);
      case Kind.SAGA_STEP:
        return this.participants.sagaStep(envelope, fn, kg);
      default:
        this.host.deadLetter(envelope, 'EDDY_INVALID_ARGUMENT', `envelope kind ${envelope.kind} cannot be invoked`);
        return undefined;
    }
  }

  /** A message to a regular function: its handler runs; effects apply if it succeeds. */
  private invoke(envelope: Envelope, fn: FunctionType<unknown, StateSpecs>, kg: number): Promise<void> | undefined {
    let message: unknown;
    try {
      message = decodeOrExplain(fn.codec, envelope.payload, `message for ${envelope.targetType}:${envelope.targetId}`);
    } catch (error) {
      this.host.deadLetter(envelope, 'EDDY_UNDECODABLE_PAYLOAD', describeError(error));
      return undefined;
    }
    this.stats.invocations++;
    const invocation = new Invocation(this.host, fn, envelope, kg);
    const started = performance.now();
    let result: void | Promise<void>;
    try {
      result = fn.handler(invocation, message);
    } catch (error) {
      this.stats.onHandled?.(fn.type, started, true);
      return this.failed(invocation, message, error);
    }
    if (!isPromise(result)) {
      this.stats.onHandled?.(fn.type, started, false);
      this.host.apply(invocation);
      return undefined;
    }
    return result.then(
      () => {
        this.stats.onHandled?.(fn.type, started, false);
        this.host.apply(invocation);
      },
      (error: unknown) => {
        this.stats.onHandled?.(fn.type, started, true);
        return this.failed(invocation, message, error);
      },
    );
  }

  /** InvocationFailed runs the function's onInvocationFailed on a fresh invocation; anything else is a bug. */
  private failed(invocation: Invocation, message: unknown, error: unknown): Promise<void> | undefined {
    const { fn, envelope } = invocation;
    if (!isInvocationFailed(error)) {
      this.stats.handlerFailed(envelope, `handler of ${fn.type}`, `${envelope.targetType}:${envelope.targetId}`, error);
      return undefined;
    }
    this.stats.invocationsFailed++;
    const onFailed = fn.onInvocationFailed;
    if (onFailed === undefined) return undefined;
    const recovery = new Invocation(this.host, fn, envelope, invocation.kg);
    let result: void | Promise<void>;
    try {
      result = onFailed(recovery, error, message);
    } catch (secondError) {
      return this.failed(recovery, message, wrapFailureHandler(fn, secondError));
    }
    if (!isPromise(result)) {
      this.host.apply(recovery);
      return undefined;
    }
    return result.then(
      () => this.host.apply(recovery),
      (secondError: unknown) => this.failed(recovery, message, wrapFailureHandler(fn, secondError)),
    );
  }

  /**
   * The transactions that hold `address` now, for a state lookup: as a participant (the exclusive
   * lock's transaction with its staged writes, or the read-only holders'), or as a coordinator (the
   * one it runs).
   */
  transactionOf(address: Address): { transactions: string[]; since: number; staged?: ReadonlyMap<string, Uint8Array | null> } | undefined {
    const held = this.participants.holdOf(address);
    if (held !== undefined) return { transactions: held.transactions, since: held.lockedAt, ...(held.staged === undefined ? {} : { staged: held.staged }) };
    const running = this.coordinators.runningOf(address);
    return running === undefined ? undefined : { transactions: [running.id], since: running.startedAt };
  }

  /** The `limit` longest current lock waits of the transactions coordinated here (see Coordinators.lockWaits). */
  lockWaits(limit: number): LockWait[] {
    return this.coordinators.lockWaits(limit);
  }

  /** The protocol of the coordinator an envelope is for; undefined for a regular function. */
  coordinatorKind(envelope: Envelope): CoordinatorKind | undefined {
    const kind = this.host.functionType(envelope.targetType)?.kind;
    return kind === 'regular' ? undefined : kind;
  }

  /**
   * Whether another two-phase-commit transaction (`tpc`, up to the adaptive AdmissionLimit) or saga
   * (up to maxSagasPerWorker) may start here now. Sagas hold no locks, so they have their own, larger
   * bound: what keeps them apart is only the memory of the ones in flight, while each needs many of
   * them to hide the hops between workers.
   */
  slotFree(kind: CoordinatorKind): boolean {
    return this.coordinators.inProgress(kind) < (kind === 'tpc' ? this.limit.current : this.maxSagas);
  }

  /**
   * Takes over the transaction record of `address` (its lock as a participant, or its transaction as
   * a coordinator; see `records`) that a stop or a restored checkpoint left, before any work starts.
   * False if the job has no such function type any more (the host keeps the record, in case a later
   * version brings it back).
   */
  restore(address: Address, kg: number, record: Uint8Array, resume = true): boolean {
    const fn = this.host.functionType(address.type);
    if (fn === undefined) return false;
    if (fn.kind === 'regular') this.participants.restore(address, kg, decodeParticipantRecord(record));
    else this.coordinators.restore(address, kg, fn, decodeCoordinatorRecord(record), resume);
    return true;
  }

  /**
   * Takes the record of `address` back the way a request-reply host does before every request: the
   * transaction goes on, nothing is sent again (what was sent is on its way; see `restore`).
   */
  load(address: Address, record: Uint8Array): boolean {
    return this.restore(address, this.host.keyGroup(address.id), record, false);
  }

  /** A lock-wait timeout kept by the host (`scheduleLockWait`) came back. */
  lockWaitExpired(address: Address, txnId: string): void {
    this.coordinators.lockWaitExpired(address, txnId);
  }

  /**
   * The transaction bookkeeping as keyed-state records (`txnKey`), for the host to keep where a
   * consistent state is kept: a checkpoint's cut and a stop. A transaction lives for milliseconds;
   * writing its records to LevelDB on every step (and deleting them at its end) cost more than the
   * transaction itself.
   */
  records(): Array<[string, Uint8Array]> {
    return [...this.participants.records(), ...this.coordinators.records()];
  }

  /** No core timer fires from now on (the host abandons its attempt). */
  stopTimers(): void {
    this.coordinators.stopTimers();
  }

  metrics(): Omit<TransactionMetrics, 'transactionsWaiting'> {
    const c = this.coordinators.counters;
    const p = this.participants.counters;
    return {
      transactionsCommitted: c.transactionsCommitted,
      transactionsAborted: c.transactionsAborted,
      transactionsRetryable: c.transactionsRetryable,
      deadlocksFound: c.deadlocksFound,
      transactionsRunning: this.coordinators.inProgress('tpc'),
      sagasRunning: this.coordinators.inProgress('saga'),
      transactionLimit: this.limit.current,
      lockWaitTimeouts: c.lockWaitTimeouts,
      locksHeld: this.participants.locksHeld,
      locksReleased: p.locksReleased,
      lockHoldMsTotal: p.lockHoldMsTotal,
      sagasSucceeded: c.sagasSucceeded,
      sagasFailed: c.sagasFailed,
      compensationsFailed: c.compensationsFailed,
      compensationsAbandoned: c.compensationsAbandoned,
      staleProtocolMessages: c.staleMessages + p.staleMessages + p.duplicatePrepares,
    };
  }
}

function wrapFailureHandler(fn: FunctionType<unknown, StateSpecs>, error: unknown): unknown {
  // A failure handler that fails again must not loop through itself: report it as a handler error.
  return isInvocationFailed(error)
    ? new EddyError('EDDY_HANDLER_FAILED', `onInvocationFailed of ${fn.type} threw: ${describeError(error)}`, { cause: error })
    : error;
}
