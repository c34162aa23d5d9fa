import { decodeOrExplain } from '../../engine/codec.js';
import type { CoordinatorType, SagaCoordinatorType } from '../../engine/coordinator-type.js';
import { describeError, isInvocationFailed } from '../../engine/errors.js';
import type { Address } from '../../engine/function-type.js';
import { isPromise } from '../../engine/promises.js';
import { TransientMap } from '../../engine/transient-map.js';
import { txnKey } from '../../engine/state/state-keys.js';
import { type Envelope, Kind, SagaPhase, type Transaction, type TxnRef } from '../../engine/wire/envelope.js';
import { type CoordinatorRecord, encodeCoordinatorRecord, type OutcomeEffects, Protocol, StepStatus, type Step } from '../../engine/wire/transactions.js';
import { SagaDeclaration, TpcDeclaration } from './coordinator-context.js';
import type { AdmissionLimit } from './admission.js';
import { addBlockers, type Probe, receiveProbe } from './deadlock.js';
import { keyOfAddress } from '../address-key.js';
import type { CoreHost } from '../core-host.js';
import type { InvocationStats } from '../invocation-stats.js';
import type { LockWait } from '../../engine/runtime/worker-protocol.js';
import { coordinatorOf, effectsOfOutcome, newTransactionId, protocolEnvelope } from './records.js';

export interface CoordinatorCounters {
  transactionsCommitted: number;
  transactionsAborted: number;
  transactionsRetryable: number;
  deadlocksFound: number;
  sagasSucceeded: number;
  sagasFailed: number;
  compensationsFailed: number;
  compensationsAbandoned: number;
  staleMessages: number;
  lockWaitTimeouts: number;
  /** PREPAREs sent again for the steps that had not voted when a transaction was restored. */
  preparesResent: number;
  /** ABORTs sent back for a YES vote of a transaction that had ended (see `vote`). */
  presumedAborts: number;
}

interface Running {
  readonly address: Address;
  readonly kg: number;
  readonly fn: CoordinatorType;
  readonly record: CoordinatorRecord;
}

type Ending = 'success' | 'failure' | 'retryable';

interface LockWaitEdge {
  readonly blocker: TxnRef;
  /** The participant instance the PREPARE waits at, `type:id`. */
  readonly instance: string;
  readonly since: number;
  /** The waiting transaction's coordinator instance, `type:id`. */
  readonly coordinator: string;
}

/**
 * Empties a finished transaction's steps and outcome effects in place (its declaration shares the
 * arrays), so their payloads die young even while a dead hash table still points at the record (see
 * TransientMap).
 */
function retire(record: CoordinatorRecord): void {
  empty(record.onSuccess);
  empty(record.onFailure);
  empty(record.onRetryable);
  record.steps.length = 0;
}

function empty(outcome: OutcomeEffects): void {
  outcome.sends.length = 0;
  outcome.delayed.length = 0;
  outcome.egress.length = 0;
}

/**
 * The coordinator side: one transaction (or saga) at a time per coordinator instance, its record in
 * keyed state, the instance held while it runs (later requests wait in its mailbox). Two-phase commit:
 * PREPARE to every participant, COMMIT after all YES, ABORT after a NO or when chosen as a deadlock
 * victim. Saga: every forward step at once; after a failure, compensate every step that succeeded
 * (also those that report later), retrying failed compensations; then the failure effects.
 */
export class Coordinators {
  private readonly running = new TransientMap<string, Running>();
  readonly counters: CoordinatorCounters = {
    transactionsCommitted: 0,
    transactionsAborted: 0,
    transactionsRetryable: 0,
    deadlocksFound: 0,
    sagasSucceeded: 0,
    sagasFailed: 0,
    compensationsFailed: 0,
    compensationsAbandoned: 0,
    staleMessages: 0,
    lockWaitTimeouts: 0,
    preparesResent: 0,
    presumedAborts: 0,
  };
  /**
   * Per protocol, transactions running here plus requests whose (async) declaration has not settled
   * yet: each holds one of its protocol's slots.
   */
  private readonly slotsTaken: Record<CoordinatorType['kind'], number> = { tpc: 0, saga: 0 };
  /**
   * The current lock waits of running 2PC transactions, by transaction id: which transaction each
   * waits behind, at which participant, since when (WAITS_FOR reports them; the participant's vote
   * ends them). Observation only (state lookups and the console), never part of a record.
   */
  private readonly waits = new TransientMap<string, LockWaitEdge[]>();
  /** Per coordinator instance with a lockWaitTimeoutMs, the timer of its running transaction's vote phase. */
  private readonly lockWaitTimers = new TransientMap<string, NodeJS.Timeout>();

