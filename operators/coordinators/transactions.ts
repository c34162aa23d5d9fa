import type { AnyFunctionType, CoordinatorType } from '../../engine/coordinator-type.js';
import type { KeyGroupRange } from '../../engine/key-groups.js';
import type { TransactionMetrics } from '../../engine/runtime/worker-protocol.js';
import { addressOfTxnKey, keyGroupPrefix, Space } from '../../engine/state/state-keys.js';
import { type Envelope, Kind } from '../../engine/wire/envelope.js';
import { decodeCoordinatorRecord, decodeParticipantRecord } from '../../engine/wire/transactions.js';
import { AdmissionLimit } from './admission.js';
import { Coordinators } from './coordinators.js';
import type { TransactionHost } from './host.js';
import { Participants } from './participant.js';

/**
 * The transaction layer of a function-dispatcher: the dispatcher hands it the protocol envelopes and
 * the invocations of coordinators; regular functions take part through it unchanged.
 */
export class Transactions {
  private readonly participants: Participants;
  private readonly coordinators: Coordinators;

  private readonly limit: AdmissionLimit;

  constructor(
    private readonly host: TransactionHost,
    maxTransactions: number,
    private readonly maxSagas: number,
    staleProbes = false,
  ) {
    this.limit = new AdmissionLimit(maxTransactions);
    this.participants = new Participants(host);
    this.coordinators = new Coordinators(host, this.limit, staleProbes);
  }

  /**
   * Takes over the locks and running transactions of the owned key groups that a stop or a restored
   * checkpoint left in keyed state (before any work starts). From then on they live on the heap and
   * reach keyed state again only in a checkpoint's cut or at a stop (see `records`).
   */
  async load(range: KeyGroupRange, functions: ReadonlyMap<string, AnyFunctionType>): Promise<void> {
    const taken: string[] = [];
    for (let kg = range.start; kg <= range.end; kg++) {
      for await (const [key, value] of this.host.store.scanPrefix(keyGroupPrefix(kg, Space.TXN))) {
        const address = addressOfTxnKey(key);
        const fn = functions.get(address.type);
        // Of a function type this job no longer has: kept, in case a later version brings it back.
        if (fn === undefined) continue;
        taken.push(key);
        if (fn.kind === 'regular') this.participants.restore(address, kg, decodeParticipantRecord(value));
        else this.coordinators.restore(address, kg, fn, decodeCoordinatorRecord(value));
      }
    }
    for (const key of taken) this.host.store.put(key, null);
  }

  /**
   * The transaction bookkeeping as keyed-state records, written only where a consistent state is
   * kept: a checkpoint's cut and a stop. A transaction lives for milliseconds; writing its records
   * to LevelDB on every step (and deleting them at its end) cost more than the transaction itself.
   */
  records(): Array<[string, Uint8Array]> {
    return [...this.participants.records(), ...this.coordinators.records()];
  }

  stopTimers(): void {
    this.coordinators.stopTimers();
  }

  /**
   * Whether another two-phase-commit transaction (`tpc`, up to the adaptive AdmissionLimit) or saga
   * (up to maxSagasPerWorker) may start here now. Sagas hold no locks, so they have their own, larger
   * bound: what keeps them apart is only the memory of the ones in flight, while each needs many of
   * them to hide the hops between workers.
   */
  slotFree(kind: CoordinatorType['kind']): boolean {
    return this.coordinators.inProgress(kind) < (kind === 'tpc' ? this.limit.current : this.maxSagas);
  }

  /**
   * Protocol envelopes that answer or steer a transaction are handled on arrival, never queued
   * behind a mailbox (true). PREPARE and SAGA_STEP are invocations: they take their place in the
   * mailbox like any other (false), and a PREPARE that will wait reports whom it waits for.
   */
  intercept(envelope: Envelope, kg: number): boolean {
    switch (envelope.kind) {
      case Kind.PREPARE:
        return this.participants.arriving(envelope);
      case Kind.SAGA_STEP:
        return false;
      case Kind.COMMIT:
        this.participants.commit(envelope);
        return true;
      case Kind.ABORT:
        this.participants.abort(envelope, kg);
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

  /** Runs a PREPARE, a saga step, or a request to a coordinator; a promise if a handler went async. */
  execute(envelope: Envelope, fn: AnyFunctionType, kg: number): Promise<void> | undefined {
    if (fn.kind !== 'regular') {
      if (envelope.kind === Kind.INVOKE) return this.coordinators.start(envelope, fn, kg);
      this.host.deadLetter(envelope, 'EDDY_INVALID_ARGUMENT', `${fn.type} is a coordinator; it cannot take part in another transaction`);
      return undefined;
    }
    if (envelope.kind === Kind.PREPARE) return this.participants.prepare(envelope, fn, kg);
    if (envelope.kind === Kind.SAGA_STEP) return this.participants.sagaStep(envelope, fn, kg);
    this.host.deadLetter(envelope, 'EDDY_INVALID_ARGUMENT', `envelope kind ${envelope.kind} cannot be invoked`);
    return undefined;
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
