import t from 'tap';
import { defineFunction, EddyError, listState, type ListStateHandle, mapState, type MapStateHandle } from '../../../index.js';
import { LevelDbBackend } from '../../../engine/state/leveldb-backend.js';
import { MemoryBackend } from '../../../engine/state/memory-backend.js';
import { bindState, type StateAccess } from '../../../engine/state/state-kinds.js';
import { instancePrefix, keyGroupOfKey, keyGroupPrefix, Space, userStateKey } from '../../../engine/state/state-keys.js';
import type { AnyStateSpec } from '../../../engine/state/state-types.js';
import { StateStore } from '../../../engine/state/state-store.js';
import { tempDir } from '../../fixtures/harness.js';

const KG = 77;

/** One invocation of instance `id` over a real store: staged writes, applied by `commit` as the dispatcher does. */
class Invocation implements StateAccess {
  writes: Map<string, Uint8Array | null> | undefined;
  readonly instanceName: string;
  private readonly prefix: string;

  constructor(
    private readonly store: StateStore,
    id = 'i1',
  ) {
    this.instanceName = `test/fn:${id}`;
    this.prefix = instancePrefix(KG, 'test/fn', id);
  }

  stateKey(name: string): string {
    return userStateKey(this.prefix, name);
  }
  readStaged(key: string): Uint8Array | null | undefined {
    const staged = this.writes?.get(key);
    return staged !== undefined ? staged : this.store.get(key);
  }
  stageWrite(key: string, value: Uint8Array | null): void {
    (this.writes ??= new Map()).set(key, value);
  }
  scanState(prefix: string): AsyncIterable<[string, Uint8Array]> {
    return this.store.scanLive(prefix);
  }
  commit(): void {
    for (const [key, value] of this.writes ?? []) this.store.put(key, value);
    this.writes = undefined;
  }
}

function mapOf<K, V>(inv: Invocation, spec: AnyStateSpec, name = 'm'): MapStateHandle<K, V> {
  return bindState(inv, name, spec) as MapStateHandle<K, V>;
}
function listOf<T>(inv: Invocation, spec: AnyStateSpec, name = 'l'): ListStateHandle<T> {
  return bindState(inv, name, spec) as ListStateHandle<T>;
}

const memoryStore = (): StateStore => new StateStore(new MemoryBackend(), 1000);

void t.test('a map: get, set, has, delete, and entries, keys and size in encoded-key order', async (t) => {
  const store = memoryStore();
  const inv = new Invocation(store);
  const m = mapOf<string, number>(inv, mapState<string, number>());
  t.equal(m.get('a'), undefined);
  t.equal(m.has('a'), false);
  m.set('b', 2);
  m.set('a', 1);
  m.set('c', 3);
  t.equal(m.get('a'), 1, 'its own staged write');
  t.same(await m.entries(), [['a', 1], ['b', 2], ['c', 3]], 'staged entries, in order');
  inv.commit();
  const next = new Invocation(store);
  const m2 = mapOf<string, number>(next, mapState<string, number>());
  m2.delete('b');
  m2.set('d', 4);
  m2.set('a', 10);
  t.equal(m2.has('b'), false);
  t.same(await m2.entries(), [['a', 10], ['c', 3], ['d', 4]], 'committed entries overlaid with staged puts and deletes');
  t.same(await m2.keys(), ['a', 'c', 'd']);
  t.equal(await m2.size(), 3);
  next.commit();
  await store.flushAll();
  const third = new Invocation(store);
  const m3 = mapOf<string, number>(third, mapState<string, number>());
  t.same(await m3.entries(), [['a', 10], ['c', 3], ['d', 4]], 'the same once flushed to the backend');
  await m3.clear();
  t.same(await m3.entries(), [], 'clear deletes every entry');
  t.equal(m3.get('a'), undefined);
  third.commit();
  t.equal(await mapOf(new Invocation(store), mapState()).size(), 0, 'and that is committed');
});

void t.test('keys of any type go through the key codec; a map holds other instances and states apart', async (t) => {
  const store = memoryStore();
  const a = new Invocation(store, 'a');
  const pairs = mapOf<[number, string], string>(a, mapState<[number, string], string>());
  pairs.set([1, 'x'], 'one-x');
  pairs.set([2, 'y'], 'two-y');
  const other = mapOf<string, number>(a, mapState<string, number>(), 'm2');
  other.set('k', 1);
  a.commit();
  const b = new Invocation(store, 'b');
  mapOf<string, number>(b, mapState<string, number>()).set('k', 2);
  b.commit();
  t.same(await mapOf(new Invocation(store, 'a'), mapState<[number, string], string>()).entries(), [[[1, 'x'], 'one-x'], [[2, 'y'], 'two-y']]);
  t.same(await mapOf(new Invocation(store, 'a'), mapState(), 'm2').entries(), [['k', 1]], 'state m2 is not part of m');
  t.same(await mapOf(new Invocation(store, 'b'), mapState()).entries(), [['k', 2]], 'instance b has its own');
});