  constructor(
    private readonly host: CoreHost,
    private readonly stats: InvocationStats,
    private readonly limit: AdmissionLimit,
    /**
     * Failure drill (`faultInjection.staleProbes`): every probe also goes out in stale forms (naming
     * an earlier transaction of its initiator, or a finished one of its target), which must all be ignored.
     */
    private readonly injectStaleProbes = false,
  ) {}

  /** A participant of `running` reports that its PREPARE waits behind the blockers the envelope names. */
  private recordWait(running: Running, envelope: Envelope): void {
    const instance = `${envelope.sourceType}:${envelope.sourceId}`;
    const id = running.record.txn.id;
    const edges = this.waits.get(id)?.filter((edge) => edge.instance !== instance) ?? [];
    const since = Date.now();
    const coordinator = `${running.address.type}:${running.address.id}`;
    for (const blocker of envelope.txn?.blockers ?? []) edges.push({ blocker, instance, since, coordinator });
    this.waits.set(id, edges);
  }

  private waitEnded(id: string, instance: string): void {
    const edges = this.waits.get(id);
    if (edges === undefined) return;
    const left = edges.filter((edge) => edge.instance !== instance);
    if (left.length === 0) this.waits.delete(id);
    else this.waits.set(id, left);
  }

  /**
   * The `limit` longest current lock waits of the transactions coordinated here, longest first:
   * waiting transaction -> holding transaction, at which instance, for how long.
   */
  lockWaits(limit: number): LockWait[] {
    const now = Date.now();
    const waits: LockWait[] = [];
    for (const [id, edges] of this.waits) {
      for (const edge of edges) {
        waits.push({
          waiting: { transaction: id, coordinator: edge.coordinator },
          holding: { transaction: edge.blocker.id, coordinator: `${edge.blocker.coordinatorType}:${edge.blocker.coordinatorId}` },
          instance: edge.instance,
          waitedMs: now - edge.since,
        });
      }
    }
    return waits.sort((a, b) => b.waitedMs - a.waitedMs).slice(0, limit);
  }

  /** The transaction or saga coordinator instance `address` runs now, if any (a state lookup). */
  runningOf(address: Address): { id: string; startedAt: number } | undefined {
    const running = this.running.get(keyOfAddress(address));
    return running === undefined ? undefined : { id: running.record.txn.id, startedAt: running.record.txn.startedAt };
  }

  /** Transactions (`tpc`) or sagas running here, with requests whose (async) declaration is still running. */
  inProgress(kind: CoordinatorType['kind']): number {
    return this.slotsTaken[kind];
  }

  /** Ends no transaction: used when the worker abandons its attempt, so no lock-wait timer fires later. */
  stopTimers(): void {
    for (const timer of this.lockWaitTimers.values()) clearTimeout(timer);
    this.lockWaitTimers.clear();
  }

  /**
   * A transaction found in keyed state at start (restore, restart): it goes on where it was. With
   * `resume` false (a request-reply host, which loads the record with every request) it only takes
   * the record back: its PREPAREs and its lock-wait timeout are out already.
   */
  restore(address: Address, kg: number, fn: CoordinatorType, record: CoordinatorRecord, resume = true): void {
    const running: Running = { address, kg, fn, record };
    this.running.set(keyOfAddress(address), running);
    this.slotsTaken[fn.kind]++;
    this.host.hold(address, 'busy');
    if (record.protocol !== Protocol.TWO_PHASE_COMMIT || !resume) return;
    // The PREPAREs of steps that have not voted go out again. The checkpoint holds each of them (or
    // its vote) somewhere already, so this copy is only a defence: a participant answers a PREPARE
    // it knows with its vote again or drops it, and a vote that comes too late gets an ABORT back.
    for (const step of record.steps) {
      if (step.status !== StepStatus.PENDING) continue;
      this.counters.preparesResent++;
      this.send(running, Kind.PREPARE, step, { id: record.txn.id, startedAt: record.txn.startedAt, invocations: step.invocations });
    }
    // The wait counts again from the restart: waiting time before it is not known to have been spent.
    this.armLockWait(running);
  }

