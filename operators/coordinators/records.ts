import { randomBytes } from 'node:crypto';
import type { Address } from '../../engine/function-type.js';
import { fromBytes, toBytes } from '../../engine/state/state-keys.js';
import type { Envelope, Transaction, TxnRef } from '../../engine/wire/envelope.js';
import type { OutcomeEffects, StagedEffectsRecord } from '../../engine/wire/transactions.js';
import type { CoreReads, Effects } from '../core-host.js';

/** Staged effects as stored in a participant's lock record. */
export function stagedRecordOf(effects: Effects): StagedEffectsRecord {
  return {
    writes: [...(effects.writes ?? [])].map(([key, value]) => ({ key: toBytes(key), value: value ?? new Uint8Array(0), deleted: value === null })),
    sends: [...(effects.sends ?? [])],
    timers: [...(effects.timers ?? [])],
    cancels: [...(effects.cancels ?? [])],
    egress: [...(effects.egressRecords ?? [])],
  };
}

/** A lock record's staged effects, ready to apply. */
export function effectsOfRecord(self: Address, kg: number, staged: StagedEffectsRecord | null): Effects {
  return {
    self,
    kg,
    writes: new Map((staged?.writes ?? []).map((write) => [fromBytes(write.key), write.deleted ? null : write.value])),
    sends: staged?.sends ?? [],
    timers: staged?.timers ?? [],
    cancels: staged?.cancels ?? [],
    egressRecords: staged?.egress ?? [],
  };
}

/** Whether an invocation changed nothing and produced nothing (a read-only participant). */
export function isEmpty(effects: Effects): boolean {
  return (
    (effects.writes?.size ?? 0) === 0 &&
    (effects.sends?.length ?? 0) === 0 &&
    (effects.timers?.length ?? 0) === 0 &&
    (effects.cancels?.length ?? 0) === 0 &&
    (effects.egressRecords?.length ?? 0) === 0
  );
}

/**
 * An outcome's effects as the coordinator applies them: delays count from now, and an explicit token
 * replaces a pending delayed message with that token.
 */
export function effectsOfOutcome(self: Address, kg: number, outcome: OutcomeEffects, now: number): Effects {
  return {
    self,
    kg,
    sends: outcome.sends,
    cancels: outcome.delayed.map((delayed) => delayed.token),
    timers: outcome.delayed.map((delayed) => ({ fireAt: now + delayed.delayMs, delayMs: delayed.delayMs, token: delayed.token, envelope: delayed.envelope })),
    egressRecords: outcome.egress,
  };
}

/**
 * Transaction ids: a random prefix per worker run and a counter, so an id is never reused, also not
 * after a restart or restore (a stale probe must never match a later transaction).
 */
const runPrefix = randomBytes(6).toString('hex');
let counter = 0;
export function newTransactionId(host: CoreReads): string {
  if (host.transactionId !== undefined) return host.transactionId();
  const { worker } = host;
  counter++;
  return `${runPrefix}.${worker}.${counter.toString(36)}`;
}

/** Whether `a` is younger than `b`: started later, ties broken by id. The youngest of a cycle is its victim. */
export function isYounger(a: TxnRef, b: TxnRef): boolean {
  return a.startedAt !== b.startedAt ? a.startedAt > b.startedAt : a.id > b.id;
}

/** The transaction a PREPARE belongs to, with its coordinator (the PREPARE's sender). */
export function txnOfPrepare(envelope: Envelope): TxnRef {
  const txn = envelope.txn!;
  return { id: txn.id, startedAt: txn.startedAt ?? 0, coordinatorType: envelope.sourceType, coordinatorId: envelope.sourceId };
}

/** A protocol envelope from `from` to `to`. */
export function protocolEnvelope(kind: number, from: Address, to: Address, txn: Transaction, ingressTime: number, origin: number, seq: number): Envelope {
  return {
    kind,
    targetType: to.type,
    targetId: to.id,
    sourceType: from.type,
    sourceId: from.id,
    payload: new Uint8Array(0),
    ingressTime,
    origin,
    seq,
    txn,
  };
}

export function sameAddress(a: Address, b: Address): boolean {
  return a.type === b.type && a.id === b.id;
}

export function coordinatorOf(txn: TxnRef): Address {
  return { type: txn.coordinatorType, id: txn.coordinatorId };
}
