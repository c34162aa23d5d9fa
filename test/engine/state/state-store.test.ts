import t from 'tap';
import type { StateBackend, StateSnapshot } from '../../../engine/state/state-backend.js';
import { MemoryBackend } from '../../../engine/state/memory-backend.js';
import { StateStore } from '../../../engine/state/state-store.js';
import { prefixEnd, toBytes } from '../../../engine/state/state-keys.js';

type Entries = ReadonlyArray<readonly [Uint8Array, Uint8Array | null]>;

/**
 * A memory backend that counts calls and can be told to fail or to hold writes until released, so a
 * test can see exactly what the store sends and when.
 */
class ProbeBackend implements StateBackend {
  readonly kind = 'memory' as const;
  readonly inner = new MemoryBackend();
  reads: string[] = [];
  writes: Array<Array<[string, string | null]>> = [];
  /** performance.now() at each write call. */
  writtenAt: number[] = [];
  /** Indexes (0-based, in call order) of the writes that fail without applying anything. */
  readonly failing = new Set<number>();
  /** Per write index, a promise the write waits for before it applies (or fails). */
  readonly gates = new Map<number, Promise<void>>();

  async open(): Promise<void> {}
  getSync(key: Uint8Array): Uint8Array | undefined {
    this.reads.push(Buffer.from(key).toString('latin1'));
    return this.inner.getSync(key);
  }
  async write(entries: Entries): Promise<void> {
    const index = this.writes.length;
    this.writtenAt.push(performance.now());
    this.writes.push(entries.map(([k, v]) => [Buffer.from(k).toString('latin1'), v === null ? null : Buffer.from(v).toString()]));
    await this.gates.get(index);
    if (this.failing.has(index)) throw new Error('disk full');
    await this.inner.write(entries);
  }
  scan(gte: Uint8Array, lt: Uint8Array): AsyncIterable<[Uint8Array, Uint8Array]> {
    return this.inner.scan(gte, lt);
  }
  snapshot(): StateSnapshot {
    return this.inner.snapshot();
  }
  async close(): Promise<void> {}
  /** What the backend holds for `key`, as text. */
  stored(key: string): string | undefined {
    const v = this.inner.getSync(toBytes(key));
    return v === undefined ? undefined : Buffer.from(v).toString();
  }
}

const v = (s: string): Uint8Array => new TextEncoder().encode(s);
const str = (b: Uint8Array | undefined): string | undefined => (b === undefined ? undefined : Buffer.from(b).toString());

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

void t.test('a read of an uncached key falls through to the backend once, then hits the cache', async (t) => {
  const backend = new ProbeBackend();
  await backend.inner.write([[toBytes('present'), v('P')]]);
  const store = new StateStore(backend, 100);
  t.equal(str(store.get('present')), 'P');
  t.equal(str(store.get('present')), 'P');
  t.equal(store.get('absent'), undefined);
  t.equal(store.get('absent'), undefined, 'absence is cached too');
  t.same(backend.reads, ['present', 'absent']);
});

void t.test('writes are visible to reads at once but reach the backend only on flush', async (t) => {
  const backend = new ProbeBackend();
  const store = new StateStore(backend, 100);
  store.put('k', v('one'));
  t.equal(str(store.get('k')), 'one', 'read your own write');
  t.equal(store.pendingWrites, 1);
  t.equal(backend.stored('k'), undefined, 'not in the backend before flush');
  t.equal(backend.writes.length, 0);
  t.same(backend.reads, [], 'a written key is never read from the backend');
  await store.flush();
  t.equal(backend.stored('k'), 'one');
  t.equal(store.pendingWrites, 0);
});

void t.test('flush writes every dirty entry in one backend batch, each key once with its last value', async (t) => {
  const backend = new ProbeBackend();
  await backend.inner.write([[toBytes('clean'), v('c')]]);
  const store = new StateStore(backend, 1000);
  store.get('clean'); // cached, not dirty: must not be written
  for (let i = 0; i < 50; i++) store.put(`k${i}`, v(`first${i}`));
  for (let i = 0; i < 50; i += 2) store.put(`k${i}`, v(`second${i}`));
  t.equal(store.pendingWrites, 50, 'a key written twice is one pending write');
  await store.flush();
  t.equal(backend.writes.length, 1, 'one batch');
  const batch = backend.writes[0]!;
  t.equal(batch.length, 50);
  t.same(new Set(batch.map(([k]) => k)).size, 50, 'no key twice');
  t.notOk(batch.some(([k]) => k === 'clean'), 'clean entries are not rewritten');
  for (let i = 0; i < 50; i++) t.equal(backend.stored(`k${i}`), i % 2 === 0 ? `second${i}` : `first${i}`);
  await store.flush();
  t.equal(backend.writes.length, 1, 'a flush with nothing dirty writes nothing');
});