  /** A request: the handler declares the transaction, which then starts. */
  start(envelope: Envelope, fn: CoordinatorType, kg: number): Promise<void> | undefined {
    let message: unknown;
    try {
      message = decodeOrExplain(fn.codec, envelope.payload, `request for coordinator ${envelope.targetType}:${envelope.targetId}`);
    } catch (error) {
      this.host.deadLetter(envelope, 'EDDY_UNDECODABLE_PAYLOAD', describeError(error));
      return undefined;
    }
    this.stats.invocations++;
    const declaration = fn.kind === 'tpc' ? new TpcDeclaration(this.host, fn, envelope) : new SagaDeclaration(this.host, fn, envelope);
    let result: void | Promise<void>;
    try {
      result = fn.kind === 'tpc' ? fn.handler(declaration as TpcDeclaration, message) : fn.handler(declaration as SagaDeclaration, message);
    } catch (error) {
      this.declarationFailed(envelope, fn, error);
      return undefined;
    }
    if (!isPromise(result)) {
      this.begin(declaration, kg);
      return undefined;
    }
    // An async declaration holds its transaction slot already: the limit counts it as running.
    this.slotsTaken[fn.kind]++;
    const settled = (): void => {
      this.slotsTaken[fn.kind]--;
      this.host.slotFreed();
    };
    return result.then(
      () => {
        this.begin(declaration, kg);
        settled();
      },
      (error: unknown) => {
        this.declarationFailed(envelope, fn, error);
        settled();
      },
    );
  }

  private declarationFailed(envelope: Envelope, fn: CoordinatorType, error: unknown): void {
    if (this.host.isClosed) return;
    if (isInvocationFailed(error)) {
      // The handler refused the request: no transaction, nothing to apply.
      this.stats.invocationsFailed++;
      return;
    }
    this.stats.handlerFailed(envelope, `coordinator ${fn.type}`, `request to ${envelope.targetType}:${envelope.targetId}`, error);
  }

  private begin(declaration: TpcDeclaration | SagaDeclaration, kg: number): void {
    if (this.host.isClosed) return;
    const { fn, request, self } = declaration;
    if (declaration.steps.length === 0) {
      const call = fn.kind === 'tpc' ? 'ctx.invoke(address, message)' : 'ctx.invokePair(address, forward, compensation)';
      this.host.deadLetter(request, 'EDDY_INVALID_ARGUMENT', `coordinator ${fn.type} declared no invocations for this request; call ${call} at least once`);
      return;
    }
    const txn: TxnRef = { id: newTransactionId(this.host), startedAt: this.host.now?.() ?? Date.now(), coordinatorType: self.type, coordinatorId: self.id };
    const record: CoordinatorRecord = {
      protocol: fn.kind === 'tpc' ? Protocol.TWO_PHASE_COMMIT : Protocol.SAGA,
      txn,
      steps: declaration.steps,
      onSuccess: declaration.onSuccess.effects,
      onFailure: declaration.onFailure.effects,
      onRetryable: declaration.onRetryable.effects,
      blockers: [],
      dependents: [],
      failed: false,
      ingressTime: request.ingressTime,
    };
    const running: Running = { address: self, kg, fn, record };
    this.running.set(keyOfAddress(self), running);
    this.slotsTaken[fn.kind]++;
    this.host.hold(self, 'busy');
    if (record.protocol === Protocol.TWO_PHASE_COMMIT) {
      for (const step of record.steps) this.send(running, Kind.PREPARE, step, { id: txn.id, startedAt: txn.startedAt, invocations: step.invocations });
      this.armLockWait(running);
    } else {
      record.steps.forEach((step, index) => this.sendStep(running, index, SagaPhase.FORWARD));
    }
  }

