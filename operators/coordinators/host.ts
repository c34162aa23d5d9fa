import type { ErrorCode } from '../../engine/errors.js';
import type { Address } from '../../engine/function-type.js';
import type { StateStore } from '../../engine/state/state-store.js';
import type { Envelope } from '../../engine/wire/envelope.js';
import type { Effects, InvocationHost, StagedTimer } from '../invocation.js';

/**
 * How a transaction holds an address. `busy`: a coordinator runs a transaction; requests wait and
 * keep their router credit. `locked`: a participant's exclusive lock; everything waits, credits go
 * back (a full mailbox behind a lock must not stop the routers that deliver its COMMIT's causes).
 * `shared`: read-only participants hold it; a PREPARE at the head of the mailbox may still run.
 */
export type HoldMode = 'busy' | 'locked' | 'shared';

/**
 * What the transaction layer needs from its dispatcher: its store and shuffle, its way of applying
 * effects, and a narrow view of the per-address mailboxes. A held address (a locked participant, a
 * coordinator with a transaction in progress) keeps its mailbox: later invocations wait there, in
 * order, while protocol envelopes pass by.
 */
export interface TransactionHost extends InvocationHost {
  readonly store: StateStore;
  /** After a stop the dispatcher is closed: late completions are discarded (their envelopes were parked). */
  readonly isClosed: boolean;
  /** Before the start and while stopping nothing new runs. */
  readonly isPaused: boolean;
  invocations: number;
  invocationsFailed: number;
  route(envelope: Envelope): void;
  deadLetter(envelope: Envelope | undefined, code: ErrorCode, reason: string): void;
  /** `who` (a handler) threw a bug, not InvocationFailed, working on `what`: counted and dead-lettered. */
  handlerFailed(envelope: Envelope, who: string, what: string, error: unknown): void;
  /** Applies effects as for a successful invocation. */
  commit(effects: Effects): void;
  /** Keeps a delayed envelope of `owner` in keyed state until `timer.fireAt`. */
  schedule(owner: Address, kg: number, timer: StagedTimer): void;
  /** From now on, invocations of `address` wait in its mailbox (as `mode` says) until `release`. */
  hold(address: Address, mode: HoldMode): void;
  /** Back to a shared hold of `address` (the writer waiting at its head left): its head may run now. */
  reshare(address: Address): void;
  /** Puts a PREPARE that ran back at the head of the mailbox of `address`, to run again later. */
  requeueFirst(address: Address, envelope: Envelope): void;
  /** A transaction slot may have come free without a transaction ending (a declaration failed). */
  slotFreed(): void;
  /** Work done outside an invocation (a timer fired): flush state and return credits as after one. */
  afterTimer(): void;
  /** Lets the mailbox of `address` run again, in order. */
  release(address: Address): void;
  /** What waits in the mailbox of `address` (nothing if it has none). */
  queued(address: Address): readonly Envelope[];
  /** Removes the envelope at `index` of the mailbox of `address`. */
  removeQueued(address: Address, index: number): void;
  /** The envelope an async invocation of `address` is working on right now, if any. */
  inFlightOf(address: Address): Envelope | undefined;
}
