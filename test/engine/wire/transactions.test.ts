import t from 'tap';
import { decodeParticipantRecord, encodeParticipantRecord, type ParticipantRecord } from '../../../engine/wire/transactions.js';

const ref = (id: string): ParticipantRecord['shared'][number]['txn'] => ({ id, startedAt: 1700000000000, coordinatorType: 'tx/multi', coordinatorId: `c-${id}` });

void t.test('a participant record keeps the holders of a shared lock beside the mark of a PREPARE aborted while it ran', async (t) => {
  const record: ParticipantRecord = {
    txn: ref('aborted'),
    staged: null,
    abortedWhilePreparing: true,
    lockedAt: 0,
    shared: [
      { txn: ref('reader-1'), lockedAt: 1700000000100 },
      { txn: ref('reader-2'), lockedAt: 1700000000200 },
    ],
  };
  const decoded = decodeParticipantRecord(encodeParticipantRecord(record));
  t.same(decoded.shared, record.shared, 'both shared holders with their lock times');
  t.same(decoded.txn, record.txn, 'and the aborted PREPARE');
  t.equal(decoded.abortedWhilePreparing, true);
});

void t.test('an exclusive lock record has no shared holders, and a shared-only one no transaction', async (t) => {
  const exclusive = decodeParticipantRecord(encodeParticipantRecord({ txn: ref('writer'), staged: null, abortedWhilePreparing: false, lockedAt: 5, shared: [] }));
  t.same(exclusive.shared, []);
  t.equal(exclusive.txn?.id, 'writer');
  const sharedOnly = decodeParticipantRecord(encodeParticipantRecord({ txn: null, staged: null, abortedWhilePreparing: false, lockedAt: 0, shared: [{ txn: ref('r'), lockedAt: 9 }] }));
  t.equal(sharedOnly.txn, null, 'no exclusive holder');
  t.equal(sharedOnly.shared.length, 1);
});