void t.test('a delete is written as a delete and reads as absent before and after the flush', async (t) => {
  const backend = new ProbeBackend();
  await backend.inner.write([[toBytes('k'), v('old')]]);
  const store = new StateStore(backend, 100);
  t.equal(str(store.get('k')), 'old');
  store.put('k', null);
  t.equal(store.get('k'), undefined, 'absent before flush');
  t.equal(backend.stored('k'), 'old', 'still in the backend before flush');
  await store.flush();
  t.same(backend.writes, [[['k', null]]], 'sent as a delete (null value)');
  t.equal(backend.stored('k'), undefined);
  t.equal(store.get('k'), undefined, 'absent after flush');
});

void t.test('eviction never drops dirty entries: capacity 10, 100 writes, all readable after flush', async (t) => {
  const backend = new ProbeBackend();
  const store = new StateStore(backend, 10);
  for (let i = 0; i < 100; i++) store.put(`k${i}`, v(`v${i}`));
  // More than capacity is dirty and nothing has been written: every value must still be readable.
  for (let i = 0; i < 100; i++) t.equal(str(store.get(`k${i}`)), `v${i}`, `k${i} before flush`);
  t.same(backend.reads, [], 'dirty entries are served from the cache');
  await store.flush();
  t.equal(store.pendingWrites, 0);
  for (let i = 0; i < 100; i++) {
    t.equal(backend.stored(`k${i}`), `v${i}`, `k${i} in the backend`);
    t.equal(str(store.get(`k${i}`)), `v${i}`, `k${i} after flush`);
  }
  t.ok(backend.reads.length >= 90, 'evicted entries were read back from the backend');
});

void t.test('eviction keeps entries rewritten while their write was running', async (t) => {
  const backend = new ProbeBackend();
  const store = new StateStore(backend, 4);
  for (let i = 0; i < 20; i++) store.put(`k${i}`, v('a'));
  const gate = deferred();
  backend.gates.set(0, gate.promise);
  const first = store.flush();
  for (let i = 0; i < 20; i++) store.put(`k${i}`, v('b')); // dirty again while 'a' is being written
  gate.resolve();
  await first;
  t.equal(backend.stored('k0'), 'a', 'the first write stored the old values');
  t.equal(store.pendingWrites, 20, 'the rewrites are still pending');
  for (let i = 0; i < 20; i++) t.equal(str(store.get(`k${i}`)), 'b', `k${i} reads its latest value`);
  await store.flushAll();
  for (let i = 0; i < 20; i++) t.equal(backend.stored(`k${i}`), 'b');
});

void t.test('a failed backend write keeps its entries dirty and a later flush writes them', async (t) => {
  const backend = new ProbeBackend();
  const store = new StateStore(backend, 100);
  store.put('a', v('1'));
  store.put('b', null);
  backend.failing.add(0);
  await t.rejects(store.flush(), { message: 'disk full' });
  t.equal(store.pendingWrites, 2, 'both entries are dirty again');
  t.equal(backend.stored('a'), undefined);
  t.equal(str(store.get('a')), '1', 'still readable from the cache');
  await store.flush();
  t.equal(backend.writes.length, 2, 'retried in a second batch');
  t.same(backend.writes[1], backend.writes[0], 'with the same entries');
  t.equal(backend.stored('a'), '1');
  t.equal(store.pendingWrites, 0);
});

void t.test('a failed write never evicts: entries stay readable with capacity exceeded', async (t) => {
  const backend = new ProbeBackend();
  const store = new StateStore(backend, 2);
  for (let i = 0; i < 10; i++) store.put(`k${i}`, v(`v${i}`));
  backend.failing.add(0);
  await t.rejects(store.flush());
  for (let i = 0; i < 10; i++) t.equal(str(store.get(`k${i}`)), `v${i}`);
  t.same(backend.reads, [], 'served from the cache, not the (empty) backend');
});

void t.test('a value rewritten while a failing write runs keeps the newer value', async (t) => {
  const backend = new ProbeBackend();
  const store = new StateStore(backend, 100);
  store.put('a', v('old'));
  store.put('b', v('b'));
  const gate = deferred();
  backend.gates.set(0, gate.promise);
  backend.failing.add(0);
  const failing = store.flush();
  store.put('a', v('new'));
  gate.resolve();
  await t.rejects(failing);
  t.equal(store.pendingWrites, 2, 'a (rewritten) and b (failed) are pending, each once');
  await store.flushAll();
  t.equal(backend.stored('a'), 'new');
  t.equal(backend.stored('b'), 'b');
});

/** Lets pending promise callbacks and immediates run. */
async function settle(): Promise<void> {
  for (let i = 0; i < 10; i++) await new Promise((resolve) => setImmediate(resolve));
}

