import { decodeOrExplain } from '../../engine/codec.js';
import { describeError, isInvocationFailed } from '../../engine/errors.js';
import type { Address, FunctionType, StateSpecs } from '../../engine/function-type.js';
import { txnKey } from '../../engine/state/state-keys.js';
import { TransientMap } from '../../engine/transient-map.js';
import { type Envelope, Kind, type TxnRef } from '../../engine/wire/envelope.js';
import { encodeParticipantRecord, type ParticipantRecord, type SharedHolder } from '../../engine/wire/transactions.js';
import type { CoreHost, Effects } from '../core-host.js';
import { Invocation } from '../invocation.js';
import type { InvocationStats } from '../invocation-stats.js';
import { keyOfAddress } from '../address-key.js';
import { effectsOfRecord, isEmpty, protocolEnvelope, stagedRecordOf, txnOfPrepare } from './records.js';
import { type HandlerOutcome, runHandlers } from './run-handlers.js';

interface Lock {
  readonly address: Address;
  readonly kg: number;
  readonly txn: TxnRef;
  /** Dropped at unlock, so the staged invocation dies young (see TransientMap). */
  effects: Effects;
  readonly lockedAt: number;
}

/** The read-only participants of an instance, by transaction id: they staged nothing. */
interface SharedLock {
  readonly address: Address;
  readonly kg: number;
  readonly holders: Map<string, SharedHolder>;
}

export interface ParticipantCounters {
  locksTaken: number;
  lockHoldMsTotal: number;
  locksReleased: number;
  staleMessages: number;
  /** PREPAREs that came again for a transaction this instance already had (answered or dropped). */
  duplicatePrepares: number;
}

/** Most PREPAREs wait for nobody: one shared empty answer instead of an array each. */
const NO_BLOCKERS: readonly TxnRef[] = [];

/**
 * The participant side of two-phase commit and sagas, for regular functions (which need no change):
 * PREPARE runs the transaction's invocations of an instance in isolation, keeps their effects staged
 * in a lock record (keyed state) and votes; while locked, the instance's mailbox waits. COMMIT applies
 * the staged effects, ABORT discards them (or drops the PREPARE if it is still queued). Saga steps are
 * ordinary invocations that report how they ended.
 */
export class Participants {
  private readonly locks = new TransientMap<string, Lock>();
  private readonly sharedLocks = new TransientMap<string, SharedLock>();
  /** PREPAREs aborted while they ran, by instance: when they end they are discarded. */
  private readonly abortedWhilePreparing = new Map<string, { address: Address; kg: number; txn: TxnRef }>();
  readonly counters: ParticipantCounters = { locksTaken: 0, lockHoldMsTotal: 0, locksReleased: 0, staleMessages: 0, duplicatePrepares: 0 };

  constructor(
    private readonly host: CoreHost,
    private readonly stats: InvocationStats,
  ) {}

  private now(): number {
    return this.host.now?.() ?? Date.now();
  }

  /** Instances locked, exclusively or shared. */
  get locksHeld(): number {
    return this.locks.size + this.sharedLocks.size;
  }

  /**
   * How transactions hold `address` as a participant, for a state lookup: the exclusive lock's
   * transaction with the writes it staged, or the read-only holders' transactions.
   */
  holdOf(address: Address): { transactions: string[]; lockedAt: number; staged?: ReadonlyMap<string, Uint8Array | null> } | undefined {
    const key = keyOfAddress(address);
    const lock = this.locks.get(key);
    if (lock !== undefined) return { transactions: [lock.txn.id], lockedAt: lock.lockedAt, staged: lock.effects.writes ?? new Map() };
    const shared = this.sharedLocks.get(key);
    if (shared === undefined) return undefined;
    const holders = [...shared.holders.values()];
    return { transactions: holders.map((holder) => holder.txn.id), lockedAt: Math.min(...holders.map((holder) => holder.lockedAt)) };
  }

  /** A lock record found in keyed state at start (restore, restart). */
  restore(address: Address, kg: number, record: ParticipantRecord): void {
    const key = keyOfAddress(address);
    if (record.shared.length > 0) {
      this.sharedLocks.set(key, { address, kg, holders: new Map(record.shared.map((holder) => [holder.txn.id, holder])) });
      this.host.hold(address, 'shared');
    }
    if (record.txn === null) return;
    if (record.abortedWhilePreparing) {
      this.abortedWhilePreparing.set(key, { address, kg, txn: record.txn });
      return;
    }
    this.locks.set(key, { address, kg, txn: record.txn, effects: effectsOfRecord(address, kg, record.staged), lockedAt: record.lockedAt });
    this.host.hold(address, 'locked');
  }

