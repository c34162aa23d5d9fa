import t from 'tap';
import { generatorIngress, memoryIngress } from '../../connectors/memory.js';
import type { Ingress, SplitReader } from '../../engine/job.js';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function firstSplit<R>(ingress: Ingress<R>, input: unknown): Promise<SplitReader<R>> {
  return ingress.openSplit((await ingress.planSplits(input))[0], undefined);
}

void t.test('a paced split never reads ahead of its rate, and after a stall at most 100 ms of records at once', async (t) => {
  // One split at 1000 records/s: 100 ms of records is 100.
  const ingress = generatorIngress<number, null>('numbers', { splits: 1, generate: (_p, index) => index });
  const reader = await firstSplit(ingress, { params: null, ratePerSec: 1000 });
  const started = Date.now();
  t.same((await reader.read(10_000)).records, [], 'nothing before the clock runs');
  await sleep(600);
  const afterStall = await reader.read(10_000);
  t.ok(afterStall.records.length <= 100, `after a 600 ms stall one read takes at most 100 records (took ${afterStall.records.length})`);
  t.ok(afterStall.records.length > 0, 'but it does take the owed records up to that bound');
  let read = afterStall.records.length;
  while (Date.now() - started < 900) {
    const result = await reader.read(10_000);
    read += result.records.length;
    if (result.records.length === 0) t.ok(result.retryAfterMs !== undefined && result.retryAfterMs >= 1, 'an empty read says when to come back');
    await sleep(5);
  }
  const elapsed = Date.now() - started;
  t.ok(read <= elapsed + 100, `never ahead of the rate plus one burst: ${read} records in ${elapsed} ms`);
});

void t.test('a paced memory split is read in order and completely', async (t) => {
  const records = Array.from({ length: 50 }, (_, i) => i);
  const reader = await firstSplit(memoryIngress<number>('numbers', { splits: 1 }), { records, ratePerSec: 5000 });
  const seen: number[] = [];
  for (let tries = 0; tries < 1000; tries++) {
    const result = await reader.read(7);
    seen.push(...result.records);
    if (result.done) break;
    await sleep(2);
  }
  t.same(seen, records);
});