void t.test('a flush called while a write runs resolves only once its own writes are in the backend', async (t) => {
  const backend = new ProbeBackend();
  const store = new StateStore(backend, 100);
  const gate0 = deferred();
  const gate1 = deferred();
  backend.gates.set(0, gate0.promise);
  backend.gates.set(1, gate1.promise);
  store.put('first', v('1'));
  const p1 = store.flush();
  store.put('second', v('2'));
  const p2 = store.flush();
  let p2Resolved = false;
  void p2.then(() => (p2Resolved = true));
  gate0.resolve();
  await p1;
  await settle();
  t.equal(backend.stored('first'), '1');
  t.equal(backend.stored('second'), undefined, "the write of 'second' is still held");
  t.notOk(p2Resolved, "the second flush has not resolved before 'second' is stored");
  gate1.resolve();
  await p2;
  t.equal(backend.stored('second'), '2', 'stored when the second flush resolves');
  t.equal(backend.writes.length, 2);
});

void t.test('a flush called while a write runs rejects to its caller when its own write fails, never unhandled', async (t) => {
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown): void => void unhandled.push(reason);
  process.on('unhandledRejection', onUnhandled);
  t.teardown(() => void process.off('unhandledRejection', onUnhandled));

  const backend = new ProbeBackend();
  const store = new StateStore(backend, 100);
  const gate0 = deferred();
  backend.gates.set(0, gate0.promise);
  backend.failing.add(1);
  store.put('first', v('1'));
  const p1 = store.flush();
  store.put('second', v('2'));
  const p2Outcome = store.flush().then(() => 'resolved', (error: unknown) => (error as Error).message);
  gate0.resolve();
  await p1;
  t.equal(await p2Outcome, 'disk full', "the caller whose write failed sees the failure");
  await settle();
  t.same(unhandled, [], 'no unhandled rejection');
  t.equal(store.pendingWrites, 1, "'second' is still pending");
  await store.flushAll();
  t.equal(backend.stored('second'), '2', 'and a later flush stores it');
});

void t.test('concurrent flushes coalesce: callers waiting on one running write share the next batch', async (t) => {
  const backend = new ProbeBackend();
  const store = new StateStore(backend, 100);
  const gate0 = deferred();
  backend.gates.set(0, gate0.promise);
  store.put('a', v('1'));
  const first = store.flush();
  const waiting: Array<Promise<void>> = [];
  for (let i = 0; i < 5; i++) {
    store.put(`b${i}`, v('2'));
    waiting.push(store.flush());
  }
  gate0.resolve();
  await Promise.all([first, ...waiting]);
  t.equal(backend.writes.length, 2, 'one write for a, one for all of b0..b4');
  t.same(backend.writes[1]!.map(([k]) => k).sort(), ['b0', 'b1', 'b2', 'b3', 'b4']);
});

void t.test('flushAll resolves only when nothing is dirty and no write runs', async (t) => {
  const backend = new ProbeBackend();
  const store = new StateStore(backend, 100);
  const gate0 = deferred();
  backend.gates.set(0, gate0.promise);
  store.put('a', v('1'));
  void store.flush();
  store.put('b', v('2'));
  const all = store.flushAll();
  gate0.resolve();
  await all;
  t.equal(store.pendingWrites, 0);
  t.equal(backend.stored('a'), '1');
  t.equal(backend.stored('b'), '2');
});

void t.test('scanPrefix returns the entries under a prefix in key order, including unflushed writes and deletes', async (t) => {
  const backend = new ProbeBackend();
  await backend.inner.write([
    [toBytes('p/a'), v('stored a')],
    [toBytes('p/c'), v('stored c')],
    [toBytes('p/d'), v('to delete')],
    [toBytes('p'), v('the prefix itself')],
    [toBytes('q/a'), v('other prefix')],
    [toBytes('p\xff'), v('0xff after p')],
  ]);
  const store = new StateStore(backend, 100);
  store.put('p/b', v('unflushed b'));
  store.put('p/c', v('rewritten c'));
  store.put('p/d', null);
  store.put('p/\x00', v('nul byte'));
  const seen: Array<[string, string]> = [];
  for await (const [key, value] of store.scanPrefix('p/')) seen.push([key, str(value)!]);
  t.same(seen, [
    ['p/\x00', 'nul byte'],
    ['p/a', 'stored a'],
    ['p/b', 'unflushed b'],
    ['p/c', 'rewritten c'],
  ]);
  const all: string[] = [];
  for await (const [key] of store.scanPrefix('p')) all.push(key);
  t.same(all, ['p', 'p/\x00', 'p/a', 'p/b', 'p/c', 'p\xff'], `bounded by prefixEnd('p') = ${JSON.stringify(prefixEnd('p'))}`);
});

