import { appendFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import fileGreeterJob, { type FileGreeting, type NameLine } from '../fixtures/file-greeter-job.js';
import { groupBy, run, tempDir, waitFor } from '../fixtures/harness.js';

const nameLines = (from: number, count: number, extra: Partial<NameLine> = {}): NameLine[] =>
  Array.from({ length: count }, (_, i) => ({ name: ['ann', 'bob', 'cyd', 'dee', 'eve'][(from + i) % 5]!, line: from + i, ...extra }));
const ndjson = (lines: readonly NameLine[]): string => lines.map((line) => `${JSON.stringify(line)}\n`).join('');

void t.test('a file ingress resumes after the last line read: appended lines are read once, old ones never again', async (t) => {
  const dir = tempDir(t, 'file');
  const stateDir = join(dir, 'state');
  const file = join(dir, 'names.ndjson');
  writeFileSync(file, ndjson(nameLines(0, 30)));

  const run1 = run(t, fileGreeterJob, { workers: 2, stateDir, inputs: { names: file } });
  const s1 = await run1.done;
  t.equal(s1.totals.recordsRead, 30);
  t.same(run1.output<FileGreeting>('greetings').map((g) => g.line).sort((a, b) => a - b), Array.from({ length: 30 }, (_, i) => i));

  appendFileSync(file, ndjson(nameLines(30, 20)));
  const run2 = run(t, fileGreeterJob, { workers: 2, stateDir, inputs: { names: file } });
  const s2 = await run2.done;
  t.equal(s2.totals.recordsRead, 20, 'the second run reads only the appended lines');
  const greetings = run2.output<FileGreeting>('greetings');
  t.same(greetings.map((g) => g.line).sort((a, b) => a - b), Array.from({ length: 20 }, (_, i) => 30 + i));
  for (const [name, list] of groupBy(greetings, (g) => g.name)) {
    // 6 lines per name in the first 30, then 4 more each.
    t.same(list.map((g) => g.seen), [7, 8, 9, 10], `${name} keeps counting`);
  }

  const run3 = run(t, fileGreeterJob, { workers: 2, stateDir, inputs: { names: file } });
  const s3 = await run3.done;
  t.equal(s3.totals.recordsRead, 0, 'nothing new: nothing read');
  t.equal(run3.output('greetings').length, 0);
});

void t.test('a file ingress stopped in the middle of the file continues exactly where it stopped', async (t) => {
  const dir = tempDir(t, 'file-stop');
  const stateDir = join(dir, 'state');
  const file = join(dir, 'names.ndjson');
  // ~1 KB lines, so that nearly every read of 64 lines waits for the disk, and slow invocations, so
  // that stop() lands while the file is being read.
  const LINES = 1500;
  writeFileSync(file, ndjson(nameLines(0, LINES, { delayMs: 1, padding: 'x'.repeat(1000) })));

  const seen: FileGreeting[] = [];
  const run1 = run(t, fileGreeterJob, { workers: 2, stateDir, inputs: { names: file }, feedbackHighWaterMark: 64, channelCapacity: 64 });
  await waitFor(() => run1.output('greetings').length >= 100, 'the first greetings');
  const s1 = await run1.stop();
  t.equal(s1.endedBy, 'stop');
  seen.push(...run1.output<FileGreeting>('greetings'));
  t.ok(seen.length < LINES, `stopped after ${seen.length} of ${LINES} lines`);

  const run2 = run(t, fileGreeterJob, { workers: 2, stateDir, inputs: { names: file } });
  await run2.done;
  seen.push(...run2.output<FileGreeting>('greetings'));
  const lines = seen.map((g) => g.line).sort((a, b) => a - b);
  t.equal(lines.length, LINES, 'every line greeted once over both runs');
  t.same(lines, Array.from({ length: LINES }, (_, i) => i), 'no line lost, none twice');
  for (const [name, list] of groupBy(seen, (g) => g.name)) {
    t.same(list.map((g) => g.seen), Array.from({ length: list.length }, (_, i) => i + 1), `${name}: seen counts 1..${list.length} across the stop`);
  }
});
