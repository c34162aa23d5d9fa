import t from 'tap';
import { run, within } from '../fixtures/harness.js';
import job, { type NoteRead } from '../fixtures/ttl-job.js';

void t.test('a value with ttlMs reads back until it expires, then as absent; one without a ttl stays', async (t) => {
  const notes = Array.from({ length: 20 }, (_, i) => ({ key: `k${i}`, text: `note ${i} – ünïcode` }));
  const handle = run(t, job, { workers: 2, inputs: { notes } });
  await within(handle.done, 30_000, 'the job');
  const reads = handle.output<NoteRead>('reads');
  for (const { key, text } of notes) {
    const of = (label: string): string | null | undefined => reads.find((r) => r.key === key && r.label === label)?.text;
    t.equal(of('at once'), text, `${key}: read back before it expires`);
    t.equal(of('after the ttl'), null, `${key}: absent once expired`);
    t.equal(of('after the ttl (no ttl)'), text, `${key}: the value without a ttl is still there`);
  }
});
