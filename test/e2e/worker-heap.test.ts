import t from 'tap';
import { Worker } from 'node:worker_threads';
import { run, within } from '../fixtures/harness.js';
import brokenJob from '../fixtures/heap-broken-job.js';
import job, { type HeapReport } from '../fixtures/heap-job.js';

const MB = 1024 * 1024;

/** The semi-space size of a fresh plain worker thread, started after the job's. */
function plainWorkerSemiSpace(): Promise<number> {
  const code = `
    const newSpace = require('node:v8').getHeapSpaceStatistics().find((space) => space.space_name === 'new_space');
    require('node:worker_threads').parentPort.postMessage(newSpace.space_size);`;
  return new Promise((resolve, reject) => {
    const worker = new Worker(code, { eval: true });
    worker.once('message', (bytes: number) => void worker.terminate().then(() => resolve(bytes)));
    worker.once('error', reject);
  });
}

void t.test("a worker's new space starts at its full size; threads created later get V8's default", async (t) => {
  const before = await plainWorkerSemiSpace();
  t.ok(before < 16 * MB, `a plain worker starts with a small semi-space (${before / MB} MB)`);

  // 768 MB of young generation: 256 MB semi-spaces from the start. V8 would start them at 1 MB; loading
  // the modules (with the test runner's loaders) grows the new space to 64 MB by the first message.
  const handle = run(t, job, { workers: 2, workerYoungGenerationMb: 768, inputs: { inputs: Array.from({ length: 16 }, (_, n) => n) } });
  await within(handle.done, 30_000, 'the job');
  const reports = handle.output<HeapReport>('reports');
  t.equal(new Set(reports.map((r) => r.threadId)).size, 2, 'both workers answered');
  for (const report of reports) t.ok(report.semiSpaceBytes >= 256 * MB, `worker thread ${report.threadId}: ${report.semiSpaceBytes / MB} MB of new space at its first message`);

  const after = await plainWorkerSemiSpace();
  t.equal(after, before, 'a plain worker created after the job starts as before it');
});

void t.test("a job whose workers fail to start puts V8's default back too", async (t) => {
  const before = await plainWorkerSemiSpace();
  const handle = run(t, brokenJob, { workers: 2, workerYoungGenerationMb: 768, inputs: { inputs: [1] } });
  await t.rejects(within(handle.done, 30_000, 'the job'), /cannot load in a worker/);
  t.equal(await plainWorkerSemiSpace(), before, 'a plain worker created afterwards starts as before');
});