void t.test('snapshot() cuts the state as of the call: later writes are flushed after it and not seen in it', async (t) => {
  const backend = new ProbeBackend();
  const store = new StateStore(backend, 100);
  store.put('a', v('1'));
  store.put('b', v('1'));
  const cut = store.snapshot([['parked', v('mailbox')]]);
  store.put('a', v('2'));
  store.put('c', v('2'));
  const flushed = store.flush();
  const { snapshot } = await cut;
  await flushed;
  const seen: Record<string, string> = {};
  for await (const batch of snapshot.scanBatches(toBytes('\u0000'), toBytes('\u00ff'))) for (const [key, value] of batch) seen[Buffer.from(key).toString('latin1')] = Buffer.from(value).toString();
  t.same(seen, { a: '1', b: '1', parked: 'mailbox' }, 'the snapshot holds the state at the cut, with the extra entries');
  t.equal(backend.stored('a'), '2', 'the live state has the later write');
  t.equal(backend.stored('c'), '2');
  t.equal(backend.stored('parked'), undefined, 'the extra entries are not left in the live state');
  await snapshot.close();
});

void t.test('reads alone keep the cache within its capacity', async (t) => {
  const backend = new ProbeBackend();
  const entries: Array<[Uint8Array, Uint8Array]> = Array.from({ length: 1000 }, (_, i) => [toBytes(`k${i}`), v(String(i))]);
  await backend.inner.write(entries);
  const store = new StateStore(backend, 100);
  for (let i = 0; i < 1000; i++) t.equal(str(store.get(`k${i}`)), String(i));
  t.ok((store as unknown as { cache: Map<string, unknown> }).cache.size <= 110, 'no more than capacity plus a tenth cached');
});

void t.test('a flush that was running when snapshot() was called does not let later writes in before the snapshot', async (t) => {
  const backend = new ProbeBackend();
  const store = new StateStore(backend, 100);
  const gate = deferred();
  backend.gates.set(0, gate.promise);
  store.put('a', v('before-1'));
  const running = store.flush(); // write 0, held
  store.put('a', v('at-cut'));
  const cut = store.snapshot(); // write 1, after write 0
  store.put('a', v('after-cut'));
  gate.resolve();
  await running;
  // Write 0 is done; a flush now must wait for the cut, not run before it.
  const later = store.flush();
  const { snapshot } = await cut;
  await later;
  const seen: string[] = [];
  for await (const batch of snapshot.scanBatches(toBytes('a'), toBytes('b'))) for (const [, value] of batch) seen.push(Buffer.from(value).toString());
  t.same(seen, ['at-cut'], 'the snapshot has the value at the cut, not the later one');
  t.equal(backend.stored('a'), 'after-cut', 'and the later write reached the backend after it');
  await snapshot.close();
});

void t.test('with change tracking, each cut reports exactly what changed since the previous one', async (t) => {
  const backend = new ProbeBackend();
  const store = new StateStore(backend, 100, 1000);
  store.put('a', v('1'));
  store.put('b', v('1'));
  await store.flush();
  store.put('a', v('2'));
  const first = await store.snapshot([['parked', v('mailbox')]]);
  const text = (changes: Map<string, Uint8Array | null> | undefined): Record<string, string | null> =>
    Object.fromEntries([...(changes ?? [])].map(([key, value]) => [key, value === null ? null : Buffer.from(value).toString()]));
  t.same(text(first.changes), { a: '2', b: '1', parked: 'mailbox' }, 'writes flushed before the cut and at it, last value each, with the extra entries');
  await first.snapshot.close();
  store.put('b', null);
  store.put('c', v('3'));
  const second = await store.snapshot();
  t.same(text(second.changes), { parked: null, b: null, c: '3' }, 'the next cut: the extra entries removed again, a delete, a put');
  await second.snapshot.close();
  const empty = await store.snapshot();
  t.same(text(empty.changes), {}, 'nothing changed: an empty set, not an unknown one');
  await empty.snapshot.close();
});

void t.test('change tracking gives up (changes unknown) beyond its bound, and starts again after the cut', async (t) => {
  const backend = new ProbeBackend();
  const store = new StateStore(backend, 100, 3);
  for (let i = 0; i < 5; i++) store.put(`k${i}`, v(String(i)));
  await store.flush();
  const over = await store.snapshot();
  t.equal(over.changes, undefined, 'more changed keys than tracked: unknown');
  await over.snapshot.close();
  store.put('k1', v('x'));
  const next = await store.snapshot();
  t.same([...(next.changes ?? new Map()).keys()], ['k1'], 'tracked again after the cut');
  await next.snapshot.close();
  const untracked = new StateStore(new ProbeBackend(), 100);
  untracked.put('a', v('1'));
  t.equal((await untracked.snapshot()).changes, undefined, 'without tracking: always unknown');
});

const quietPolicy = { intervalMs: 60_000, maxDirty: 1_000_000, onError: (): void => {} };

/** A timer may fire up to a millisecond before the performance.now() span it was set for. */
const TIMER_SLACK_MS = 2;

async function until(done: () => boolean): Promise<void> {
  for (let waited = 0; !done() && waited < 5000; waited += 5) await new Promise((r) => setTimeout(r, 5));
}

