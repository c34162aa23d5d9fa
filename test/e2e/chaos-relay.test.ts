/**
 * Chaos: worker threads killed at seeded random moments, many times in one run, while checkpoints
 * are taken every 50 ms. The job restores its last checkpoint each time; afterwards its committed
 * output and state must be exactly those of a run without failures. EDDY_TEST_SEED replays a run.
 */
import t from 'tap';
import { seededRandom } from '../../examples/bank/workload.js';
import relayJob, { expectedCounts, type RelayTrace } from '../fixtures/relay-job.js';
import { killRepeatedly, run, tempDir, within } from '../fixtures/harness.js';
import { finalCounts } from '../fixtures/relay-checks.js';

const seed = Number(process.env.EDDY_TEST_SEED ?? 20261128);

void t.test('chaos, relay: thousands of messages circulating, three worker kills; every hop happens exactly once', async (t) => {
  const random = seededRandom(seed ^ 0x7e1a7);
  const tokens = 200;
  const maxHop = 800;
  const handle = run(t, relayJob, {
    workers: 2,
    checkpointDir: tempDir(t, 'chk-chaos-relay'),
    checkpointIntervalMs: 50,
    maxRestarts: 10,
    inputs: { tokens: Array.from({ length: tokens }, (_, token) => ({ token, maxHop })) },
  });
  await killRepeatedly(handle, 2, 3, random);
  const summary = await within(handle.done, 180_000, 'the chaos run');
  t.equal(summary.restarts, 3, 'three restores');
  const traces = handle.output<RelayTrace>('trace');
  t.equal(new Set(traces.map((trace) => `${trace.token}/${trace.hop}`)).size, tokens * (maxHop + 1), 'every hop published');
  t.equal(traces.length, tokens * (maxHop + 1), 'and none twice');
  t.same(finalCounts(traces), expectedCounts(tokens, maxHop), 'every counter is right');
});
