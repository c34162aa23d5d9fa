import t from 'tap';
import fc from 'fast-check';
import { javaStringHashCode, keyGroupOf, keyGroupRangeOf, ownerOfKeyGroup } from '../../engine/key-groups.js';
import { ownerVectors, rangeVectors, stringKeyVectors } from './key-group-vectors.js';

void t.test('key groups match the vectors produced by Flink for String keys', async (t) => {
  for (const v of stringKeyVectors) {
    t.equal(javaStringHashCode(v.id), v.javaHashCode, `hashCode of ${JSON.stringify(v.id)}`);
    t.equal(keyGroupOf(v.id, 128), v.kg128, `key group (128) of ${JSON.stringify(v.id)}`);
    t.equal(keyGroupOf(v.id, 32768), v.kg32768, `key group (32768) of ${JSON.stringify(v.id)}`);
  }
});

void t.test('owners and ranges match Flink for every worker count in the vectors', async (t) => {
  for (const v of ownerVectors) t.equal(ownerOfKeyGroup(v.keyGroup, v.workers, v.maxParallelism), v.owner, `owner of kg ${v.keyGroup} with ${v.workers} workers`);
  for (const v of rangeVectors) t.same(keyGroupRangeOf(v.worker, v.workers, v.maxParallelism), { start: v.start, end: v.end }, `range of worker ${v.worker}/${v.workers}`);
});

void t.test('ranges are contiguous, cover every key group once, and agree with ownerOfKeyGroup', async (t) => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 4096 }), fc.integer({ min: 1, max: 256 }), (maxParallelism, w) => {
      const workers = Math.min(w, maxParallelism);
      let next = 0;
      for (let worker = 0; worker < workers; worker++) {
        const { start, end } = keyGroupRangeOf(worker, workers, maxParallelism);
        if (start !== next || end < start) return false;
        for (let kg = start; kg <= end; kg++) if (ownerOfKeyGroup(kg, workers, maxParallelism) !== worker) return false;
        next = end + 1;
      }
      return next === maxParallelism;
    }),
  );
  t.pass('property held');
});

void t.test('every id maps to a key group inside [0, maxParallelism)', async (t) => {
  fc.assert(fc.property(fc.string({ unit: 'grapheme' }), fc.integer({ min: 1, max: 32768 }), (id, maxP) => {
    const kg = keyGroupOf(id, maxP);
    return Number.isInteger(kg) && kg >= 0 && kg < maxP;
  }));
  t.pass('property held');
});