void t.test('flushSoon lets writes wait for the interval; a key rewritten meanwhile is written once, with its last value', async (t) => {
  const backend = new ProbeBackend();
  const store = new StateStore(backend, 100, 0, { ...quietPolicy, intervalMs: 30 });
  const firstPut = performance.now();
  for (let i = 0; i < 10; i++) {
    store.put('hot', v(`h${i}`));
    store.flushSoon();
  }
  store.put('cold', v('c'));
  store.flushSoon();
  await new Promise((r) => setTimeout(r, 10));
  t.same(backend.writes, [], 'nothing is written within the interval');
  await until(() => backend.stored('cold') !== undefined);
  t.same(backend.writes.flat(), [['hot', 'h9'], ['cold', 'c']], 'each key once, in the order they became dirty');
  t.ok(backend.writtenAt[0]! - firstPut >= 30 - TIMER_SLACK_MS, 'the first write went out after the interval');
  t.equal(store.pendingWrites, 0);
  await store.close();
});

void t.test('flushSoon writes each key about the interval after it became dirty, not all dirty keys at once', async (t) => {
  const backend = new ProbeBackend();
  const store = new StateStore(backend, 100, 0, { ...quietPolicy, intervalMs: 400 });
  const earlyAt = performance.now();
  store.put('early', v('1'));
  store.flushSoon();
  await new Promise((r) => setTimeout(r, 200));
  const lateAt = performance.now();
  store.put('late', v('2'));
  store.put('early', v('3')); // still dirty: keeps its place, written with its last value
  store.flushSoon();
  await until(() => backend.writes.length > 0);
  t.same(backend.writes, [[['early', '3']]], 'the first write holds only the key that was due');
  t.ok(backend.writtenAt[0]! - earlyAt >= 400 - TIMER_SLACK_MS, 'not before its interval');
  t.equal(store.pendingWrites, 1, 'the later key waits for its own interval');
  await until(() => backend.writes.length > 1);
  t.same(backend.writes, [[['early', '3']], [['late', '2']]], 'then the later key, on its own');
  t.ok(backend.writtenAt[1]! - lateAt >= 400 - TIMER_SLACK_MS, 'not before its own interval');
  t.equal(store.pendingWrites, 0);
  await store.close();
});

void t.test('a failed write of the due keys leaves the others alone; the failed ones wait a new interval, then go out with their last values', async (t) => {
  const backend = new ProbeBackend();
  backend.failing.add(0);
  const errors: string[] = [];
  const store = new StateStore(backend, 100, 0, { intervalMs: 400, maxDirty: 1_000, onError: (e) => errors.push((e as Error).message) });
  store.put('a', v('1'));
  store.flushSoon();
  await new Promise((r) => setTimeout(r, 200));
  store.put('b', v('2'));
  store.flushSoon();
  await until(() => backend.writes.length > 0);
  t.same(backend.writes, [[['a', '1']]], 'only the due key was in the failed write');
  t.same(errors, ['disk full']);
  store.put('a', v('3')); // dirty again since the failure: rewritten, it keeps that place
  await until(() => backend.stored('a') !== undefined);
  t.same(backend.writes.flat(), [['a', '1'], ['b', '2'], ['a', '3']], 'b when due, then a after its new interval, with its last value');
  t.ok(backend.writtenAt.at(-1)! - backend.writtenAt[0]! >= 400 - TIMER_SLACK_MS, 'the retry waited the interval');
  t.equal(backend.stored('b'), '2');
  t.equal(store.pendingWrites, 0);
  await store.close();
});

void t.test("a cut taken while a timer write runs waits for it and holds both that write's keys and the newer dirty ones", async (t) => {
  const backend = new ProbeBackend();
  const gate = deferred();
  backend.gates.set(0, gate.promise);
  const store = new StateStore(backend, 100, 0, { ...quietPolicy, intervalMs: 20 });
  store.put('a', v('1'));
  store.flushSoon();
  await until(() => backend.writes.length > 0); // the timer's write of a, held at the gate
  store.put('b', v('2'));
  const cut = store.snapshot();
  await new Promise((r) => setTimeout(r, 50));
  t.equal(backend.writes.length, 1, 'nothing else is written while the timer write runs');
  gate.resolve();
  const { snapshot } = await cut;
  const seen: Record<string, string> = {};
  for await (const batch of snapshot.scanBatches(toBytes('\u0000'), toBytes('\u00ff'))) for (const [key, value] of batch) seen[Buffer.from(key).toString('latin1')] = Buffer.from(value).toString();
  t.same(seen, { a: '1', b: '2' });
  t.same(backend.writes, [[['a', '1']], [['b', '2']]], 'the cut wrote only what the timer had not');
  await snapshot.close();
  await store.close();
});

void t.test('flushSoon writes at once when maxDirty entries wait', async (t) => {
  const backend = new ProbeBackend();
  const store = new StateStore(backend, 100, 0, { ...quietPolicy, maxDirty: 3 });
  store.put('a', v('1'));
  store.put('b', v('2'));
  store.flushSoon();
  t.same(backend.writes, [], 'two of three: waits');
  store.put('c', v('3'));
  store.flushSoon();
  t.same(backend.writes, [[['a', '1'], ['b', '2'], ['c', '3']]], 'the third starts the write');
  await store.close();
});