  // ---- two-phase commit ----

  /**
   * A participant voted. A second vote of a step is late: ignored. A YES for a transaction this
   * instance no longer runs gets an ABORT back (presumed abort): its decision went to every step that
   * had voted YES before it (on the same FIFO channel, so that ABORT finds no lock), so this vote
   * comes from a PREPARE that ran after the decision (re-sent after a restore, or an ABORT that
   * overtook it), and the lock it took must not wait for a decision that already went out.
   */
  vote(envelope: Envelope): void {
    const running = this.current(envelope, Protocol.TWO_PHASE_COMMIT);
    const step = running?.record.steps.find((s) => s.type === envelope.sourceType && s.id === envelope.sourceId && s.status === StepStatus.PENDING);
    if (running === undefined || step === undefined) {
      this.counters.staleMessages++;
      if (running === undefined && envelope.txn?.ok === true) this.presumeAbort(envelope);
      return;
    }
    if (envelope.txn?.ok !== true) {
      step.status = StepStatus.FAILED;
      this.end(running, 'failure');
      return;
    }
    step.status = StepStatus.DONE;
    if (this.waits.size > 0) this.waitEnded(running.record.txn.id, `${envelope.sourceType}:${envelope.sourceId}`);
    if (running.record.steps.every((s) => s.status === StepStatus.DONE)) this.end(running, 'success');
  }

  private presumeAbort(vote: Envelope): void {
    this.counters.presumedAborts++;
    const self = { type: vote.targetType, id: vote.targetId };
    const voter = { type: vote.sourceType, id: vote.sourceId };
    this.host.route(protocolEnvelope(Kind.ABORT, self, voter, { id: vote.txn!.id }, vote.ingressTime, this.host.worker, this.host.nextSeq()));
  }

  /** A participant reports that a PREPARE of the current transaction waits behind others. */
  waitsFor(envelope: Envelope): void {
    const running = this.current(envelope, Protocol.TWO_PHASE_COMMIT);
    if (running === undefined) {
      this.counters.staleMessages++;
      return;
    }
    this.recordWait(running, envelope);
    const probes = addBlockers(running.record, envelope.txn?.blockers ?? []);
    if (probes.length === 0) return;
    for (const probe of probes) this.sendProbe(running, probe);
  }

  /** A deadlock probe; it only means something while this instance runs the transaction it names. */
  probe(envelope: Envelope): void {
    const running = this.current(envelope, Protocol.TWO_PHASE_COMMIT);
    const initiator = envelope.txn?.initiator;
    if (running === undefined || initiator == null) {
      this.counters.staleMessages++;
      return;
    }
    const { deadlock, probes } = receiveProbe(running.record, initiator);
    if (deadlock) {
      this.counters.deadlocksFound++;
      this.end(running, 'retryable');
      return;
    }
    if (probes.length === 0) return;
    for (const probe of probes) this.sendProbe(running, probe);
  }

  /**
   * The second line of defence behind deadlock detection: a transaction whose votes are not all in
   * after the coordinator's lockWaitTimeoutMs (its PREPAREs wait for locks that long) ends as
   * retryable, like a deadlock victim.
   */
  private armLockWait(running: Running): void {
    const timeoutMs = running.fn.kind === 'tpc' ? running.fn.lockWaitTimeoutMs : undefined;
    if (timeoutMs === undefined) return;
    const id = running.record.txn.id;
    if (this.host.scheduleLockWait !== undefined) {
      this.host.scheduleLockWait(running.address, id, timeoutMs);
      return;
    }
    const key = keyOfAddress(running.address);
    const timer = setTimeout(() => {
      this.lockWaitTimers.delete(key);
      const current = this.running.get(key);
      if (this.host.isClosed || current?.record.txn.id !== id) return;
      // Paused (before the start, or while stopping): the job manager has counted what was sent; the
      // wait counts again from now (a stop parks the transaction and its record re-arms on restore).
      if (this.host.isPaused) {
        this.armLockWait(current);
        return;
      }
      this.counters.lockWaitTimeouts++;
      this.end(current, 'retryable');
      this.host.afterTimer();
    }, timeoutMs);
    timer.unref();
    this.lockWaitTimers.set(key, timer);
  }

