import t from 'tap';
import type { DeadLetter } from '../../index.js';
import delayedJob, { type DelayCommand, type DelayEvent } from '../fixtures/delayed-job.js';
import { run, tempDir, waitFor } from '../fixtures/harness.js';

type Fired = Extract<DelayEvent, { kind: 'fired' }>;

void t.test('delayed messages in one job run', async (t) => {
  const commands: DelayCommand[] = [
    { op: 'schedule', scheduler: 's-fire', tag: 'fire', delayMs: 300 },
    { op: 'schedule', scheduler: 's-zero', tag: 'zero', delayMs: 0 },
    { op: 'schedule', scheduler: 's-cancel', tag: 'cancelled', delayMs: 400, token: 'c1' },
    { op: 'cancel', scheduler: 's-cancel', token: 'c1' },
    { op: 'schedule', scheduler: 's-late', tag: 'late', delayMs: 30, token: 'L', notify: true },
    { op: 'schedule', scheduler: 's-late', tag: 'keep', delayMs: 500, token: 'K' },
    { op: 'schedule', scheduler: 's-dup', tag: 'dup-first', delayMs: 200, token: 'D' },
    { op: 'schedule', scheduler: 's-dup', tag: 'dup-second', delayMs: 50, token: 'D' },
    { op: 'schedule-twice', scheduler: 's-twice', tag: 'twice', token: 'T' },
    { op: 'schedule', scheduler: 's-other', tag: 'other-D', delayMs: 50, token: 'D' },
  ];
  const handle = run(t, delayedJob, { workers: 2, inputs: { commands } });
  const summary = await handle.done;
  const events = handle.output<DelayEvent>('events');
  const deadLetters = handle.output<DeadLetter>('dead-letters');
  const fired = (tag: string): Fired[] => events.filter((e): e is Fired => e.kind === 'fired' && e.tag === tag);

  await t.test('a delayed message arrives once, no earlier than its delay, from its sender', async (t) => {
    const [only, ...more] = fired('fire');
    t.ok(only !== undefined && more.length === 0, 'delivered once');
    const waited = only!.at - only!.scheduledAt;
    t.ok(waited >= 300, `waited ${waited} ms for a 300 ms delay`);
    t.ok(waited < 300 + 1500, `and not much longer (${waited} ms)`);
    t.same(only!.caller, { type: 'e2e-delayed/scheduler', id: 's-fire' }, 'ctx.caller is the scheduling instance');
    t.equal(fired('zero').length, 1, 'a zero delay is delivered too');
  });

  await t.test('cancelling before the delay passed prevents the delivery', async (t) => {
    t.equal(fired('cancelled').length, 0);
    t.ok(events.some((e) => e.kind === 'cancelled' && e.token === 'c1'), 'the cancel ran');
  });

  await t.test('cancelling a delivered message is a no-op: other pending messages of the instance still arrive', async (t) => {
    const late = fired('late');
    t.equal(late.length, 1, 'delivered once');
    const cancel = events.find((e) => e.kind === 'cancelled' && e.scheduler === 's-late');
    t.ok(cancel !== undefined && cancel.at >= late[0]!.at, 'the scheduler cancelled it after the delivery');
    t.equal(fired('keep').length, 1, 'the other pending message of that instance was not cancelled');
  });

  await t.test('a token already pending is refused with EDDY_DUPLICATE_TIMER_TOKEN and the invocation discarded', async (t) => {
    const duplicates = deadLetters.filter((d) => d.code === 'EDDY_DUPLICATE_TIMER_TOKEN');
    t.same(duplicates.map((d) => d.target?.id).sort(), ['s-dup', 's-twice'], 'one dead letter per refusing invocation');
    t.match(duplicates[0]!.reason, /token "[DT]" is already pending/);
    t.equal(fired('dup-first').length, 1, 'the pending message still arrives');
    t.equal(fired('dup-second').length, 0, 'the refused one never does');
    t.notOk(events.some((e) => e.kind === 'scheduled' && e.tag === 'dup-second'), 'the refused invocation egressed nothing');
    t.equal(fired('twice').length, 0, 'the same token twice in one invocation: nothing scheduled');
    t.equal(fired('other-D').length, 1, 'tokens are per instance: another instance may use the same token');
  });

  await t.test('metrics count scheduled and fired messages, and nothing else failed', async (t) => {
    t.equal(summary.endedBy, 'end-of-input');
    t.equal(summary.totals.delayedScheduled, 7);
    t.equal(summary.totals.delayedFired, 6);
    t.equal(deadLetters.length, 2);
  });
});

void t.test('a delayed message pending at stop() is kept in the stateDir and arrives after a restart', async (t) => {
  const stateDir = tempDir(t, 'delayed');
  const run1 = run(t, delayedJob, { workers: 2, stateDir, inputs: { commands: [{ op: 'schedule', scheduler: 's-restart', tag: 'restart', delayMs: 1500 }] } });
  await waitFor(() => run1.output('events').length === 1, 'the message to be scheduled');
  const stopped = await run1.stop();
  t.equal(stopped.endedBy, 'stop');
  t.equal(stopped.totals.delayedScheduled, 1);
  t.equal(stopped.totals.delayedFired, 0, 'not fired before the stop');
  const [scheduled] = run1.output<DelayEvent>('events');
  t.equal(scheduled?.kind, 'scheduled');

  const run2 = run(t, delayedJob, { workers: 2, stateDir, inputs: { commands: [] } });
  const summary = await run2.done;
  t.equal(summary.endedBy, 'end-of-input', 'done waited for the pending message');
  const fired = run2.output<DelayEvent>('events').filter((e): e is Fired => e.kind === 'fired');
  t.equal(fired.length, 1, 'delivered once, by the second run');
  t.equal(fired[0]?.tag, 'restart');
  t.ok(fired[0]!.at >= scheduled!.at + 1500, `delivered ${fired[0]!.at - scheduled!.at} ms after scheduling`);
  t.same(fired[0]?.caller, { type: 'e2e-delayed/scheduler', id: 's-restart' });

  // Delivered timers are gone from the state: a third run has nothing to wait for.
  const run3 = run(t, delayedJob, { workers: 2, stateDir, inputs: { commands: [] } });
  const third = await run3.done;
  t.equal(third.totals.delayedFired, 0);
  t.equal(run3.output('events').length, 0);
});