void t.test('close() cancels a pending background write', async (t) => {
  const backend = new ProbeBackend();
  const store = new StateStore(backend, 100, 0, { ...quietPolicy, intervalMs: 20 });
  store.put('a', v('1'));
  store.flushSoon();
  await store.close();
  await new Promise((r) => setTimeout(r, 80));
  t.same(backend.writes, [], 'nothing written after close');
});

void t.test('a failed background write is reported and tried again after the interval, without further writes', async (t) => {
  const backend = new ProbeBackend();
  backend.failing.add(0);
  const errors: string[] = [];
  const store = new StateStore(backend, 100, 0, { intervalMs: 20, maxDirty: 1, onError: (e) => errors.push((e as Error).message) });
  store.put('a', v('1'));
  store.flushSoon();
  await until(() => backend.stored('a') !== undefined);
  t.same(errors, ['disk full']);
  t.equal(backend.writes.length, 2, 'the retry is the second write');
  t.ok(backend.writtenAt[1]! - backend.writtenAt[0]! >= 20 - TIMER_SLACK_MS, 'after the interval');
  t.equal(backend.stored('a'), '1');
  await store.close();
});

void t.test('a flush of more than 1000 entries goes to the backend in batches of 1000, all before it resolves', async (t) => {
  const backend = new ProbeBackend();
  const store = new StateStore(backend, 10_000);
  for (let i = 0; i < 2500; i++) store.put(`k${String(i).padStart(4, '0')}`, v(String(i)));
  await store.flush();
  t.same(backend.writes.map((w) => w.length), [1000, 1000, 500]);
  t.equal(backend.stored('k2499'), '2499');
  t.equal(store.pendingWrites, 0);
});

void t.test('an entry whose write is still running is never evicted, so a read cannot fetch the older value', async (t) => {
  const backend = new ProbeBackend();
  await backend.inner.write([[toBytes('k'), v('old')]]);
  const gate = deferred();
  backend.gates.set(0, gate.promise);
  const store = new StateStore(backend, 2);
  store.put('k', v('new'));
  const flushed = store.flush(); // the write of k waits at the gate
  for (const other of ['a', 'b', 'c', 'd']) store.get(other); // pushes the cache over its capacity: evicts
  t.equal(str(store.get('k')), 'new', 'k is still served from the cache');
  t.notOk(backend.reads.includes('k'), 'k was never read from the backend meanwhile');
  gate.resolve();
  await flushed;
  t.equal(backend.stored('k'), 'new');
});

void t.test("a cut's snapshot-only entries are written in one batch of their own: a failure leaves none of them behind", async (t) => {
  const backend = new ProbeBackend();
  backend.failing.add(1); // the second write: the snapshot-only entries
  const store = new StateStore(backend, 10_000);
  for (let i = 0; i < 500; i++) store.put(`k${i}`, v(String(i)));
  const extra = Array.from({ length: 1500 }, (_, i) => [`parked${String(i).padStart(4, '0')}`, v('p')] as const);
  await t.rejects(store.snapshot(extra), /disk full/);
  t.same(backend.writes.map((w) => w.length), [500, 1500], 'the entries, then all snapshot-only entries at once');
  t.notOk(extra.some(([key]) => backend.stored(key) !== undefined), 'no snapshot-only entry reached the live state');
  t.equal(store.pendingWrites, 500, 'the entries are dirty again, for the next flush');
});

void t.test("a cut whose snapshot-only entries cannot be removed again fails, and the next write removes them: no later cut holds them", async (t) => {
  const backend = new ProbeBackend();
  backend.failing.add(2); // the third write: removing the snapshot-only entries from the live state
  let closed = 0;
  const snapshot = backend.snapshot.bind(backend);
  backend.snapshot = () => {
    const taken = snapshot();
    return { scanBatches: taken.scanBatches.bind(taken), close: async () => void closed++ };
  };
  const store = new StateStore(backend, 10_000, 100);
  store.put('user', v('1'));
  const extra = [['txn-a', v('lock')], ['parked-b', v('envelope')]] as const;
  await t.rejects(store.snapshot(extra), /disk full/, 'the cut fails');
  t.equal(closed, 1, "the failed cut's snapshot is closed");
  t.equal(store.pendingWrites, 2, 'their removal waits as dirty entries');
  t.equal(store.get('txn-a'), undefined, 'reads never see them');
  const cut = await store.snapshot();
  const held: string[] = [];
  for await (const batch of cut.snapshot.scanBatches(toBytes(''), toBytes('\xff'))) for (const [key] of batch) held.push(Buffer.from(key).toString('latin1'));
  t.same(held, ['user'], 'the next cut holds only the live state');
  t.same(cut.changes === undefined ? undefined : [...cut.changes.keys()].sort(), ['parked-b', 'txn-a'], 'and reports them as deleted');
  t.notOk(extra.some(([key]) => backend.stored(key) !== undefined), 'the live state no longer holds them');
});

