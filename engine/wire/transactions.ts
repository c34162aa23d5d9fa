import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';
import type { EgressRecord, Envelope, TimerEntry, TxnRef } from './envelope.js';

/** The transaction bookkeeping kept in keyed state (transactions.proto). */

export const Protocol = { TWO_PHASE_COMMIT: 1, SAGA: 2 } as const;
export type ProtocolId = (typeof Protocol)[keyof typeof Protocol];

export const StepStatus = { PENDING: 0, DONE: 1, FAILED: 2, COMPENSATING: 3, COMPENSATED: 4, ABANDONED: 5 } as const;

export interface StateWrite {
  key: Uint8Array;
  value: Uint8Array;
  deleted: boolean;
}

export interface StagedEffectsRecord {
  writes: StateWrite[];
  sends: Envelope[];
  timers: TimerEntry[];
  cancels: string[];
  egress: EgressRecord[];
}

export interface SharedHolder {
  txn: TxnRef;
  lockedAt: number;
}

/**
 * A participant instance's transaction state: an exclusive lock (`txn`, `staged`), or the holders of
 * its shared lock (`shared`), and possibly the mark of a PREPARE aborted while it ran (`txn`).
 */
export interface ParticipantRecord {
  txn: TxnRef | null;
  staged: StagedEffectsRecord | null;
  abortedWhilePreparing: boolean;
  lockedAt: number;
  shared: SharedHolder[];
}

export interface DelayedSend {
  envelope: Envelope;
  delayMs: number;
  token: string;
}

export interface OutcomeEffects {
  sends: Envelope[];
  delayed: DelayedSend[];
  egress: EgressRecord[];
}

export interface Step {
  type: string;
  id: string;
  /** 2PC: the participant's invocations; saga: the forward invocation (one). */
  invocations: Uint8Array[];
  /** Saga: the compensating invocation. */
  compensation: Uint8Array;
  status: number;
  attempts: number;
}

export interface CoordinatorRecord {
  protocol: ProtocolId;
  txn: TxnRef;
  steps: Step[];
  onSuccess: OutcomeEffects;
  onFailure: OutcomeEffects;
  onRetryable: OutcomeEffects;
  blockers: TxnRef[];
  dependents: TxnRef[];
  failed: boolean;
  ingressTime: number;
}

const root = protobuf.loadSync(fileURLToPath(new URL('./transactions.proto', import.meta.url)));
const ParticipantType = root.lookupType('eddy.wire.v1.ParticipantRecord');
const CoordinatorType = root.lookupType('eddy.wire.v1.CoordinatorRecord');

/** Decoded as plain objects with fresh (mutable) arrays and every scalar's default; bytes stay bytes. */
const DECODE: protobuf.IConversionOptions = { defaults: true, arrays: true };

/** An absent outcome decodes as null: make it an empty one. */
function outcome(value: Partial<OutcomeEffects> | null | undefined): OutcomeEffects {
  return { sends: value?.sends ?? [], delayed: value?.delayed ?? [], egress: value?.egress ?? [] };
}

export function encodeParticipantRecord(record: ParticipantRecord): Uint8Array {
  return ParticipantType.encode(record).finish();
}

export function decodeParticipantRecord(bytes: Uint8Array): ParticipantRecord {
  return ParticipantType.toObject(ParticipantType.decode(bytes), DECODE) as ParticipantRecord;
}

export function encodeCoordinatorRecord(record: CoordinatorRecord): Uint8Array {
  return CoordinatorType.encode(record).finish();
}

export function decodeCoordinatorRecord(bytes: Uint8Array): CoordinatorRecord {
  const record = CoordinatorType.toObject(CoordinatorType.decode(bytes), DECODE) as CoordinatorRecord;
  record.onSuccess = outcome(record.onSuccess);
  record.onFailure = outcome(record.onFailure);
  record.onRetryable = outcome(record.onRetryable);
  return record;
}
