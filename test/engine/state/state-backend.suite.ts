/**
 * The compliance suite every StateBackend passes (in the spirit of abstract-level's test suite, which
 * classic-level runs): point reads, atomic batches of puts and deletes, ordered range scans over
 * binary keys, byte-exact values, close and, for persistent backends, reopening.
 */
import type { Test } from 'tap';
import type { StateBackend } from '../../../engine/state/state-backend.js';

export interface SuiteOptions {
  /** Whether a new backend on the same folder sees what an earlier one wrote (LevelDB: yes). */
  persistent: boolean;
}

const bytes = (...values: number[]): Uint8Array => Uint8Array.from(values);
const text = (s: string): Uint8Array => new TextEncoder().encode(s);
const hex = (b: Uint8Array | undefined): string | undefined => (b === undefined ? undefined : Buffer.from(b).toString('hex'));

/** Compares byte strings as unsigned bytes, the order LevelDB's default comparator uses. */
function compareBytes(a: Uint8Array, b: Uint8Array): number {
  return Buffer.compare(a, b);
}

async function collect(iterable: AsyncIterable<[Uint8Array, Uint8Array]>): Promise<Array<[string, string]>> {
  const out: Array<[string, string]> = [];
  for await (const [key, value] of iterable) out.push([hex(key)!, hex(value)!]);
  return out;
}

