import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { readKeyGroup, writeKeyGroupFile } from '../../../engine/checkpoint/key-group-file.js';

const key = (kg: number, name: string): Uint8Array => Buffer.concat([Buffer.of(kg >>> 8, kg & 0xff), Buffer.from(name)]);

void t.test('a key-group file has a section for every key group, empty ones included, and reads back each one alone', async (t) => {
  const dir = t.testdir();
  const path = join(dir, 'worker-0.state');
  const groups = [3, 4, 5, 6, 7];
  const entries: Array<[Uint8Array, Uint8Array]> = [
    [key(3, 'a'), Buffer.from('1')],
    [key(3, 'b'), Buffer.alloc(0)],
    [key(5, 'c'), Buffer.from('x'.repeat(70_000))],
    // More than the 4 MiB written at a time, so sections are written out in several pieces.
    ...Array.from({ length: 60 }, (_, i): [Uint8Array, Uint8Array] => [key(6, `big${String(i).padStart(2, '0')}`), Buffer.alloc(100_000, i)]),
    [key(7, 'd'), Buffer.from('4')],
  ];
  // In batches of 4, as a LevelDB iterator hands them out: a section may span batches.
  const batches = Array.from({ length: Math.ceil(entries.length / 4) }, (_, i) => entries.slice(i * 4, i * 4 + 4));
  const { index, bytes } = await writeKeyGroupFile(path, groups, batches);
  t.same(index.map(([kg]) => kg), groups, 'one index entry per key group, in order');
  t.equal(bytes, readFileSync(path).length, 'the size is the file size');
  const text = (list: Array<[Buffer, Buffer]>): string[] => list.map(([k, v]) => `${k.subarray(2).toString()}=${v.length}`);
  t.same(text(await readKeyGroup(path, index, 3)), ['a=1', 'b=0']);
  t.same(text(await readKeyGroup(path, index, 4)), [], 'an empty key group');
  t.same(text(await readKeyGroup(path, index, 5)), ['c=70000'], 'a large value');
  t.same(text(await readKeyGroup(path, index, 6)), Array.from({ length: 60 }, (_, i) => `big${String(i).padStart(2, '0')}=100000`), 'sections written in pieces');
  t.same(text(await readKeyGroup(path, index, 7)), ['d=1'], 'the section after them');
  t.same(await readKeyGroup(path, index, 9), [], 'a key group the file does not own');
});

void t.test('entries out of key-group order or outside the written key groups are refused', async (t) => {
  const dir = t.testdir();
  await t.rejects(writeKeyGroupFile(join(dir, 'a'), [1, 2], [[[key(2, 'x'), Buffer.from('1')]], [[key(1, 'y'), Buffer.from('1')]]]), RangeError);
  await t.rejects(writeKeyGroupFile(join(dir, 'b'), [1, 2], [[[key(9, 'x'), Buffer.from('1')]]]), RangeError);
});

void t.test('a cut-short or foreign file is refused as corrupt, naming the file', async (t) => {
  const dir = t.testdir();
  const path = join(dir, 'worker-1.state');
  const { index } = await writeKeyGroupFile(path, [0, 1], [[[key(1, 'k'), Buffer.from('value')]]]);
  writeFileSync(path, readFileSync(path).subarray(0, -3));
  await t.rejects(readKeyGroup(path, index, 1), { code: 'EDDY_CHECKPOINT_CORRUPT', message: /worker-1\.state/ });
  writeFileSync(path, 'not a checkpoint at all');
  await t.rejects(readKeyGroup(path, index, 0), { code: 'EDDY_CHECKPOINT_CORRUPT', message: /not an Eddy checkpoint file/ });
});