void t.test('close() during a background write stops it after its current batch: nothing is written or retried after', async (t) => {
  const backend = new ProbeBackend();
  const gate = deferred();
  backend.gates.set(0, gate.promise);
  const errors: unknown[] = [];
  const store = new StateStore(backend, 10_000, 0, { intervalMs: 10, maxDirty: 1, onError: (e) => errors.push(e) });
  for (let i = 0; i < 1500; i++) store.put(`k${i}`, v(String(i)));
  store.flushSoon(); // starts the first batch of 1000, held at the gate
  const closed = store.close();
  gate.resolve();
  await closed;
  store.put('late', v('x'));
  store.flushSoon();
  await new Promise((r) => setTimeout(r, 50));
  t.same(backend.writes.map((w) => w.length), [1000], 'only the batch that was running');
  t.same(errors, [], 'no failure reported, nothing retried');
});

void t.test('scanLive returns what reads see under a prefix, in key order, without writing anything first', async (t) => {
  const backend = new ProbeBackend();
  await backend.inner.write([
    [toBytes('p/a'), v('stored a')],
    [toBytes('p/c'), v('stored c')],
    [toBytes('p/d'), v('to delete')],
    [toBytes('p'), v('the prefix itself')],
    [toBytes('q/a'), v('other prefix')],
  ]);
  const store = new StateStore(backend, 100);
  t.equal(str(store.get('p/a')), 'stored a', 'a clean cached entry');
  store.put('p/b', v('unflushed b'));
  store.put('p/c', v('rewritten c'));
  store.put('p/d', null);
  store.put('p/e', v('unflushed e'));
  const seen: Array<[string, string]> = [];
  for await (const [key, value] of store.scanLive('p/')) seen.push([key, str(value)!]);
  t.same(seen, [
    ['p/a', 'stored a'],
    ['p/b', 'unflushed b'],
    ['p/c', 'rewritten c'],
    ['p/e', 'unflushed e'],
  ]);
  t.equal(backend.writes.length, 0, 'nothing was flushed for it');
});

void t.test('scanLive sees entries whose write is running, and a write landing during the scan changes nothing', async (t) => {
  const backend = new ProbeBackend();
  await backend.inner.write([[toBytes('p/a'), v('old a')]]);
  const store = new StateStore(backend, 100);
  const gate = deferred();
  backend.gates.set(0, gate.promise);
  store.put('p/a', v('new a'));
  store.put('p/b', v('new b'));
  const flushed = store.flush(); // held at the backend: the entries are no longer dirty, but not written
  const seen: Array<[string, string]> = [];
  const scan = store.scanLive('p/')[Symbol.asyncIterator]();
  let next = await scan.next();
  gate.resolve();
  await flushed;
  store.put('p/c', v('written after the scan began'));
  while (next.done !== true) {
    seen.push([next.value[0], str(next.value[1])!]);
    next = await scan.next();
  }
  t.same(seen, [
    ['p/a', 'new a'],
    ['p/b', 'new b'],
  ]);
});

// Keys as the engine lays them out: [key group u16][space u8]... (state-keys.ts); space 1 is user state.
const userKey = (kg: number, name: string): string => String.fromCharCode(0, kg, 1) + name;
const engineKey = (kg: number, space: number, name: string): string => String.fromCharCode(0, kg, space) + name;

void t.test('preload: restored entries are readable at once, before their background write lands, and reach the backend after', async (t) => {
  const backend = new ProbeBackend();
  const gate = deferred();
  backend.gates.set(0, gate.promise);
  const store = new StateStore(backend, 100);
  store.preload([[userKey(1, 'a'), v('1')], [userKey(2, 'b'), v('2')]]);
  t.equal(str(store.get(userKey(1, 'a'))), '1', 'read from the cache while the write is held');
  t.equal(backend.stored(userKey(1, 'a')), undefined, 'not in the backend yet');
  t.same(backend.reads, [], 'no read went to the backend');
  gate.resolve();
  await store.flushAll();
  t.equal(backend.stored(userKey(1, 'a')), '1');
  t.equal(backend.stored(userKey(2, 'b')), '2');
  await store.close();
});

void t.test('preload: a write made while the restored entries are written lands after them, so the newer value stays', async (t) => {
  const backend = new ProbeBackend();
  const gate = deferred();
  backend.gates.set(0, gate.promise);
  const store = new StateStore(backend, 100);
  store.preload([[userKey(1, 'a'), v('restored')]]);
  store.put(userKey(1, 'a'), v('newer'));
  const flushed = store.flush();
  gate.resolve();
  await flushed;
  t.equal(backend.stored(userKey(1, 'a')), 'newer');
  t.equal(str(store.get(userKey(1, 'a'))), 'newer');
  await store.close();
});

