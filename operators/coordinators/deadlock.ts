/**
 * Chandy-Misra-Haas edge chasing between coordinators, with one victim per cycle. The nodes are
 * transactions; an edge T -> B means a PREPARE of T waits behind B at some participant (reported by
 * it with WAITS_FOR). A probe names its initiator and travels only along edges whose target still runs
 * the transaction the edge names, so a probe from or to a finished transaction goes nowhere: a stale
 * probe never aborts anything.
 *
 * The victim of a cycle is its youngest transaction. A probe of initiator I only goes to transactions
 * older than I, so it comes back to I exactly when I is the youngest of some cycle: a cycle loses
 * one transaction, the same one whoever looks at it. Each coordinator passes each initiator's probe
 * on once (remembering it as a dependent, to pass it along edges that appear later), so probes are
 * not forwarded forever, and paths through younger transactions, where the probe would be useless, are
 * never taken.
 *
 * These functions change the coordinator's record in place; the caller stores it.
 */
import type { TxnRef } from '../../engine/wire/envelope.js';
import type { CoordinatorRecord } from '../../engine/wire/transactions.js';
import { isYounger } from './records.js';

export interface Probe {
  /** The blocker the probe goes to: its coordinator must still be running `to.id`. */
  readonly to: TxnRef;
  readonly initiator: TxnRef;
}

/** New wait-for edges of the record's transaction: probes for it and for every initiator it passed on. */
export function addBlockers(record: CoordinatorRecord, blockers: readonly TxnRef[]): Probe[] {
  const probes: Probe[] = [];
  for (const blocker of blockers) {
    if (blocker.id === record.txn.id || record.blockers.some((known) => known.id === blocker.id)) continue;
    record.blockers.push(blocker);
    for (const initiator of [record.txn, ...record.dependents]) {
      if (leadsBack(initiator, blocker)) probes.push({ to: blocker, initiator });
    }
  }
  return probes;
}

/** A probe of `initiator` reached the record's transaction. */
export function receiveProbe(record: CoordinatorRecord, initiator: TxnRef): { deadlock: boolean; probes: Probe[] } {
  // Back at its initiator, having passed older transactions only: a cycle whose youngest this is.
  if (initiator.id === record.txn.id) return { deadlock: true, probes: [] };
  if (record.dependents.some((dependent) => dependent.id === initiator.id)) return { deadlock: false, probes: [] };
  record.dependents.push(initiator);
  const probes = record.blockers.filter((blocker) => leadsBack(initiator, blocker)).map((to) => ({ to, initiator }));
  return { deadlock: false, probes };
}

/** Whether a probe of `initiator` goes on to `blocker`: to older transactions, and home. */
function leadsBack(initiator: TxnRef, blocker: TxnRef): boolean {
  return blocker.id === initiator.id || isYounger(initiator, blocker);
}