void t.test('a change to a map of 10,000 entries writes one key, under the instance key group', async (t) => {
  const store = memoryStore();
  const fill = new Invocation(store);
  const m = mapOf<number, string>(fill, mapState<number, string>());
  for (let i = 0; i < 10_000; i++) m.set(i, `v${i}`);
  fill.commit();
  await store.flushAll();
  const inv = new Invocation(store);
  const m2 = mapOf<number, string>(inv, mapState<number, string>());
  m2.set(5000, 'changed');
  t.equal(inv.writes?.size, 1, 'one staged write');
  const [key] = [...inv.writes!.keys()];
  t.equal(keyGroupOfKey(key!), KG, 'the entry key starts with the key group');
  m2.delete(17);
  t.equal(inv.writes?.size, 2);
  t.equal(await m2.size(), 9_999);
  t.equal((await m2.entries()).find(([k]) => k === 5000)?.[1], 'changed');
  inv.commit();
  let inGroup = 0;
  for await (const _entry of store.scanLive(keyGroupPrefix(KG, Space.USER))) inGroup++;
  t.equal(inGroup, 9_999, 'a scan of the key group finds every entry (what checkpoints and rescales read)');
});

void t.test('each map entry has its own TTL from its last write', async (t) => {
  const store = memoryStore();
  const spec = mapState<string, number>({ ttlMs: 60 });
  const inv = new Invocation(store);
  mapOf<string, number>(inv, spec).set('old', 1);
  inv.commit();
  await new Promise((resolve) => setTimeout(resolve, 100));
  const later = new Invocation(store);
  const m = mapOf<string, number>(later, spec);
  m.set('new', 2);
  t.equal(m.get('old'), undefined, 'the entry written 100 ms ago expired');
  t.equal(m.has('old'), false);
  t.equal(m.get('new'), 2, 'the fresh one did not');
  t.same(await m.entries(), [['new', 2]]);
  t.equal(await m.size(), 1);
});

void t.test('a list: append, values in order, length, clear; an append writes the element and the counter only', async (t) => {
  const store = memoryStore();
  const spec = listState<{ n: number }>();
  const inv = new Invocation(store);
  const l = listOf<{ n: number }>(inv, spec);
  t.same(l.values(), []);
  t.equal(l.length(), 0);
  for (let n = 0; n < 1000; n++) l.append({ n });
  t.equal(l.length(), 1000);
  inv.commit();
  await store.flushAll();
  const next = new Invocation(store);
  const l2 = listOf<{ n: number }>(next, spec);
  l2.append({ n: 1000 }, { n: 1001 });
  t.equal(next.writes?.size, 3, 'two elements and the counter');
  t.same(l2.values().map((v) => v.n), Array.from({ length: 1002 }, (_, i) => i));
  l2.clear();
  t.same(l2.values(), []);
  l2.append({ n: -1 });
  t.same(l2.values(), [{ n: -1 }], 'appends after a clear start a new list');
  next.commit();
  let left = 0;
  for await (const _entry of store.scanLive(keyGroupPrefix(KG, Space.USER))) left++;
  t.equal(left, 2, 'clear deleted the 1002 elements: one element and the counter are left');
});

void t.test('the same on LevelDB, across a reopen', async (t) => {
  const dir = tempDir(t, 'state-kinds');
  const open = async (): Promise<StateStore> => {
    const backend = new LevelDbBackend(dir);
    await backend.open();
    return new StateStore(backend, 100);
  };
  const store = await open();
  const inv = new Invocation(store);
  const m = mapOf<string, number>(inv, mapState<string, number>());
  const l = listOf<string>(inv, listState<string>());
  for (let i = 0; i < 300; i++) m.set(`k${String(i).padStart(3, '0')}`, i);
  l.append('x', 'y');
  inv.commit();
  await store.flushAll();
  await store.close();
  const again = await open();
  const reread = new Invocation(again);
  const entries = await mapOf<string, number>(reread, mapState<string, number>()).entries();
  t.equal(entries.length, 300);
  t.same(entries[299], ['k299', 299]);
  t.same(listOf<string>(reread, listState<string>()).values(), ['x', 'y']);
  await again.close();
});

void t.test('bad declarations and arguments are refused with a code and the fix', async (t) => {
  t.throws(() => mapState({ ttlMs: 0 }), { code: 'EDDY_INVALID_JOB', message: /mapState ttlMs must be a positive number/ });
  t.throws(
    () => defineFunction({ type: 'test/fn', state: { 'a\u0000b': mapState() }, handler() {} }),
    { code: 'EDDY_INVALID_JOB', message: /state name "a\\u0000b" must be non-empty and without/ },
  );
  t.throws(() => defineFunction({ type: 'test/fn', state: { m: { codec: {} } as never }, handler() {} }), { code: 'EDDY_INVALID_JOB', message: /valueState\(\), mapState\(\) or listState\(\)/ });
  const m = mapOf<string, number>(new Invocation(memoryStore()), mapState<string, number>());
  const error = t.throws(() => m.set('x'.repeat(70_000), 1)) as unknown;
  t.ok(error instanceof EddyError && error.code === 'EDDY_INVALID_ARGUMENT', 'a key over 65535 bytes');
  t.throws(() => listOf(new Invocation(memoryStore()), listState()).append(undefined), { code: 'EDDY_INVALID_ARGUMENT' });
});
