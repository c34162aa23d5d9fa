import t from 'tap';
import cycleJob, { type Bounce, invocationsOf, leavesOf } from '../fixtures/cycle-job.js';
import foreverJob, { type HopTrace } from '../fixtures/forever-job.js';
import { groupBy, LogLines, run, sampleUntilDone, tempDir, waitFor, within } from '../fixtures/harness.js';

void t.test('a fan-out cycle between two types under tiny bounds finishes with exact counts (no deadlock)', async (t) => {
  const ROOTS = 2000;
  const TTL = 8;
  for (const workers of [2, 3]) {
    const roots: Bounce[] = Array.from({ length: ROOTS }, (_, root) => ({ root, ttl: TTL }));
    const handle = run(t, cycleJob, {
      workers,
      inputs: { roots },
      channelCapacity: 16,
      batchSize: 4,
      feedbackHighWaterMark: 100,
    });
    let throttled = false;
    // A deadlock would leave done pending forever: fail after a generous bound instead.
    const summary = await sampleUntilDone(handle, 5, (metrics) => {
      throttled ||= metrics.perWorker.some((w) => w.routerThrottled);
    }, 30_000, `done with ${workers} workers`);
    t.equal(summary.endedBy, 'end-of-input', `${workers} workers: done resolved`);
    t.equal(summary.totals.invocations, ROOTS * invocationsOf(TTL), `${workers} workers: ${ROOTS * invocationsOf(TTL)} invocations, as computed`);
    t.equal(summary.totals.messagesSent, ROOTS * (invocationsOf(TTL) - 1), `${workers} workers: every bounce sent once`);
    const leaves = handle.output<{ root: number }>('leaves');
    t.equal(leaves.length, ROOTS * leavesOf(TTL), `${workers} workers: ${ROOTS * leavesOf(TTL)} leaves`);
    const perRoot = groupBy(leaves, (leaf) => String(leaf.root));
    t.ok(perRoot.size === ROOTS && [...perRoot.values()].every((list) => list.length === leavesOf(TTL)), `${workers} workers: ${leavesOf(TTL)} leaves for every root`);
    t.ok(throttled, `${workers} workers: the routers were throttled by the feedback backlog`);
    t.ok(summary.perWorker.every((w) => w.invocations > 0), `${workers} workers: every worker took part`);
  }
});

const sum = (lines: readonly string[], pattern: RegExp): number => lines.reduce((total, line) => total + Number(pattern.exec(line)?.[1] ?? 0), 0);

void t.test('stop() on a never-ending cycle parks the waiting work after stopTimeoutMs; a restart continues it', async (t) => {
  const TOKENS = 16;
  const STOP_TIMEOUT = 500;
  const stateDir = tempDir(t, 'forever');
  const hops: HopTrace[] = [];

  const logs1 = new LogLines();
  const run1 = run(t, foreverJob, { workers: 2, stateDir, stopTimeoutMs: STOP_TIMEOUT, log: logs1.log, inputs: { tokens: Array.from({ length: TOKENS }, (_, token) => ({ token })) } });
  await waitFor(() => run1.output('hops').length >= 200, '200 hops');
  const stopAt = Date.now();
  const stopped = await within(run1.stop(), STOP_TIMEOUT + 15_000, 'stop()');
  const took = Date.now() - stopAt;
  t.equal(stopped.endedBy, 'stop');
  t.ok(took >= STOP_TIMEOUT - 30, `stop() waited for the work to finish for stopTimeoutMs (${took} ms)`);
  t.ok(took < STOP_TIMEOUT + 3000, `then parked it and resolved promptly (${took} ms)`);
  t.equal(logs1.matching(/parking the rest in state/).length, 1, 'the job manager says it parks the rest');
  t.equal(sum(logs1.matching(/parked \d+ envelopes in state/), /parked (\d+) envelopes/), TOKENS, 'the workers parked exactly one envelope per circulating token');
  const firstRun = [...run1.output<HopTrace>('hops')];
  hops.push(...firstRun);

  const logs2 = new LogLines();
  const run2 = run(t, foreverJob, { workers: 2, stateDir, stopTimeoutMs: STOP_TIMEOUT, log: logs2.log, inputs: { tokens: [] } });
  await waitFor(() => run2.output('hops').length >= 200, '200 hops after the restart');
  await within(run2.stop(), STOP_TIMEOUT + 15_000, 'the second stop()');
  t.equal(sum(logs2.matching(/replaying \d+ envelopes/), /replaying (\d+) envelopes/), TOKENS, 'the restart replayed every parked envelope');
  t.equal(sum(logs2.matching(/parked \d+ envelopes in state/), /parked (\d+) envelopes/), TOKENS, 'and the second stop parked them all again');
  hops.push(...run2.output<HopTrace>('hops'));

  for (const [token, list] of groupBy(hops, (h) => String(h.token))) {
    // Egress from different workers interleaves freely: compare the set of hops, sorted.
    const sequence = list.map((h) => h.hop).sort((a, b) => a - b);
    const unbroken = sequence.every((hop, i) => hop === i);
    t.ok(unbroken, `token ${token}: hops 0..${sequence.length - 1} once each across the restart`);
    const lastBefore = Math.max(...firstRun.filter((h) => String(h.token) === token).map((h) => h.hop));
    t.ok(sequence.length - 1 > lastBefore, `token ${token}: kept circulating after the restart (hop ${lastBefore} -> ${sequence.length - 1})`);
  }
  t.equal(new Set(hops.map((h) => h.token)).size, TOKENS, 'no token lost');
  for (const [instance, list] of groupBy(hops, (h) => `${h.type}:${h.id}`)) {
    const counts = list.map((h) => h.count).sort((a, b) => a - b);
    t.ok(counts.every((count, i) => count === i + 1), `${instance}: its hop counter in state went 1..${counts.length} across the restart`);
  }
});