void t.test('preload: a cut taken while the restored entries are written holds them', async (t) => {
  const backend = new ProbeBackend();
  const gate = deferred();
  backend.gates.set(0, gate.promise);
  const store = new StateStore(backend, 100, 10);
  store.preload([[userKey(1, 'a'), v('1')], [userKey(1, 'b'), v('1')]]);
  store.put(userKey(1, 'b'), v('2'));
  const cut = store.snapshot();
  setTimeout(() => gate.resolve(), 20);
  const { snapshot, changes } = await cut;
  const seen: Record<string, string> = {};
  for await (const batch of snapshot.scanBatches(toBytes('\u0000'), toBytes('\u00ff'))) for (const [key, value] of batch) seen[Buffer.from(key).toString('latin1').slice(3)] = Buffer.from(value).toString();
  t.same(seen, { a: '1', b: '2' }, 'restored entries and the later write');
  t.same([...changes!.keys()].map((k) => k.slice(3)), ['b'], 'restored entries are not changes since the restored checkpoint; the later write is');
  await snapshot.close();
  await store.close();
});

void t.test('preload: scanPrefix of engine state does not wait for the restored user state, a scan of user state does', async (t) => {
  const backend = new ProbeBackend();
  await backend.inner.write([[toBytes(engineKey(1, 5, 'txn')), v('record')]]);
  const gate = deferred();
  backend.gates.set(0, gate.promise);
  const store = new StateStore(backend, 100);
  store.preload([[userKey(1, 'a'), v('1')]]);
  const engine: string[] = [];
  for await (const [key, value] of store.scanPrefix(engineKey(1, 5, ''))) engine.push(`${key.slice(3)}=${str(value)}`);
  t.same(engine, ['txn=record'], 'read while the restored write is held');
  let userDone = false;
  const user = (async () => {
    const seen: string[] = [];
    for await (const [key, value] of store.scanPrefix(userKey(1, ''))) seen.push(`${key.slice(3)}=${str(value)}`);
    userDone = true;
    return seen;
  })();
  await new Promise((r) => setTimeout(r, 30));
  t.notOk(userDone, 'the scan of user state waits for the restored entries');
  gate.resolve();
  t.same(await user, ['a=1'], 'and then sees them');
  await store.close();
});

void t.test('preload: a failed background write leaves the restored entries readable and dirty; the next flush writes them', async (t) => {
  const backend = new ProbeBackend();
  backend.failing.add(0);
  const errors: string[] = [];
  const store = new StateStore(backend, 1, 0, { intervalMs: 10, maxDirty: 1000, onError: (e) => errors.push((e as Error).message) });
  store.preload([[userKey(1, 'a'), v('1')], [userKey(1, 'b'), v('2')]]);
  await until(() => backend.stored(userKey(1, 'b')) !== undefined);
  t.same(errors, ['disk full'], 'the failure was reported');
  t.equal(backend.stored(userKey(1, 'a')), '1', 'written by the retry');
  t.equal(str(store.get(userKey(1, 'a'))), '1');
  await store.close();
});

void t.test('preload refuses a store that already has writes of its own', async (t) => {
  const store = new StateStore(new ProbeBackend(), 100);
  store.put(userKey(1, 'a'), v('1'));
  t.throws(() => store.preload([[userKey(1, 'b'), v('2')]]), /preload/);
  await store.close();
});

void t.test('preload: once written, the restored entries leave the cache (reads go to the backend), rewritten ones stay', async (t) => {
  const backend = new ProbeBackend();
  const store = new StateStore(backend, 100);
  store.preload([[userKey(1, 'a'), v('1')], [userKey(1, 'b'), v('2')]]);
  store.put(userKey(1, 'b'), v('3'));
  await store.flushAll();
  backend.reads = [];
  t.equal(str(store.get(userKey(1, 'a'))), '1');
  t.equal(str(store.get(userKey(1, 'b'))), '3');
  t.same(backend.reads, [userKey(1, 'a')], 'the restored entry is read from the backend; the rewritten one from the cache');
  await store.close();
});

void t.test('preload: while restored entries beyond the capacity are written, the capacity still bounds the other entries', async (t) => {
  const backend = new ProbeBackend();
  const gate = deferred();
  backend.gates.set(0, gate.promise);
  const store = new StateStore(backend, 10);
  store.preload(Array.from({ length: 50 }, (_, i) => [userKey(1, `r${i}`), v('r')] as const));
  for (let i = 0; i < 30; i++) store.get(userKey(2, `other${i}`));
  t.equal(str(store.get(userKey(1, 'r0'))), 'r', 'restored entries stay readable from the cache');
  backend.reads = [];
  for (let i = 0; i < 30; i++) store.get(userKey(2, `other${i}`));
  t.ok(backend.reads.length >= 15, `other entries were evicted to the capacity meanwhile (${backend.reads.length} of 30 read again)`);
  gate.resolve();
  await store.flushAll();
  await store.close();
});
