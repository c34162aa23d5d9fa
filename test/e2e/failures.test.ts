import t from 'tap';
import type { DeadLetter } from '../../index.js';
import failuresJob, { type AuditEntry, type FailureCommand, type Rejection } from '../fixtures/failures-job.js';
import { run } from '../fixtures/harness.js';

void t.test('failed invocations', async (t) => {
  const outcomes: Array<NonNullable<FailureCommand['outcome']>> = ['ok', 'rejected', 'ok', 'error', 'rejected-async', 'ok', 'error-async', 'rejected-twice', 'ok'];
  const ACCOUNTS = ['acc-1', 'acc-2', 'acc-3', 'acc-4'];
  const commands: FailureCommand[] = [];
  let seq = 0;
  for (const account of ACCOUNTS) {
    for (const outcome of outcomes) commands.push({ account, seq: seq++, op: 'add', amount: 10 ** (seq % 6), outcome });
    commands.push({ account, seq: seq++, op: 'read' });
  }
  const adds = commands.filter((c) => c.op === 'add');
  const succeeded = adds.filter((c) => c.outcome === 'ok');
  const rejected = adds.filter((c) => c.outcome?.startsWith('rejected') === true);
  const errored = adds.filter((c) => c.outcome?.startsWith('error') === true);

  const handle = run(t, failuresJob, { workers: 2, inputs: { commands } });
  const summary = await handle.done;
  const applied = handle.output<{ account: string; seq: number }>('applied');
  const auditLog = handle.output<AuditEntry>('audit');
  const rejections = handle.output<Rejection>('rejections');
  const balances = handle.output<{ account: string; balance: number; failures: number }>('balances');
  const deadLetters = handle.output<DeadLetter>('dead-letters');
  const seqs = (list: ReadonlyArray<{ seq: number }>): number[] => list.map((x) => x.seq).sort((a, b) => a - b);

  await t.test('InvocationFailed discards the state writes, sends, delayed messages and egress of its invocation', async (t) => {
    t.same(seqs(applied), seqs(succeeded), 'egress only from invocations that succeeded');
    t.same(seqs(auditLog.filter((a) => a.via === 'send')), seqs(succeeded), 'sends only from invocations that succeeded');
    t.same(seqs(auditLog.filter((a) => a.via === 'sendAfter')), seqs(succeeded), 'delayed messages only from invocations that succeeded');
    for (const account of ACCOUNTS) {
      const expected = succeeded.filter((c) => c.account === account).reduce((sum, c) => sum + c.amount!, 0);
      t.equal(balances.find((b) => b.account === account)?.balance, expected, `${account}: the balance holds the successful adds only`);
    }
    t.equal(summary.totals.delayedScheduled, succeeded.length, 'no timer was even scheduled for a failed invocation');
  });

  await t.test("onInvocationFailed runs with the failure and the state before it, and its own effects apply", async (t) => {
    // Where the failure handler fails itself ('rejected-twice'), its effects are discarded in turn.
    const handledOk = rejected.filter((c) => c.outcome !== 'rejected-twice');
    t.same(seqs(rejections), seqs(handledOk), 'one rejection egressed per InvocationFailed, none for other errors');
    t.ok(rejections.every((r) => r.errorName === 'Rejected' && r.message === `seq ${r.seq} rejected`), 'it gets the thrown error, subclass name included');
    for (const r of rejections) {
      const before = succeeded.filter((c) => c.account === r.account && c.seq < r.seq).reduce((sum, c) => sum + c.amount!, 0);
      if (r.balanceSeen !== before) t.fail(`seq ${r.seq}: the failure handler saw balance ${r.balanceSeen}, expected ${before}`);
    }
    t.same(seqs(auditLog.filter((a) => a.via === 'onInvocationFailed')), seqs(handledOk), 'its sends apply too');
    for (const account of ACCOUNTS) {
      t.equal(balances.find((b) => b.account === account)?.failures, handledOk.filter((c) => c.account === account).length, `${account}: failures counted in state`);
    }
    t.equal(summary.totals.invocationsFailed, rejected.length);
  });

  await t.test('an error that is not InvocationFailed dead-letters the message with EDDY_HANDLER_FAILED and the job goes on', async (t) => {
    const handlerFailed = deadLetters.filter((d) => d.code === 'EDDY_HANDLER_FAILED');
    // Plain errors, plus the failure handlers that threw InvocationFailed again.
    const twice = rejected.filter((c) => c.outcome === 'rejected-twice');
    t.equal(handlerFailed.length, errored.length + twice.length);
    t.equal(deadLetters.length, handlerFailed.length, 'no other dead letters');
    const broke = handlerFailed.filter((d) => /TypeError: seq \d+ broke/.test(d.reason));
    t.equal(broke.length, errored.length, 'the reason names the error');
    for (const letter of broke) {
      const failedSeq = Number(/seq (\d+) broke/.exec(letter.reason)![1]);
      const command = errored.find((c) => c.seq === failedSeq)!;
      t.same(letter.target, { type: 'e2e-failures/account', id: command.account }, `seq ${failedSeq}: the dead letter names the target`);
      t.same(JSON.parse(Buffer.from(letter.payloadBase64!, 'base64').toString('utf8')), command, `seq ${failedSeq}: and carries the message`);
    }
    t.equal(handlerFailed.filter((d) => /onInvocationFailed of e2e-failures\/account threw/.test(d.reason)).length, twice.length, 'a failing failure handler is reported, not looped');
    t.equal(balances.length, ACCOUNTS.length, 'messages after the errors were still processed');
    t.equal(summary.totals.handlerErrors, errored.length + twice.length);
    t.equal(summary.endedBy, 'end-of-input');
  });
});
