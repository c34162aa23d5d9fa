/** The file sink's exactly-once publication: epoch markers, cut-short publications, other scopes. */
import { appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { fileEgress } from '../../index.js';
import type { Sink, SinkContext } from '../../index.js';

const context = (epochScope: string, exactlyOnce = true): SinkContext => ({ job: 'j', egress: 'out', exactlyOnce, epochScope, retryDeadlineMs: 60_000, log: () => {} });
const lines = (path: string): string[] => readFileSync(path, 'utf8').split('\n').filter((line) => line.length > 0);

async function open(path: string, scope: string, exactlyOnce = true): Promise<Sink<{ n: number }>> {
  return fileEgress<{ n: number }>('out', { path }).openSink(context(scope, exactlyOnce));
}

void t.test('each epoch is published once with its marker; a publication cut short is removed on reopen', async (t) => {
  const path = join(t.testdir(), 'out.ndjson');
  const sink = await open(path, 'scope-a');
  t.equal(await sink.publishedEpoch!(), 0, 'nothing published yet');
  await sink.publishEpoch!(1, [{ n: 1 }, { n: 2 }]);
  await sink.publishEpoch!(2, []);
  await sink.publishEpoch!(3, [{ n: 3 }]);
  await sink.close();
  t.same(JSON.parse(readFileSync(`${path}.epoch`, 'utf8')), { scope: 'scope-a', epoch: 3, length: readFileSync(path).length }, 'the marker names the epoch and the length');
  appendFileSync(path, '{"n":4}\n{"n":'); // epoch 4 appended, then the process died before its marker
  const again = await open(path, 'scope-a');
  t.equal(await again.publishedEpoch!(), 3, 'the marker says epoch 3');
  t.same(lines(path), ['{"n":1}', '{"n":2}', '{"n":3}'], 'the cut-short epoch is gone');
  await again.publishEpoch!(4, [{ n: 4 }]);
  await again.close();
  t.same(lines(path), ['{"n":1}', '{"n":2}', '{"n":3}', '{"n":4}'], 'and published once');
});

void t.test('another epoch scope (a fresh checkpoint folder) starts at 0 but still cuts off a torn tail', async (t) => {
  const path = join(t.testdir(), 'out.ndjson');
  const first = await open(path, 'scope-a');
  await first.publishEpoch!(7, [{ n: 1 }]);
  await first.close();
  appendFileSync(path, '{"n":');
  const other = await open(path, 'scope-b');
  t.equal(await other.publishedEpoch!(), 0, 'epochs of scope-a mean nothing to scope-b');
  t.same(lines(path), ['{"n":1}'], 'the torn line is gone');
  await other.publishEpoch!(1, [{ n: 2 }]);
  await other.close();
  t.same(lines(path), ['{"n":1}', '{"n":2}']);
});

void t.test('output written without checkpoints into a file with a marker is kept by a later exactly-once run', async (t) => {
  const path = join(t.testdir(), 'out.ndjson');
  const exactly = await open(path, 'scope-a');
  await exactly.publishEpoch!(1, [{ n: 1 }]);
  await exactly.close();
  const plain = await open(path, '', false);
  await plain.write([{ n: 2 }, { n: 3 }]);
  await plain.close();
  const again = await open(path, 'scope-a');
  t.equal(await again.publishedEpoch!(), 1);
  await again.close();
  t.same(lines(path), ['{"n":1}', '{"n":2}', '{"n":3}'], 'nothing cut off');
});

void t.test('a marker that is not JSON is refused with what to do', async (t) => {
  const path = join(t.testdir(), 'out.ndjson');
  writeFileSync(`${path}.epoch`, 'garbage');
  await t.rejects(open(path, 'scope-a'), { code: 'EDDY_SINK_FAILED', message: /out\.ndjson\.epoch is not valid JSON: delete it/ });
});