  /**
   * A PREPARE arrives. A second copy of one this instance already knows (a coordinator sends its
   * PREPAREs again after a restore, and a step must be idempotent per transaction) is consumed here
   * (true): a lock holder or shared holder votes YES again (its vote may have been lost), one queued,
   * running or aborted while running is dropped. Otherwise (false) it takes its place in the mailbox;
   * if it will queue behind another transaction, its coordinator is told. Only the nearest one ahead
   * is reported (that one reported the one ahead of it, and so on): the chain carries the rest, and a
   * long queue costs one edge per waiter, not one per pair.
   */
  arriving(envelope: Envelope): boolean {
    const address = { type: envelope.targetType, id: envelope.targetId };
    const id = envelope.txn!.id;
    const key = keyOfAddress(address);
    if (this.locks.get(key)?.txn.id === id || this.sharedLocks.get(key)?.holders.has(id) === true) {
      this.counters.duplicatePrepares++;
      this.reply(envelope, Kind.VOTE, { id, ok: true });
      return true;
    }
    const running = this.host.inFlightOf(address);
    if ((running?.kind === Kind.PREPARE && running.txn?.id === id) || this.host.queued(address).some((waiting) => waiting.kind === Kind.PREPARE && waiting.txn?.id === id)) {
      this.counters.duplicatePrepares++;
      return true;
    }
    if (this.abortedWhilePreparing.get(key)?.txn.id === id) {
      // Ran before a restart and was aborted meanwhile (the copy that ran is not running now): nothing
      // to do but forget the mark.
      this.abortedWhilePreparing.delete(key);
      return true;
    }
    this.reportWait(envelope, this.nearestAhead(address, this.host.queued(address).length));
    return false;
  }

  /**
   * The transactions the PREPARE at mailbox position `index` waits behind directly: the nearest
   * PREPARE ahead, else the one running, else the lock holder(s). Behind a shared lock with nothing
   * ahead, it runs at once (a read-only one joins the lock; a writer reports its wait then).
   */
  private nearestAhead(address: Address, index: number): readonly TxnRef[] {
    const queued = this.host.queued(address);
    for (let i = index - 1; i >= 0; i--) if (queued[i]!.kind === Kind.PREPARE) return [txnOfPrepare(queued[i]!)];
    const running = this.host.inFlightOf(address);
    if (running?.kind === Kind.PREPARE) return [txnOfPrepare(running)];
    const key = keyOfAddress(address);
    const lock = this.locks.get(key);
    if (lock !== undefined) return [lock.txn];
    const shared = this.sharedLocks.get(key);
    if (shared !== undefined && index > 0) return [...shared.holders.values()].map((holder) => holder.txn);
    return NO_BLOCKERS;
  }

  private reportWait(envelope: Envelope, blockers: readonly TxnRef[]): void {
    if (blockers.length === 0) return;
    const waiting = envelope.txn!.id;
    const others = blockers.filter((blocker) => blocker.id !== waiting);
    if (others.length === 0) return;
    this.reply(envelope, Kind.WAITS_FOR, { id: waiting, blockers: others });
  }

  /** Runs a PREPARE: its invocations in order on one staged invocation; then locks and votes. */
  prepare(envelope: Envelope, fn: FunctionType<unknown, StateSpecs>, kg: number): Promise<void> | undefined {
    const key = keyOfAddress({ type: envelope.targetType, id: envelope.targetId });
    const txn = envelope.txn!;
    if (this.abortedWhilePreparing.get(key)?.txn.id === txn.id) {
      // Ran before a restart and was aborted meanwhile: nothing to do but forget the mark.
      this.abortedWhilePreparing.delete(key);
      return undefined;
    }
    let messages: unknown[];
    try {
      messages = (txn.invocations ?? []).map((bytes) => decodeOrExplain(fn.codec, bytes, `PREPARE for ${envelope.targetType}:${envelope.targetId}`));
    } catch (error) {
      this.host.deadLetter(envelope, 'EDDY_UNDECODABLE_PAYLOAD', describeError(error));
      this.reply(envelope, Kind.VOTE, { id: txn.id, ok: false });
      return undefined;
    }
    this.stats.invocations += messages.length;
    const invocation = new Invocation(this.host, fn, envelope, kg);
    const outcome = runHandlers(fn, invocation, messages);
    if (outcome instanceof Promise) return outcome.then((ended) => this.prepared(envelope, fn, invocation, ended));
    this.prepared(envelope, fn, invocation, outcome);
    return undefined;
  }