  /** The lock-wait timeout a host keeps as a delayed message came back: stale unless `txnId` still runs at `address`. */
  lockWaitExpired(address: Address, txnId: string): void {
    const current = this.running.get(keyOfAddress(address));
    if (current === undefined || current.record.txn.id !== txnId) {
      this.counters.staleMessages++;
      return;
    }
    this.counters.lockWaitTimeouts++;
    this.end(current, 'retryable');
  }

  private sendProbe(running: Running, probe: Probe): void {
    const txn: Transaction = { id: probe.to.id, initiator: probe.initiator };
    this.host.route(this.envelope(running, Kind.PROBE, coordinatorOf(probe.to), txn));
    if (!this.injectStaleProbes || probe.initiator.id.endsWith('~stale')) return;
    const earlier = (ref: TxnRef): TxnRef => ({ ...ref, id: `${ref.id}~stale`, startedAt: ref.startedAt - 1 });
    // Naming a finished transaction of the target, of the initiator, and "coming back" to the sender too late.
    this.host.route(this.envelope(running, Kind.PROBE, coordinatorOf(probe.to), { ...txn, id: earlier(probe.to).id }));
    this.host.route(this.envelope(running, Kind.PROBE, coordinatorOf(probe.to), { ...txn, initiator: earlier(probe.initiator) }));
    const stale = earlier(running.record.txn);
    this.host.route(this.envelope(running, Kind.PROBE, running.address, { id: stale.id, initiator: stale }));
  }

  // ---- sagas ----

  /** A saga step reported how it ended. */
  sagaResult(envelope: Envelope): void {
    const running = this.current(envelope, Protocol.SAGA);
    const index = envelope.txn?.step ?? 0;
    const step = running?.record.steps[index];
    const phase = envelope.txn?.phase ?? SagaPhase.FORWARD;
    const expected = phase === SagaPhase.FORWARD ? StepStatus.PENDING : StepStatus.COMPENSATING;
    if (running === undefined || step === undefined || step.status !== expected) {
      this.counters.staleMessages++;
      return;
    }
    const ok = envelope.txn?.ok === true;
    const { record } = running;
    if (phase === SagaPhase.FORWARD && ok) {
      step.status = StepStatus.DONE;
      // A success that arrives after the saga failed is compensated at once.
      if (record.failed) this.compensate(running, index);
    } else if (phase === SagaPhase.FORWARD) {
      step.status = StepStatus.FAILED;
      if (!record.failed) {
        record.failed = true;
        record.steps.forEach((other, i) => {
          if (other.status === StepStatus.DONE) this.compensate(running, i);
        });
      }
    } else if (ok) {
      step.status = StepStatus.COMPENSATED;
    } else {
      this.compensationFailed(running, envelope, index, step);
    }
    const open = record.steps.some((s) => s.status === StepStatus.PENDING || s.status === StepStatus.COMPENSATING);
    if (!open) this.end(running, record.failed ? 'failure' : 'success');
  }

  private compensate(running: Running, index: number): void {
    running.record.steps[index]!.status = StepStatus.COMPENSATING;
    this.sendStep(running, index, SagaPhase.COMPENSATION);
  }

  /** A compensation failed: retry it later (backing off), and after the last attempt, dead-letter it. */
  private compensationFailed(running: Running, envelope: Envelope, index: number, step: Step): void {
    this.counters.compensationsFailed++;
    step.attempts++;
    const fn = running.fn as SagaCoordinatorType;
    if (step.attempts < fn.compensationAttempts) {
      const retry = this.stepEnvelope(running, index, SagaPhase.COMPENSATION);
      const delayMs = fn.compensationRetryDelayMs * 2 ** (step.attempts - 1);
      this.host.schedule(running.address, running.kg, { fireAt: (this.host.now?.() ?? Date.now()) + delayMs, delayMs, token: `${running.record.txn.id}/compensate/${index}/${step.attempts}`, envelope: retry });
      return;
    }
    step.status = StepStatus.ABANDONED;
    this.counters.compensationsAbandoned++;
    const compensation = { ...this.stepEnvelope(running, index, SagaPhase.COMPENSATION), ingressTime: envelope.ingressTime };
    this.host.deadLetter(
      compensation,
      'EDDY_COMPENSATION_FAILED',
      `saga ${running.fn.type}:${running.address.id} (transaction ${running.record.txn.id}): the compensation of step ${index} to ${step.type}:${step.id} failed ${step.attempts} times; ` +
        'its message is in this dead letter: apply it by hand once the cause is fixed',
    );
  }

