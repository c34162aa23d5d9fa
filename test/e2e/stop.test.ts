import t from 'tap';
import slowSourceJob, { type SlowInput, type SlowRecord } from '../fixtures/slow-source-job.js';
import { run, sleep, tempDir, waitFor } from '../fixtures/harness.js';

type SlowSeen = SlowRecord & { count: number };

void t.test('stop() while a source is in the middle of a read loses no record: the next run reads it', async (t) => {
  const stateDir = tempDir(t, 'slow-source');
  const input: SlowInput = { splits: 4, recordsPerSplit: 150, readDelayMs: 15 };
  const seen: SlowSeen[] = [];
  for (let attempt = 0; attempt < 2; attempt++) {
    const handle = run(t, slowSourceJob, { workers: 2, stateDir, inputs: { slow: input } });
    await waitFor(() => handle.output('seen').length > 0, 'a first record');
    await sleep(40);
    await handle.stop();
    seen.push(...handle.output<SlowSeen>('seen'));
    t.ok(seen.length < input.splits * input.recordsPerSplit, `run ${attempt + 1} stopped with ${seen.length} records seen so far`);
  }
  const last = run(t, slowSourceJob, { workers: 2, stateDir, inputs: { slow: input } });
  await last.done;
  seen.push(...last.output<SlowSeen>('seen'));
  for (let split = 0; split < input.splits; split++) {
    const ns = seen.filter((s) => s.split === split).map((s) => s.n);
    t.same(ns, Array.from({ length: input.recordsPerSplit }, (_, i) => i), `split ${split}: every record once, in order, over 3 runs`);
    const counts = seen.filter((s) => s.split === split).map((s) => s.count);
    t.same(counts, Array.from({ length: input.recordsPerSplit }, (_, i) => i + 1), `split ${split}: its counter's state went 1..${input.recordsPerSplit}`);
  }
});

void t.test('stop() right after submit, before the workers are up, stops the sources too', async (t) => {
  const stateDir = tempDir(t, 'early-stop');
  const input: SlowInput = { splits: 4, recordsPerSplit: 100, readDelayMs: 10 };
  const total = input.splits * input.recordsPerSplit;
  const first = run(t, slowSourceJob, { workers: 2, stateDir, inputs: { slow: input } });
  const summary = await first.stop();
  t.equal(summary.endedBy, 'stop');
  const early = first.output<SlowSeen>('seen');
  t.ok(early.length < total / 4, `the stopped run read ${early.length} of ${total} records`);

  const second = run(t, slowSourceJob, { workers: 2, stateDir, inputs: { slow: input } });
  await second.done;
  const all = [...early, ...second.output<SlowSeen>('seen')];
  t.equal(all.length, total, 'the next run read the rest');
  t.equal(new Set(all.map((s) => `${s.split}/${s.n}`)).size, total, 'each record once');
});