  private prepared(envelope: Envelope, fn: FunctionType<unknown, StateSpecs>, invocation: Invocation, outcome: HandlerOutcome): void {
    if (this.host.isClosed) return;
    const address = invocation.self;
    const key = keyOfAddress(address);
    const txn = txnOfPrepare(envelope);
    if (this.abortedWhilePreparing.get(key)?.txn.id === txn.id) {
      // The coordinator decided while this ran: discard, take no lock, and do not vote (it would be late).
      this.abortedWhilePreparing.delete(key);
      return;
    }
    if (outcome !== undefined) {
      this.failed(envelope, fn, outcome.error);
      this.reply(envelope, Kind.VOTE, { id: txn.id, ok: false });
      return;
    }
    const shared = this.sharedLocks.get(key);
    if (isEmpty(invocation)) {
      // Read-only: a shared lock, beside other read-only participants. Writers wait for all of them.
      const holder: SharedHolder = { txn, lockedAt: this.now() };
      if (shared === undefined) {
        this.sharedLocks.set(key, { address, kg: invocation.kg, holders: new Map([[txn.id, holder]]) });
        this.host.hold(address, 'shared');
      } else shared.holders.set(txn.id, holder);
      this.counters.locksTaken++;
      this.reply(envelope, Kind.VOTE, { id: txn.id, ok: true });
      return;
    }
    if (shared !== undefined) {
      // A writer behind read-only holders: what it staged is discarded and it runs again once they
      // are gone. Until then the instance is locked, so later PREPAREs queue behind it (no starving).
      this.host.hold(address, 'locked');
      this.host.requeueFirst(address, envelope);
      this.reportWait(envelope, [...shared.holders.values()].map((h) => h.txn));
      return;
    }
    this.locks.set(key, { address, kg: invocation.kg, txn, effects: invocation, lockedAt: this.now() });
    this.counters.locksTaken++;
    this.host.hold(address, 'locked');
    this.reply(envelope, Kind.VOTE, { id: txn.id, ok: true });
  }

  /** COMMIT: apply the staged effects of the lock holder and unlock. */
  commit(envelope: Envelope): void {
    if (this.leaveShared(envelope)) return;
    const lock = this.lockOf(envelope);
    if (lock === undefined) return;
    this.host.apply(lock.effects);
    this.unlock(lock);
  }

  /** ABORT: discard the lock holder's effects, or drop its PREPARE if still queued, or mark it if running. */
  abort(envelope: Envelope, kg: number): void {
    if (this.leaveShared(envelope)) return;
    const address = { type: envelope.targetType, id: envelope.targetId };
    const id = envelope.txn!.id;
    const lock = this.locks.get(keyOfAddress(address));
    if (lock?.txn.id === id) {
      this.unlock(lock);
      return;
    }
    const queued = this.host.queued(address);
    const index = queued.findIndex((waiting) => waiting.kind === Kind.PREPARE && waiting.txn?.id === id);
    if (index >= 0) {
      this.host.removeQueued(address, index);
      // A writer that waited at the head for read-only holders: the others may share the lock again.
      if (index === 0 && this.sharedLocks.has(keyOfAddress(address))) this.host.reshare(address);
      // The next PREPARE waited behind the one removed: it now waits behind the one before.
      const rest = this.host.queued(address);
      const next = rest.findIndex((waiting, i) => i >= index && waiting.kind === Kind.PREPARE);
      if (next >= 0) this.reportWait(rest[next]!, this.nearestAhead(address, next));
      return;
    }
    const running = this.host.inFlightOf(address);
    if (running?.kind === Kind.PREPARE && running.txn?.id === id) {
      this.abortedWhilePreparing.set(keyOfAddress(address), { address, kg, txn: txnOfPrepare(running) });
      return;
    }
    // Its PREPARE voted NO (no lock was taken) or this ABORT is a duplicate.
    this.counters.staleMessages++;
  }

  /** A saga step: an ordinary invocation whose outcome goes back to the saga coordinator. */
  sagaStep(envelope: Envelope, fn: FunctionType<unknown, StateSpecs>, kg: number): Promise<void> | undefined {
    let message: unknown;
    try {
      message = decodeOrExplain(fn.codec, envelope.payload, `saga step for ${envelope.targetType}:${envelope.targetId}`);
    } catch (error) {
      this.host.deadLetter(envelope, 'EDDY_UNDECODABLE_PAYLOAD', describeError(error));
      this.reportStep(envelope, false);
      return undefined;
    }
    this.stats.invocations++;
    const invocation = new Invocation(this.host, fn, envelope, kg);
    const outcome = runHandlers(fn, invocation, [message]);
    if (outcome instanceof Promise) return outcome.then((result) => this.stepEnded(envelope, fn, invocation, result));
    this.stepEnded(envelope, fn, invocation, outcome);
    return undefined;
  }

