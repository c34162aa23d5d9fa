import type { AnyFunctionType } from '../engine/coordinator-type.js';
import type { ErrorCode } from '../engine/errors.js';
import type { Address } from '../engine/function-type.js';
import type { EgressRecord, Envelope } from '../engine/wire/envelope.js';

/**
 * The interface between the invocation core (operators/invocation-core.ts: it turns (state, message)
 * into effects, and runs the participant and coordinator state machines of transactions and sagas)
 * and the host that drives it. Two hosts are meant to implement it: the worker's function-dispatcher
 * (state in the worker's store, envelopes over the channel mesh, mailboxes per address), and a
 * request-reply server that receives an instance's state with a batch of messages and returns the
 * mutations and messages (StateFun's remote-function protocol). Nothing here is about threads,
 * channels, credits or checkpoints: the core reads through `CoreReads`, hands every effect to
 * `CoreEmits`, and keeps per-instance order through `InstanceOrder`.
 */
export interface CoreHost extends CoreReads, CoreEmits, InstanceOrder {}

/** A delayed message an invocation staged. */
export interface StagedTimer {
  fireAt: number;
  /**
   * The delay asked for (fireAt is it on this host's clock), which a request-reply host answers with;
   * absent on timers read back from a lock record.
   */
  delayMs?: number;
  token: string;
  envelope: Envelope;
}

/** The effects of one invocation (or of a transaction's outcome, or its staged participant effects). */
export interface Effects {
  readonly self: Address;
  readonly kg: number;
  /** State mutations by state key (state-keys.ts layout); null deletes. */
  readonly writes?: ReadonlyMap<string, Uint8Array | null> | undefined;
  /** Messages to other instances. */
  readonly sends?: readonly Envelope[] | undefined;
  /** Delayed messages to keep until they are due. */
  readonly timers?: readonly StagedTimer[] | undefined;
  /** Tokens of pending delayed messages of `self` to cancel. */
  readonly cancels?: readonly string[] | undefined;
  readonly egressRecords?: readonly EgressRecord[] | undefined;
}

/** What the core reads: the state of the instance it runs, the job's definitions, fresh ids. */
export interface CoreReads {
  /** Names the sender of the envelopes the core makes (their `origin`) and prefixes transaction ids. */
  readonly worker: number;
  /**
   * The stored value under `key` (state-keys.ts layout), undefined if there is none. Synchronous: a
   * handler reads state in the middle of its code. The host makes the instance's state readable first
   * (see `loadState`).
   */
  readState(key: string): Uint8Array | undefined;
  /** Entries whose keys start with `prefix`, in key order, including writes not yet flushed (map and list state). */
  scanState(prefix: string): AsyncIterable<[string, Uint8Array]>;
  /**
   * Makes the state of instance `type`/`id` readable through `readState` before a handler of it runs.
   * Undefined when it already is (the worker's store reads through its cache; a request-reply host
   * was sent the state with the request); else a promise the core waits for, with the invocation then
   * async. (Type and id rather than an Address: no object per invocation on the hot path.)
   */
  loadState(type: string, id: string, kg: number): Promise<void> | undefined;
  /** Whether a delayed message of `owner` with `token` is pending (a staged `sendAfter` must not reuse it). */
  timerPending(owner: Address, kg: number, token: string): boolean;
  functionType(type: string): AnyFunctionType | undefined;
  egressIndex(name: string): number | undefined;
  egressNames(): string[];
  encodeEgress(index: number, record: unknown): Uint8Array;
  /** The key group of an instance id. */
  keyGroup(id: string): number;
  /** The next envelope sequence number of this sender. */
  nextSeq(): number;
  /**
   * Optional: a fresh token for a delayed message sent without one. Default: made of the time, the
   * worker and `nextSeq`. A request-reply host derives it from the request, so that a request sent
   * twice gets the same answer.
   */
  timerToken?(): string;
  /**
   * Optional: the id of a transaction that starts now. Default: a random prefix per process run and a
   * counter. A request-reply host derives it from the request (and a counter kept in the coordinator's
   * state), so that a request sent twice starts the same transaction.
   */
  transactionId?(): string;
  /**
   * Optional: the clock of the transaction bookkeeping (a transaction's start, which orders deadlock
   * victims; a lock's start). Default: `Date.now()`. A request-reply host answers a constant, so that
   * a request sent twice gets the same answer byte for byte (ids then order the victims).
   */
  now?(): number;
  /**
   * Late completions are discarded (true after the host stopped: their envelopes were kept to run
   * again, so their effects must not apply now).
   */
  readonly isClosed: boolean;
  /** Nothing new starts now (before the start and while stopping): timers of the core wait. */
  readonly isPaused: boolean;
}