export function stateBackendSuite(t: Test, name: string, make: (dir: string) => StateBackend, options: SuiteOptions): void {
  let dirs = 0;
  /** A backend in a fresh folder of this test, opened, and closed at teardown unless closed before. */
  async function open(t: Test, dir: string = t.testdir({}) + `/db-${dirs++}`): Promise<{ backend: StateBackend; dir: string; close: () => Promise<void> }> {
    const backend = make(dir);
    await backend.open();
    let closed = false;
    const close = async (): Promise<void> => {
      if (closed) return;
      closed = true;
      await backend.close();
    };
    t.teardown(close);
    return { backend, dir, close };
  }

  void t.test(`${name}: getSync of an absent key returns undefined`, async (t) => {
    const { backend } = await open(t);
    t.equal(backend.getSync(text('nothing here')), undefined);
    await backend.write([[text('other'), text('v')]]);
    t.equal(backend.getSync(text('nothing here')), undefined, 'still absent after an unrelated write');
    t.equal(backend.getSync(text('othe')), undefined, 'a prefix of a present key is absent');
    t.equal(backend.getSync(text('other\0')), undefined, 'a present key plus a NUL byte is absent');
  });

  void t.test(`${name}: getSync of a written key returns its value byte for byte`, async (t) => {
    const { backend } = await open(t);
    const all = bytes(...Array.from({ length: 256 }, (_, i) => i));
    await backend.write([
      [text('a'), text('alpha')],
      [bytes(0x00), all],
      [bytes(0xff, 0x00, 0xff), bytes(0x00, 0x00)],
      [text('empty'), new Uint8Array(0)],
    ]);
    t.equal(hex(backend.getSync(text('a'))), hex(text('alpha')));
    t.equal(hex(backend.getSync(bytes(0x00))), hex(all), 'every byte value survives');
    t.equal(hex(backend.getSync(bytes(0xff, 0x00, 0xff))), '0000');
    const empty = backend.getSync(text('empty'));
    t.not(empty, undefined, 'an empty value is present, not absent');
    t.equal(empty?.byteLength, 0);
  });

  void t.test(`${name}: a value is copied on write, so reusing the caller's buffer changes nothing`, async (t) => {
    const { backend } = await open(t);
    const key = text('k');
    const value = text('before');
    await backend.write([[key, value]]);
    value.set(text('AFTER!'));
    key.set(text('x'));
    t.equal(hex(backend.getSync(text('k'))), hex(text('before')));
    t.equal(backend.getSync(text('x')), undefined);
  });

  void t.test(`${name}: a later write replaces a value and a null value deletes it`, async (t) => {
    const { backend } = await open(t);
    await backend.write([[text('k'), text('one')], [text('keep'), text('kept')]]);
    await backend.write([[text('k'), text('two')]]);
    t.equal(hex(backend.getSync(text('k'))), hex(text('two')));
    await backend.write([[text('k'), null]]);
    t.equal(backend.getSync(text('k')), undefined, 'deleted');
    t.equal(hex(backend.getSync(text('keep'))), hex(text('kept')), 'other keys untouched');
    await backend.write([[text('never written'), null]]);
    t.equal(backend.getSync(text('never written')), undefined, 'deleting an absent key is a no-op');
  });

  void t.test(`${name}: one write applies puts and deletes together, the later entry for a key winning`, async (t) => {
    const { backend } = await open(t);
    await backend.write([[text('gone'), text('x')], [text('replaced'), text('old')]]);
    await backend.write([
      [text('gone'), null],
      [text('new'), text('n')],
      [text('replaced'), text('mid')],
      [text('replaced'), text('new')],
      [text('put then deleted'), text('p')],
      [text('put then deleted'), null],
    ]);
    t.equal(backend.getSync(text('gone')), undefined);
    t.equal(hex(backend.getSync(text('new'))), hex(text('n')));
    t.equal(hex(backend.getSync(text('replaced'))), hex(text('new')));
    t.equal(backend.getSync(text('put then deleted')), undefined);
    t.same(await collect(backend.scan(bytes(0x00), bytes(0xff))), [
      [hex(text('new')), hex(text('n'))],
      [hex(text('replaced')), hex(text('new'))],
    ]);
  });

  void t.test(`${name}: a write is atomic: a scan sees all of a batch or none of it`, async (t) => {
    const { backend } = await open(t);
    const keys = Array.from({ length: 500 }, (_, i) => text(`key-${String(i).padStart(4, '0')}`));
    await backend.write(keys.map((key) => [key, text('old')] as const));
    const pending = backend.write(keys.map((key, i) => (i % 2 === 0 ? [key, text('new')] as const : [key, null] as const)));
    let settled = false;
    void pending.then(() => (settled = true), () => (settled = true));
    // A scan reads one consistent view (LevelDB: an implicit snapshot), so it must show either the
    // state before the batch (500 'old') or after it (250 'new', the odd keys deleted).
    const old = Buffer.from('old').toString('hex');
    const fresh = Buffer.from('new').toString('hex');
    const observed: string[] = [];
    for (;;) {
      const done = settled;
      const entries = await collect(backend.scan(text('key-'), text('key.')));
      const before = entries.length === 500 && entries.every(([, v]) => v === old);
      const after = entries.length === 250 && entries.every(([k, v], i) => v === fresh && k === hex(keys[2 * i]));
      if (!before && !after) {
        t.fail(`a scan saw a partial batch: ${entries.length} entries`);
        break;
      }
      observed.push(before ? 'before' : 'after');
      if (done) break;
    }
    await pending;
    t.equal(observed.at(-1), 'after', 'the batch is visible once write resolves');
    t.notOk(observed.includes('before') && observed.lastIndexOf('before') > observed.indexOf('after'), 'never goes back');
  });

  void t.test(`${name}: scan returns gte <= key < lt in unsigned byte order, including 0x00 and 0xff bytes`, async (t) => {
    const { backend } = await open(t);
    const keys = [
      bytes(0x00),
      bytes(0x00, 0x00),
      bytes(0x00, 0xff),
      bytes(0x01),
      bytes(0x01, 0x00),
      bytes(0x7f),
      bytes(0x80),
      bytes(0x80, 0x00, 0x01),
      bytes(0xfe, 0xff, 0xff),
      bytes(0xff),
      bytes(0xff, 0x00),
      bytes(0xff, 0xff),
      bytes(0xff, 0xff, 0xff),
      text('é'), // 0xc3 0xa9: UTF-8 bytes sort by byte, not by code point of a decoded string
    ];
    // Written in a shuffled order and across several batches.
    const shuffled = [...keys].reverse();
    await backend.write(shuffled.slice(0, 5).map((k, i) => [k, bytes(i, 0xff, 0x00)] as const));
    await backend.write(shuffled.slice(5).map((k, i) => [k, bytes(i + 5, 0xff, 0x00)] as const));
    const sorted = [...keys].sort(compareBytes);
    const valueOf = (k: Uint8Array): string => hex(bytes(shuffled.findIndex((s) => compareBytes(s, k) === 0), 0xff, 0x00))!;

    const expect = (gte: Uint8Array, lt: Uint8Array): Array<[string, string]> =>
      sorted.filter((k) => compareBytes(k, gte) >= 0 && compareBytes(k, lt) < 0).map((k) => [hex(k)!, valueOf(k)]);

    const everything = await collect(backend.scan(bytes(0x00), bytes(0xff, 0xff, 0xff, 0xff)));
    t.same(everything, expect(bytes(0x00), bytes(0xff, 0xff, 0xff, 0xff)), 'whole range, sorted');
    t.equal(everything.length, keys.length, 'every key once');

    const ranges: Array<[Uint8Array, Uint8Array]> = [
      [bytes(0x00), bytes(0x01)], // the keys starting with 0x00
      [bytes(0x00, 0x00), bytes(0x00, 0xff)], // lt excludes an existing key
      [bytes(0x01), bytes(0x01, 0x00)], // gte includes an existing key
      [bytes(0x7f), bytes(0x80, 0x00, 0x01)], // 0x80 sorts after 0x7f (unsigned)
      [bytes(0xff), bytes(0xff, 0xff, 0xff)],
      [bytes(0xff, 0x00), bytes(0xff, 0x00)], // empty range
      [bytes(0x02), bytes(0x03)], // nothing in between
    ];
    for (const [gte, lt] of ranges) {
      t.same(await collect(backend.scan(gte, lt)), expect(gte, lt), `scan [${hex(gte)}, ${hex(lt)})`);
    }
  });

  void t.test(`${name}: scan pages through many entries in order`, async (t) => {
    const { backend } = await open(t);
    const n = 2500; // more than one page of LevelDB's nextv
    const key = (i: number): Uint8Array => bytes(0x05, i >>> 8, i & 0xff);
    const order = Array.from({ length: n }, (_, i) => (i * 7919) % n); // a permutation
    await backend.write(order.map((i) => [key(i), bytes(i & 0xff)] as const));
    await backend.write([[bytes(0x04, 0xff), text('before')], [bytes(0x06), text('after')]]);
    let expected = 0;
    for await (const [k, v] of backend.scan(bytes(0x05), bytes(0x06))) {
      if (hex(k) !== hex(key(expected)) || v[0] !== (expected & 0xff)) {
        t.fail(`entry ${expected} is out of order: ${hex(k)}`);
        break;
      }
      expected++;
    }
    t.equal(expected, n);
  });

  void t.test(`${name}: values read by scan are byte-equal to what was written`, async (t) => {
    const { backend } = await open(t);
    const values = [new Uint8Array(0), bytes(0x00), bytes(0xff), Uint8Array.from({ length: 70_000 }, (_, i) => (i * 31) & 0xff)];
    await backend.write(values.map((v, i) => [bytes(0x10, i), v] as const));
    const read = await collect(backend.scan(bytes(0x10), bytes(0x11)));
    t.same(read.map(([, v]) => v), values.map((v) => hex(v)));
  });

  void t.test(`${name}: close resolves and releases the backend`, async (t) => {
    const { backend, close, dir } = await open(t);
    await backend.write([[text('k'), text('v')]]);
    await close();
    // The folder can be opened again by a new backend once the first is closed.
    const again = make(dir);
    await again.open();
    t.teardown(() => again.close());
    t.pass('reopened after close');
  });

  if (options.persistent) {
    void t.test(`${name}: a backend reopened on the same folder reads what was written before close`, async (t) => {
      const { backend, close, dir } = await open(t);
      await backend.write([[bytes(0x00, 0xff), text('persisted')], [text('deleted'), text('x')]]);
      await backend.write([[text('deleted'), null]]);
      await close();
      const { backend: reopened } = await open(t, dir);
      t.equal(hex(reopened.getSync(bytes(0x00, 0xff))), hex(text('persisted')));
      t.equal(reopened.getSync(text('deleted')), undefined, 'deletes persist too');
      t.same(await collect(reopened.scan(bytes(0x00), bytes(0xff))), [[hex(bytes(0x00, 0xff)), hex(text('persisted'))]]);
    });
  } else {
    void t.test(`${name}: a new backend starts empty, even on the same folder`, async (t) => {
      const { backend, close, dir } = await open(t);
      await backend.write([[text('k'), text('v')]]);
      await close();
      const { backend: fresh } = await open(t, dir);
      t.equal(fresh.getSync(text('k')), undefined);
      t.same(await collect(fresh.scan(bytes(0x00), bytes(0xff))), []);
    });
  }
}