  private sendStep(running: Running, index: number, phase: number): void {
    this.host.route(this.stepEnvelope(running, index, phase));
  }

  private stepEnvelope(running: Running, index: number, phase: number): Envelope {
    const step = running.record.steps[index]!;
    const envelope = this.envelope(running, Kind.SAGA_STEP, step, { id: running.record.txn.id, step: index, phase });
    envelope.payload = phase === SagaPhase.FORWARD ? step.invocations[0]! : step.compensation;
    return envelope;
  }

  // ---- common ----

  /** The transaction running at the envelope's target, if it is the one the envelope names. */
  private current(envelope: Envelope, protocol: number): Running | undefined {
    const running = this.running.get(keyOfAddress({ type: envelope.targetType, id: envelope.targetId }));
    if (running === undefined || running.record.txn.id !== envelope.txn?.id || running.record.protocol !== protocol) return undefined;
    return running;
  }

  /** Ends the transaction: participants learn the decision, the outcome's effects apply, the next request may start. */
  private end(running: Running, ending: Ending): void {
    const { record, address, kg } = running;
    if (this.waits.size > 0) this.waits.delete(record.txn.id);
    if (record.protocol === Protocol.TWO_PHASE_COMMIT) {
      const decision = ending === 'success' ? Kind.COMMIT : Kind.ABORT;
      // A participant that voted NO took no lock: it has nothing to abort.
      for (const step of record.steps) if (step.status !== StepStatus.FAILED) this.send(running, decision, step, { id: record.txn.id });
      if (ending === 'success') this.counters.transactionsCommitted++;
      else if (ending === 'failure') this.counters.transactionsAborted++;
      else this.counters.transactionsRetryable++;
    } else if (ending === 'success') this.counters.sagasSucceeded++;
    else this.counters.sagasFailed++;
    const outcome = ending === 'success' ? record.onSuccess : ending === 'failure' ? record.onFailure : record.onRetryable;
    this.host.apply(effectsOfOutcome(address, kg, outcome, this.host.now?.() ?? Date.now()));
    const key = keyOfAddress(address);
    this.running.delete(key);
    this.slotsTaken[running.fn.kind]--;
    // Only 2PC waits for locks: sagas would dilute the contention signal.
    if (record.protocol === Protocol.TWO_PHASE_COMMIT) this.limit.transactionEnded(record.blockers.length > 0);
    if (running.fn.kind === 'tpc' && running.fn.lockWaitTimeoutMs !== undefined) this.host.cancelLockWait?.(address, record.txn.id);
    const timer = this.lockWaitTimers.get(key);
    if (timer !== undefined) {
      clearTimeout(timer);
      this.lockWaitTimers.delete(key);
    }
    this.host.release(address);
    retire(record);
  }

  /** Every running transaction as a keyed-state record, for a checkpoint's cut or a stop. */
  records(): Array<[string, Uint8Array]> {
    return [...this.running.values()].map(({ kg, address, record }) => [txnKey(kg, address.type, address.id), encodeCoordinatorRecord(record)]);
  }

  private send(running: Running, kind: number, to: Address, txn: Transaction): void {
    this.host.route(this.envelope(running, kind, to, txn));
  }

  private envelope(running: Running, kind: number, to: Address, txn: Transaction): Envelope {
    return protocolEnvelope(kind, running.address, { type: to.type, id: to.id }, txn, running.record.ingressTime, this.host.worker, this.host.nextSeq());
  }
}
