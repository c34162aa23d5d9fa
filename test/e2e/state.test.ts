import { existsSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import type { EddyError } from '../../index.js';
import counterJob, { type CounterEvent, type CounterUpdate } from '../fixtures/counter-job.js';
import hopsJob from '../fixtures/hops-job.js';
import { groupBy, run, tempDir, waitFor } from '../fixtures/harness.js';

const KEYS = ['k0', 'k1', 'k2', 'k3', 'k4', 'k5', 'k6', 'k7', 'k8', 'k9'];
const events = (n: number, offset = 0): CounterEvent[] => Array.from({ length: n }, (_, i) => ({ key: KEYS[(i * 7 + offset) % KEYS.length]! }));
const occurrences = (list: readonly CounterEvent[], key: string): number => list.filter((e) => e.key === key).length;

void t.test('keyed state in a stateDir survives stop(): a second run with more input continues the counts', async (t) => {
  const stateDir = tempDir(t, 'counter');
  const first = events(300);
  const run1 = run(t, counterJob, { workers: 2, stateDir, stateBackend: 'leveldb', inputs: { events: first } });
  await waitFor(() => run1.output('counts').length === first.length, 'the first run to count every event');
  const stopped = await run1.stop();
  t.equal(stopped.endedBy, 'stop');
  t.equal(stopped.stateDir, stateDir, 'the summary names the kept stateDir');
  t.ok(existsSync(join(stateDir, 'worker-0')) && existsSync(join(stateDir, 'worker-1')), 'one LevelDB per worker');

  const second = events(200, 3);
  const run2 = run(t, counterJob, { workers: 2, stateDir, inputs: { events: second } });
  const summary = await run2.done;
  t.equal(summary.endedBy, 'end-of-input');
  const updates = run2.output<CounterUpdate>('counts');
  t.equal(updates.length, second.length, 'the second run counts only its own input');
  for (const [key, list] of groupBy(updates, (u) => u.key)) {
    const before = occurrences(first, key);
    t.same(
      list.map((u) => u.count),
      Array.from({ length: occurrences(second, key) }, (_, i) => before + i + 1),
      `${key} continues from ${before}`,
    );
  }
});

void t.test('a stateDir refuses another worker count, maxParallelism or job, synchronously at submit', async (t) => {
  const stateDir = tempDir(t, 'mismatch');
  const run1 = run(t, counterJob, { workers: 2, stateDir, inputs: { events: events(20) } });
  await run1.done;

  const refused = (options: Parameters<typeof run>[2], what: string): void => {
    t.throws(() => run(t, counterJob, options), { code: 'EDDY_STATE_DIR_MISMATCH' }, what);
  };
  refused({ workers: 3, stateDir }, 'workers 3 on a workers-2 stateDir');
  refused({ workers: 1, stateDir }, 'workers 1 on a workers-2 stateDir');
  refused({ workers: 2, maxParallelism: 64, stateDir }, 'maxParallelism 64 on a 128 stateDir');
  try {
    run(t, hopsJob, { workers: 2, stateDir });
    t.fail('another job on the same stateDir was accepted');
  } catch (error) {
    t.equal((error as EddyError).code, 'EDDY_STATE_DIR_MISMATCH', 'another job on the same stateDir');
    t.match((error as Error).message, /e2e-counter/, 'the message names the job the folder belongs to');
  }

  // The refusals changed nothing: the right configuration still continues the counts.
  const run2 = run(t, counterJob, { workers: 2, stateDir, inputs: { events: [{ key: 'k0' }] } });
  await run2.done;
  t.same(run2.output('counts'), [{ key: 'k0', count: occurrences(events(20), 'k0') + 1 }]);
});