  private stepEnded(envelope: Envelope, fn: FunctionType<unknown, StateSpecs>, invocation: Invocation, result: HandlerOutcome): void {
    if (this.host.isClosed) return;
    if (result === undefined) this.host.apply(invocation);
    else this.failed(envelope, fn, result.error);
    this.reportStep(envelope, result === undefined);
  }

  private reportStep(envelope: Envelope, ok: boolean): void {
    const txn = envelope.txn!;
    this.reply(envelope, Kind.SAGA_RESULT, { id: txn.id, step: txn.step ?? 0, phase: txn.phase ?? 0, ok });
  }

  /**
   * A participant's invocation failed. InvocationFailed is the participant's answer (counted; the
   * coordinator decides what follows, so onInvocationFailed does not run); anything else is a bug,
   * reported as a dead letter, and the transaction fails as well.
   */
  private failed(envelope: Envelope, fn: FunctionType<unknown, StateSpecs>, error: unknown): void {
    if (isInvocationFailed(error)) {
      this.stats.invocationsFailed++;
      return;
    }
    this.stats.handlerFailed(envelope, `handler of ${fn.type}`, `${envelope.targetType}:${envelope.targetId} in transaction ${envelope.txn?.id}`, error);
  }

  private lockOf(envelope: Envelope): Lock | undefined {
    const lock = this.locks.get(keyOfAddress({ type: envelope.targetType, id: envelope.targetId }));
    if (lock?.txn.id === envelope.txn?.id) return lock;
    this.counters.staleMessages++;
    return undefined;
  }

  /** COMMIT or ABORT of a read-only participant: it leaves the shared lock; the last one releases it. */
  private leaveShared(envelope: Envelope): boolean {
    if (this.sharedLocks.size === 0) return false;
    const key = keyOfAddress({ type: envelope.targetType, id: envelope.targetId });
    const shared = this.sharedLocks.get(key);
    const holder = shared?.holders.get(envelope.txn!.id);
    if (shared === undefined || holder === undefined) return false;
    shared.holders.delete(holder.txn.id);
    this.counters.locksReleased++;
    this.counters.lockHoldMsTotal += this.now() - holder.lockedAt;
    if (shared.holders.size === 0) {
      this.sharedLocks.delete(key);
      this.host.release(shared.address);
    }
    return true;
  }

  private unlock(lock: Lock): void {
    this.locks.delete(keyOfAddress(lock.address));
    lock.effects = { self: lock.address, kg: lock.kg };
    this.counters.locksReleased++;
    this.counters.lockHoldMsTotal += this.now() - lock.lockedAt;
    this.host.release(lock.address);
  }

  /** Every lock and abort mark as a keyed-state record (one per instance), for a checkpoint's cut or a stop. */
  records(): Array<[string, Uint8Array]> {
    const records = new Map<string, ParticipantRecord>();
    const recordOf = (address: Address, kg: number): ParticipantRecord => {
      const key = txnKey(kg, address.type, address.id);
      let record = records.get(key);
      if (record === undefined) {
        record = { txn: null, staged: null, abortedWhilePreparing: false, lockedAt: 0, shared: [] };
        records.set(key, record);
      }
      return record;
    };
    for (const lock of this.locks.values()) {
      Object.assign(recordOf(lock.address, lock.kg), { txn: lock.txn, staged: stagedRecordOf(lock.effects), lockedAt: lock.lockedAt });
    }
    for (const shared of this.sharedLocks.values()) recordOf(shared.address, shared.kg).shared = [...shared.holders.values()];
    for (const { address, kg, txn } of this.abortedWhilePreparing.values()) Object.assign(recordOf(address, kg), { txn, abortedWhilePreparing: true });
    return [...records].map(([key, record]) => [key, encodeParticipantRecord(record)]);
  }

  private reply(envelope: Envelope, kind: number, txn: NonNullable<Envelope['txn']>): void {
    const self = { type: envelope.targetType, id: envelope.targetId };
    const coordinator = { type: envelope.sourceType, id: envelope.sourceId };
    this.host.route(protocolEnvelope(kind, self, coordinator, txn, envelope.ingressTime, this.host.worker, this.host.nextSeq()));
  }
}
