import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import type { WorkerCheckpoint } from '../../../engine/checkpoint/metadata.js';
import { WorkerCheckpoints } from '../../../engine/runtime/worker-checkpoints.js';
import type { FromWorker } from '../../../engine/runtime/worker-protocol.js';
import { MemoryBackend } from '../../../engine/state/memory-backend.js';
import { instancePrefix, userStateKey } from '../../../engine/state/state-keys.js';
import { StateStore } from '../../../engine/state/state-store.js';

void t.test('a checkpoint is full once the deltas since the last full file add up to more than it, so a restore never merges more than twice the state', async (t) => {
  const directory = mkdtempSync(join(tmpdir(), 'eddy-worker-checkpoints-'));
  t.teardown(() => rmSync(directory, { recursive: true, force: true }));
  const acks = new Map<number, WorkerCheckpoint>();
  const checkpoints = new WorkerCheckpoints({
    worker: 0,
    keyGroups: { start: 0, end: 3 },
    directory,
    post: (message: FromWorker) => {
      if (message.type === 'checkpoint-ack') acks.set(message.id, message.part);
    },
    log: () => {},
  });
  const store = new StateStore(new MemoryBackend(), 10_000, 10_000);
  const value = new Uint8Array(100).fill(7);
  const write = (from: number, count: number): void => {
    for (let i = from; i < from + count; i++) store.put(userStateKey(instancePrefix(i % 4, 'ns/fn', `id${i}`), 'v'), value);
  };
  const checkpoint = async (id: number): Promise<string> => {
    checkpoints.cut(id, store.snapshot(), Promise.resolve(new Map()));
    checkpoints.positions(id, []);
    for (let i = 0; i < 200 && !acks.has(id); i++) await new Promise((resolve) => setTimeout(resolve, 5));
    return acks.get(id)!.state.map((file) => (file.delta ? 'delta' : 'full')).join(',');
  };
  write(0, 100);
  t.equal(await checkpoint(1), 'full', 'the first is full');
  write(0, 10);
  t.equal(await checkpoint(2), 'full,delta', 'a small change: a delta over it');
  write(10, 10);
  t.equal(await checkpoint(3), 'full,delta,delta');
  write(0, 100);
  t.equal(await checkpoint(4), 'full,delta,delta,delta', 'deltas of 20 keys weigh less than the full file of 100: one more delta');
  write(0, 1);
  t.equal(await checkpoint(5), 'full', 'deltas of 120 keys outweigh the full file: full again');
  write(0, 1);
  t.equal(await checkpoint(6), 'full,delta', 'and deltas over the new one');
});