/** What the core emits: effects to apply, protocol messages, dead letters. */
export interface CoreEmits {
  /**
   * Applies the effects of a successful invocation (state writes, messages, timers, egress). Ignored
   * once the host is closed (see `isClosed`): late completions are discarded.
   */
  apply(effects: Effects): void;
  /** Sends a protocol envelope (a vote, a decision, a probe, a saga step) to its target. */
  route(envelope: Envelope): void;
  /** Keeps a delayed envelope of `owner` until `timer.fireAt` (a saga's retried compensation). */
  schedule(owner: Address, kg: number, timer: StagedTimer): void;
  /**
   * Optional: keeps the lock-wait timeout of transaction `txnId` of coordinator `owner` as a delayed
   * message that comes back through `InvocationCore.lockWaitExpired` (a request-reply host has no timers
   * of its own). Default: a timer in this process.
   */
  scheduleLockWait?(owner: Address, txnId: string, delayMs: number): void;
  /** With `scheduleLockWait`: the transaction ended, its lock-wait timeout is not needed any more. */
  cancelLockWait?(owner: Address, txnId: string): void;
  /** Writes a dead letter for `envelope` (counted by the host). */
  deadLetter(envelope: Envelope | undefined, code: ErrorCode, reason: string): void;
  /** Work done outside an invocation (a core timer fired): flush as after one. */
  afterTimer(): void;
  /** A transaction slot may have come free without a transaction ending (an async declaration settled). */
  slotFreed(): void;
}

/**
 * How a transaction holds an address. `busy`: a coordinator runs a transaction; requests wait and
 * keep their router credit. `locked`: a participant's exclusive lock; everything waits, credits go
 * back (a full mailbox behind a lock must not stop the routers that deliver its COMMIT's causes).
 * `shared`: read-only participants hold it; a PREPARE at the head of the mailbox may still run.
 */
export type HoldMode = 'busy' | 'locked' | 'shared';

/**
 * Per-instance order, kept by the host: invocations of one address run one at a time in arrival
 * order, and a held address (a locked participant, a coordinator with a transaction in progress) keeps
 * later invocations waiting, in order, while protocol envelopes pass by. The worker keeps them in
 * mailboxes; a request-reply host would keep the waiting queue in the instance's own state.
 */
export interface InstanceOrder {
  /** From now on, invocations of `address` wait (as `mode` says) until `release`. */
  hold(address: Address, mode: HoldMode): void;
  /** Back to a shared hold of `address` (the writer waiting at its head left): its head may run now. */
  reshare(address: Address): void;
  /** Lets what waits for `address` run again, in order. */
  release(address: Address): void;
  /** Puts a PREPARE that ran back at the head of the queue of `address`, to run again later. */
  requeueFirst(address: Address, envelope: Envelope): void;
  /** What waits for `address` (nothing if none). */
  queued(address: Address): readonly Envelope[];
  /** Removes the envelope at `index` of the queue of `address`. */
  removeQueued(address: Address, index: number): void;
  /** The envelope an async invocation of `address` is working on right now, if any. */
  inFlightOf(address: Address): Envelope | undefined;
}
