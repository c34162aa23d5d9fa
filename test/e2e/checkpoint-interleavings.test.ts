/**
 * The checkpoint interleavings that break naive designs, forced on purpose: a feedback barrier before
 * a dispatcher's own snapshot, a checkpoint aborted half-way, and replay order after a restore.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import relayJob, { expectedCounts, type RelayTrace } from '../fixtures/relay-job.js';
import echoJob, { type EchoRecord, INSTANCES as ECHO_INSTANCES } from '../fixtures/echo-job.js';
import { jobCheckpointDir, readMetadata } from '../../engine/checkpoint/metadata.js';
import { LogLines, run, tempDir, within } from '../fixtures/harness.js';
import { checkTokens as checkRelayTokens, finalCounts } from '../fixtures/relay-checks.js';

const TOKENS = 200;
const MAX_HOP = 60;
const tokens = Array.from({ length: TOKENS }, (_, token) => ({ token, maxHop: MAX_HOP }));

/** Every token's hops in `traces` are one unbroken run ending at MAX_HOP, each hop once. */
function checkTokens(t: { equal(a: unknown, b: unknown, m: string): void }, traces: readonly RelayTrace[], what: string): void {
  checkRelayTokens(t, traces, what, TOKENS, MAX_HOP);
}

void t.test('forced: a feedback barrier reaches a dispatcher before its own snapshot (one router barrier delayed); after restore no message is applied twice', async (t) => {
  const checkpointDir = tempDir(t, 'chk-delayed');
  // Router 2's channel to dispatcher 1 is slow: dispatcher 1 aligns (and snapshots) ~400 ms after
  // dispatchers 0 and 2, whose feedback barriers (and the messages they send after their own
  // snapshots) reach it before that.
  const first = run(t, relayJob, { workers: 3, checkpointDir, checkpointsRetained: 10, inputs: { tokens }, faultInjection: { delayRouterChannels: [{ from: 2, to: 1, ms: 400 }] } });
  for (let i = 0; i < 600; i++) {
    if ((await first.metrics()).totals.invocations > (TOKENS * MAX_HOP) / 5) break;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  const info = await first.checkpoint();
  const held = (await first.metrics()).perWorker.map((w) => w.feedbackHeldForCheckpoint);
  t.ok(held[1]! > 0, `dispatcher 1 held ${held[1]} envelopes that came behind a feedback barrier before its own snapshot`);
  await first.done;
  const all = first.output<RelayTrace>('trace');
  t.equal(all.length, TOKENS * (MAX_HOP + 1), 'the uninterrupted run relayed every hop once');
  const expected = expectedCounts(TOKENS, MAX_HOP);
  for (const workers of [3, 2]) {
    const restored = run(t, relayJob, { workers, checkpointDir, checkpointsRetained: 10, restoreFrom: info.id, inputs: { tokens } });
    await within(restored.done, 60_000, `the restore on ${workers} workers`);
    const traces = restored.output<RelayTrace>('trace');
    checkTokens(t, traces, `restored on ${workers} workers`);
    const counts = finalCounts(traces);
    const wrong = [...counts].filter(([instance, count]) => expected.get(instance) !== count).map(([instance, count]) => `${instance}: ${count} != ${expected.get(instance)}`);
    t.same(wrong, [], `restored on ${workers} workers: every counter ends where the uninterrupted run's did`);
  }
});

void t.test('a checkpoint aborted half-way, then two triggered at once (queued, not mixed): restores from them are exact', async (t) => {
  const checkpointDir = tempDir(t, 'chk-aborted');
  const logs = new LogLines();
  // Router 2's barriers reach dispatcher 1 ~300 ms late: with a 100 ms timeout, dispatchers 0 and 2
  // have cut (and written their part) when the checkpoint is aborted; dispatcher 1 has not.
  const first = run(t, relayJob, {
    workers: 3, checkpointDir, checkpointsRetained: 10, log: logs.log, inputs: { tokens },
    faultInjection: { delayRouterChannels: [{ from: 2, to: 1, ms: 300 }] },
  });
  for (let i = 0; i < 600; i++) {
    if ((await first.metrics()).totals.invocations > (TOKENS * MAX_HOP) / 6) break;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  await t.rejects(first.checkpoint({ timeoutMs: 100 }), { code: 'EDDY_CHECKPOINT_FAILED', message: /checkpoint 1 aborted: not complete after 100 ms/ }, 'the first checkpoint is aborted');
  t.notOk(existsSync(join(jobCheckpointDir(checkpointDir, relayJob.name), 'chk-1', '_metadata')), 'it has no _metadata');
  const [a, b] = await Promise.all([first.checkpoint(), first.checkpoint()]);
  t.same([a.id, b.id], [2, 3], 'two triggered at once run one after the other');
  t.same(first.checkpoints().slice(0, 2), [2, 3], 'the aborted one is never listed');
  t.throws(() => run(t, relayJob, { workers: 2, checkpointDir, restoreFrom: 1 }), { code: 'EDDY_CHECKPOINT_NOT_FOUND' }, 'nor restorable');
  await first.done;
  const expected = expectedCounts(TOKENS, MAX_HOP);
  for (const id of [2, 3]) {
    const restored = run(t, relayJob, { workers: 2, checkpointDir, checkpointsRetained: 10, restoreFrom: id, inputs: { tokens } });
    await within(restored.done, 60_000, `the restore of checkpoint ${id}`);
    const traces = restored.output<RelayTrace>('trace');
    checkTokens(t, traces, `restored from checkpoint ${id}`);
    const counts = finalCounts(traces);
    const wrong = [...counts].filter(([instance, count]) => expected.get(instance) !== count);
    t.same(wrong, [], `restored from checkpoint ${id}: every counter ends where the uninterrupted run's did`);
  }
});

void t.test('after a restore, the messages in flight at the checkpoint run before any input read after it', async (t) => {
  const checkpointDir = tempDir(t, 'chk-echo');
  const inputs = Array.from({ length: 3000 }, (_, n) => ({ n }));
  const first = run(t, echoJob, { workers: 2, checkpointDir, checkpointsRetained: 10, inputs: { inputs: { records: inputs, ratePerSec: 3000 } } });
  for (let i = 0; i < 600; i++) {
    if ((await first.metrics()).totals.invocations > 1200) break;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  const { id } = await first.checkpoint();
  await first.stop();
  const position = Number(readMetadata(jobCheckpointDir(checkpointDir, echoJob.name), id).positions.inputs!['0']);
  t.ok(position > 0 && position < inputs.length, `the checkpoint stands at input ${position} of ${inputs.length}`);

  const restored = run(t, echoJob, { workers: 3, checkpointDir, checkpointsRetained: 10, restoreFrom: id, inputs: { inputs: { records: inputs, ratePerSec: 3000 } } });
  await within(restored.done, 60_000, 'the restored run');
  const records = restored.output<EchoRecord>('records');
  const inputsSeen = new Set(records.filter((r) => r.kind === 'input').map((r) => r.n));
  // Echoes of inputs recorded before the cut were in flight at the checkpoint (or parked there).
  const replayed = records.filter((r) => r.kind === 'echo' && !inputsSeen.has(r.n));
  t.ok(replayed.length > 0, `${replayed.length} echoes were in flight at the checkpoint`);
  let late = 0;
  for (let instance = 0; instance < ECHO_INSTANCES; instance++) {
    const mine = records.filter((r) => r.instance === instance);
    const firstNew = mine.findIndex((r) => r.kind === 'input' && r.n >= position);
    const lastReplayed = mine.findLastIndex((r) => r.kind === 'echo' && !inputsSeen.has(r.n));
    if (firstNew >= 0 && lastReplayed > firstNew) late++;
  }
  t.equal(late, 0, 'at every instance, each replayed echo runs before the first input read after the restore');
  t.equal(records.filter((r) => r.kind === 'input' && r.n >= position).length, inputs.length - position, 'every input after the cut is read, once');
  t.equal(new Set(records.map((r) => `${r.kind}/${r.n}`)).size, records.length, 'nothing twice');
});

