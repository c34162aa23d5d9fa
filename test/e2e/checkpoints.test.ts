import { existsSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import relayJob, { expectedCounts, type RelayTrace } from '../fixtures/relay-job.js';
import counterJob, { type CounterUpdate } from '../fixtures/counter-job.js';
import toggleJob, { type Toggled } from '../fixtures/toggle-job.js';
import { jobCheckpointDir, readMetadata } from '../../engine/checkpoint/metadata.js';
import { groupBy, LogLines, run, tempDir, within } from '../fixtures/harness.js';
import { checkTokens as checkRelayTokens, finalCounts } from '../fixtures/relay-checks.js';

const TOKENS = 200;
const MAX_HOP = 60;
const tokens = Array.from({ length: TOKENS }, (_, token) => ({ token, maxHop: MAX_HOP }));

/** Every token's hops in `traces` are one unbroken run ending at MAX_HOP, each hop once. */
function checkTokens(t: { equal(a: unknown, b: unknown, m: string): void }, traces: readonly RelayTrace[], what: string): void {
  checkRelayTokens(t, traces, what, TOKENS, MAX_HOP);
}

void t.test('a checkpoint taken on 4 workers while thousands of messages circulate restores exactly on 1, 2 and 3 workers', async (t) => {
  const checkpointDir = tempDir(t, 'chk-relay');
  const first = run(t, relayJob, { workers: 4, checkpointDir, inputs: { tokens } });
  // Output is held until a checkpoint completes: watch the workers' counters to cut mid-way.
  for (let i = 0; i < 400; i++) {
    const metrics = await first.metrics();
    if (metrics.totals.invocations > (TOKENS * MAX_HOP) / 4) break;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  const info = await first.checkpoint();
  t.ok(info.bytes > 0 && info.durationMs >= 0, `checkpoint ${info.id}: ${info.bytes} bytes in ${info.durationMs} ms`);
  const whole = await first.done;
  const all = first.output<RelayTrace>('trace');
  t.equal(all.length, TOKENS * (MAX_HOP + 1), 'the uninterrupted run relayed every hop once');
  t.ok(whole.checkpoints.length >= 1);
  const expected = expectedCounts(TOKENS, MAX_HOP);
  t.same(finalCounts(all), expected, 'and every counter is right');

  for (const workers of [1, 2, 3]) {
    // Each restored run ends with a final checkpoint of its own: keep checkpoint info.id around.
    const restored = run(t, relayJob, { workers, checkpointDir, checkpointsRetained: 10, restoreFrom: info.id, inputs: { tokens } });
    await within(restored.done, 60_000, `the restore on ${workers} workers`);
    const traces = restored.output<RelayTrace>('trace');
    t.ok(traces.length < all.length, `restored on ${workers} workers: ${traces.length} hops after the cut (of ${all.length})`);
    checkTokens(t, traces, `restored on ${workers} workers`);
    const counts = finalCounts(traces);
    const wrong = [...counts].filter(([instance, count]) => expected.get(instance) !== count).map(([instance, count]) => `${instance}: ${count} != ${expected.get(instance)}`);
    t.same(wrong, [], `restored on ${workers} workers: every counter ends where the uninterrupted run's did (no message applied twice or lost)`);
  }
});

void t.test('a worker killed in the middle of the run: the job restores the last checkpoint and the output is exactly once', async (t) => {
  const checkpointDir = tempDir(t, 'chk-crash');
  const folder = tempDir(t, 'crash-marker');
  const marker = join(folder, 'crashed');
  const arm = join(folder, 'armed');
  process.env.EDDY_TEST_CRASH_MARKER = marker;
  process.env.EDDY_TEST_CRASH_ARM = arm;
  t.teardown(() => {
    delete process.env.EDDY_TEST_CRASH_MARKER;
    delete process.env.EDDY_TEST_CRASH_ARM;
  });
  const maxHop = 400;
  const logs = new LogLines();
  const handle = run(t, relayJob, { workers: 2, checkpointDir, checkpointIntervalMs: 40, log: logs.log, inputs: { tokens: tokens.map((token) => ({ ...token, maxHop })) } });
  // Crash only once a checkpoint exists to restore (without one, the job fails instead).
  await handle.checkpoint();
  writeFileSync(arm, 'crash now');
  const summary = await within(handle.done, 90_000, 'the job with a crash');
  t.ok(existsSync(marker), 'a worker really died');
  t.equal(summary.restarts, 1, 'the job restored once');
  t.ok(logs.matching(/restoring checkpoint \d+/).length === 1, 'and said so');
  const traces = handle.output<RelayTrace>('trace');
  const keys = new Set(traces.map((trace) => `${trace.token}/${trace.hop}`));
  t.equal(traces.length, TOKENS * (maxHop + 1), 'every hop published exactly once');
  t.equal(keys.size, TOKENS * (maxHop + 1), 'no hop twice');
  t.same(finalCounts(traces), expectedCounts(TOKENS, maxHop), 'every counter is right');
});

void t.test('two failures with no checkpoint between them: the output of the failed attempt is never published', async (t) => {
  const checkpointDir = tempDir(t, 'chk-twice');
  const logs = new LogLines();
  const handle = run(t, relayJob, { workers: 2, checkpointDir, maxRestarts: 5, log: logs.log, inputs: { tokens } });
  for (let i = 0; i < 400; i++) {
    if ((await handle.metrics()).totals.invocations > (TOKENS * MAX_HOP) / 5) break;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  await handle.checkpoint();
  await handle.killWorker(0);
  // The restored attempt produces output (held for a checkpoint that never comes), then fails too.
  for (let i = 0; i < 400; i++) {
    if (handle.status().state === 'running' && (await handle.metrics()).totals.egressRecords > 500) break;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  await handle.killWorker(1);
  const summary = await within(handle.done, 60_000, 'the run');
  t.equal(summary.restarts, 2, 'two restores of the same checkpoint');
  const traces = handle.output<RelayTrace>('trace');
  t.equal(traces.length, TOKENS * (MAX_HOP + 1), 'every hop published once');
  t.same(finalCounts(traces), expectedCounts(TOKENS, MAX_HOP), 'and every counter is right');
});

void t.test('killWorker really ends a worker thread: without a checkpoint to restore, the job fails', async (t) => {
  const logs = new LogLines();
  const handle = run(t, relayJob, { workers: 2, log: logs.log, inputs: { tokens: tokens.map((token) => ({ ...token, maxHop: 100_000 })) } });
  await handle.killWorker(1);
  await t.rejects(within(handle.done, 30_000, 'the job after a kill'), { code: 'EDDY_WORKER_FAILED' });
  t.ok(logs.matching(/worker 1 failed/).length >= 1, 'the log names the worker');
  await t.rejects(handle.killWorker(7), 'no such worker once the job has failed');
});

void t.test('a restore continues state and source positions: nothing counted twice, nothing skipped', async (t) => {
  const checkpointDir = tempDir(t, 'chk-counter');
  const stateDir = tempDir(t, 'state-counter');
  const events = Array.from({ length: 6000 }, (_, i) => ({ key: `k${i % 50}` }));
  const first = run(t, counterJob, { workers: 2, stateDir, checkpointDir, inputs: { events: { records: events, ratePerSec: 6000 } } });
  for (let i = 0; i < 400; i++) {
    if ((await first.metrics()).totals.invocations > 1000) break;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  const { id } = await first.checkpoint();
  const stopped = await first.stop();
  t.ok(stopped.checkpoints.at(-1)!.id > id, 'stop() ends with a final checkpoint');
  // From the checkpoint taken mid-run (by id), not the final one: the records after it are read again.
  const second = run(t, counterJob, { workers: 3, stateDir, checkpointDir, restoreFrom: id, inputs: { events: { records: events } } });
  await second.done;
  const updates = second.output<CounterUpdate>('counts');
  t.ok(updates.length > 0 && updates.length < events.length, `the restored run read ${updates.length} records after the cut`);
  let broken = 0;
  for (const [, list] of groupBy(updates, (u) => u.key)) {
    const counts = list.map((u) => u.count);
    if (counts.at(-1) !== 120 || counts.some((c, i) => i > 0 && c !== counts[i - 1]! + 1)) broken++;
  }
  t.equal(broken, 0, 'every key counts on from its checkpointed value to 120, one by one');
});

void t.test('restore latest after a clean stop continues exactly where the stop left off', async (t) => {
  const checkpointDir = tempDir(t, 'chk-stop');
  const events = Array.from({ length: 4000 }, (_, i) => ({ key: `k${i % 40}` }));
  const first = run(t, counterJob, { workers: 2, checkpointDir, inputs: { events: { records: events, ratePerSec: 4000 } } });
  for (let i = 0; i < 400; i++) {
    if ((await first.metrics()).totals.invocations > 800) break;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  await first.stop();
  const before = first.output<CounterUpdate>('counts');
  t.ok(before.length > 0 && before.length < events.length, `the first run stopped after ${before.length} records`);
  const second = run(t, counterJob, { workers: 3, checkpointDir, restoreFrom: 'latest', inputs: { events: { records: events } } });
  await second.done;
  const after = second.output<CounterUpdate>('counts');
  t.equal(before.length + after.length, events.length, 'every record counted once over both runs');
  let broken = 0;
  for (const [, list] of groupBy([...before, ...after], (u) => u.key)) {
    if (list.some((u, i) => u.count !== i + 1)) broken++;
  }
  t.equal(broken, 0, 'every key counts 1, 2, ... 100 over both runs: nothing twice, nothing skipped');
});

void t.test('incremental checkpoints: a restore from a full file and deltas (puts and deletes) continues exactly', async (t) => {
  const checkpointDir = tempDir(t, 'chk-toggle');
  // Many keys, each event changing one: deltas stay small beside the full file (else the next is full).
  const events = Array.from({ length: 20_000 }, (_, n) => ({ key: `k${n % 3000}`, n }));
  const first = run(t, toggleJob, { workers: 2, checkpointDir, checkpointIntervalMs: 30, checkpointsRetained: 50, inputs: { events: { records: events, ratePerSec: 10_000 } } });
  await first.done;
  // A checkpoint taken mid-way whose state is a chain with deltas.
  const chained = first.checkpoints().filter((id) => {
    const parts = readMetadata(jobCheckpointDir(checkpointDir, toggleJob.name), id).parts;
    return parts.every((part) => part.state.length >= 3 && part.state.slice(1).every((file) => file.delta) && !part.state[0]!.delta);
  });
  t.ok(chained.length > 0, `checkpoints ${chained.join(', ')} are a full file and deltas on every worker`);
  const id = chained[Math.floor(chained.length / 2)]!;
  const restored = run(t, toggleJob, { workers: 3, checkpointDir, checkpointsRetained: 50, restoreFrom: id, inputs: { events: { records: events } } });
  await within(restored.done, 60_000, 'the restored run');
  const after = restored.output<Toggled>('toggled');
  t.ok(after.length > 0 && after.length < events.length, `restored from checkpoint ${id}: ${after.length} events after the cut`);
  // The model: every key toggles from the start; what each event finds follows from the ones before it.
  const model = new Map<string, number | null>();
  const expected = new Map<number, number | null>();
  for (const event of events) {
    const had = model.get(event.key) ?? null;
    expected.set(event.n, had);
    model.set(event.key, had === null ? event.n : null);
  }
  t.same(after.filter((toggled) => expected.get(toggled.n) !== toggled.had).slice(0, 3), [], 'each event after the cut finds what the uninterrupted run had (deletes included)');
  // Per key, the restored run handles exactly the events after the cut: a suffix of the key's events.
  const byKey = groupBy(events, (event) => event.key);
  let broken = 0;
  for (const [key, handled] of groupBy(after, (toggled) => toggled.key)) {
    const all = byKey.get(key)!.map((event) => event.n);
    const suffix = all.slice(all.length - handled.length);
    if (handled.some((toggled, i) => toggled.n !== suffix[i])) broken++;
  }
  t.equal(broken, 0, 'every key goes on from its cut to its last event, each event once, in order');
});

void t.test('a corrupt or missing checkpoint is refused with a clear error', async (t) => {
  const checkpointDir = tempDir(t, 'chk-corrupt');
  const events = Array.from({ length: 400 }, (_, i) => ({ key: `k${i % 4}` }));
  const first = run(t, counterJob, { workers: 2, checkpointDir, inputs: { events: { records: events, ratePerSec: 200 } } });
  const { id } = await first.checkpoint();
  await first.stop();
  t.throws(() => run(t, counterJob, { workers: 2, checkpointDir, restoreFrom: id + 10 }), { code: 'EDDY_CHECKPOINT_NOT_FOUND' }, 'an unknown id');
  const folder = join(jobCheckpointDir(checkpointDir, counterJob.name), `chk-${id}`);
  writeFileSync(join(folder, '_metadata'), '{"version": 1, "id": ');
  t.throws(() => run(t, counterJob, { workers: 2, checkpointDir, restoreFrom: id }), { code: 'EDDY_CHECKPOINT_CORRUPT' }, 'a metadata file that is not JSON');
  t.ok(readdirSync(folder).includes('worker-0.state'));
  t.throws(() => run(t, counterJob, { workers: 2, restoreFrom: 'latest' }), { code: 'EDDY_INVALID_OPTION' }, 'restoreFrom without checkpointDir');
});

void t.test('a checkpoint directory written before job folders: its job restores from it in place, with its lineage; another job gets a folder of its own', async (t) => {
  const checkpointDir = tempDir(t, 'chk-legacy');
  const events = Array.from({ length: 400 }, (_, i) => ({ key: `k${i % 4}` }));
  await run(t, counterJob, { workers: 2, checkpointDir, inputs: { events } }).done;
  // The layout of earlier versions: chk-<id> folders and _lineage directly in the directory, no _job.
  const folder = jobCheckpointDir(checkpointDir, counterJob.name);
  for (const name of readdirSync(folder)) if (name !== '_job') renameSync(join(folder, name), join(checkpointDir, name));
  rmSync(folder, { recursive: true });
  const lineage = readFileSync(join(checkpointDir, '_lineage'), 'utf8');
  const logs = new LogLines();
  const again = run(t, counterJob, { workers: 3, checkpointDir, restoreFrom: 'latest', log: logs.log, inputs: { events } });
  await within(again.done, 30_000, 'the restore from the earlier layout');
  t.equal(again.status().checkpointDir, checkpointDir, 'the directory itself is still the job\'s folder');
  t.equal(logs.matching(/restoring checkpoint \d+ of .* on 3 workers \(it was taken on 2\)/).length, 1, 'its latest checkpoint is restored');
  t.equal(again.output('counts').length, 0, 'which had read all the input: nothing is counted again');
  t.equal(readFileSync(join(checkpointDir, '_lineage'), 'utf8'), lineage, 'the lineage (the sinks\' marker scope) is the same');
  const other = run(t, toggleJob, { workers: 1, checkpointDir, inputs: { events: [{ key: 'a', n: 1 }] } });
  await other.done;
  t.not(other.status().checkpointDir, checkpointDir, 'another job keeps its checkpoints in a folder of its own');
  t.ok(again.checkpoints().length >= 1 && other.checkpoints().length >= 1);
});
