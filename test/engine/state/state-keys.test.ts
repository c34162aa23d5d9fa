import t from 'tap';
import fc from 'fast-check';
import {
  decodeF64,
  encodeF64,
  fromBytes,
  instancePrefix,
  keyGroupOfKey,
  keyGroupPrefix,
  parkedKey,
  parkedSeqOf,
  prefixEnd,
  Space,
  timerKey,
  toBytes,
  tokenKey,
  userStateKey,
} from '../../../engine/state/state-keys.js';
import { MAX_MAX_PARALLELISM } from '../../../engine/key-groups.js';

/** Keys are latin1 strings, one char per byte: string order is unsigned byte order. */
const byteOrder = (a: string, b: string): number => Buffer.compare(toBytes(a), toBytes(b));

/** Strings that stress the encoding: NUL, 0xff, the length-prefix bytes, multi-byte UTF-8, astral. */
const tricky = fc.string({
  unit: fc.oneof(
    fc.constantFrom('\u0000', '\u00ff', '\u0001', '\u00fe', 'a', '/', '\u00e9', '\u0100', '\uffff', '\u{1F600}', '\u{10FFFF}'),
    fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }),
  ),
  maxLength: 6,
});
const kgArb = fc.integer({ min: 0, max: MAX_MAX_PARALLELISM - 1 });

/** Any key the layout defines, with the key group it was built for. */
const anyKey = fc.oneof(
  fc.record({ kg: kgArb, type: tricky, id: tricky, name: tricky }).map(({ kg, type, id, name }) => ({ kg, key: userStateKey(instancePrefix(kg, type, id), name) })),
  fc.record({ kg: kgArb, at: fc.double({ min: 0, noNaN: true }), type: tricky, id: tricky, token: tricky }).map(({ kg, at, type, id, token }) => ({ kg, key: timerKey(kg, at, type, id, token) })),
  fc.record({ kg: kgArb, type: tricky, id: tricky, token: tricky }).map(({ kg, type, id, token }) => ({ kg, key: tokenKey(kg, type, id, token) })),
  fc.record({ kg: kgArb, seq: fc.double({ min: 0, noNaN: true }) }).map(({ kg, seq }) => ({ kg, key: parkedKey(kg, seq) })),
);

void t.test('every key starts with its key group, and keyGroupOfKey reads it back', async (t) => {
  fc.assert(fc.property(anyKey, ({ kg, key }) => keyGroupOfKey(key) === kg && key.startsWith(keyGroupPrefix(kg, key.charCodeAt(2)))));
  t.equal(keyGroupOfKey(parkedKey(MAX_MAX_PARALLELISM - 1, 1)), MAX_MAX_PARALLELISM - 1, 'the largest key group');
  t.equal(keyGroupOfKey(parkedKey(0x1ff, 1)), 0x1ff, 'both bytes of the key group count');
});

void t.test('parkedSeqOf reads back the sequence number of a parked key', async (t) => {
  fc.assert(fc.property(kgArb, fc.double({ min: 0, noNaN: true }), (kg, seq) => parkedSeqOf(toBytes(parkedKey(kg, seq))) === seq));
  t.pass('for any key group and sequence number');
});

void t.test('keys of one key group sort contiguously, before every key of a later key group', async (t) => {
  fc.assert(
    fc.property(fc.array(anyKey, { minLength: 2, maxLength: 40 }), (keys) => {
      const sorted = [...keys].sort((a, b) => byteOrder(a.key, b.key));
      // Sorted by bytes, the key groups never decrease: each key group is one contiguous run.
      for (let i = 1; i < sorted.length; i++) if (sorted[i - 1]!.kg > sorted[i]!.kg) return false;
      return true;
    }),
  );
  // The edges of the u16 key group and of the space byte.
  const last0 = userStateKey(instancePrefix(0, '\u{10FFFF}', '\u00ff'.repeat(10)), '\u00ff');
  const first1 = userStateKey(instancePrefix(1, '', ''), '');
  t.ok(byteOrder(last0, first1) < 0, 'a large key of key group 0 sorts before the smallest of key group 1');
  t.ok(byteOrder(parkedKey(0xff, Number.MAX_VALUE), userStateKey(instancePrefix(0x100, 'a/b', 'x'), 's')) < 0, 'key group 255 before 256');
});

void t.test('the spaces of one key group are separate ranges: user, timer, token, parked', async (t) => {
  fc.assert(
    fc.property(anyKey, anyKey, (a, b) => {
      if (a.kg !== b.kg) return true;
      const sa = a.key.charCodeAt(2);
      const sb = b.key.charCodeAt(2);
      return sa === sb || Math.sign(byteOrder(a.key, b.key)) === Math.sign(sa - sb);
    }),
  );
  t.same(
    [Space.USER, Space.TIMER, Space.TOKEN, Space.PARKED].map((s) => keyGroupPrefix(7, s).charCodeAt(2)),
    [1, 2, 3, 4],
  );
});

void t.test('distinct (type, id, state name) give distinct user state keys, even with NUL, 0xff and non-ASCII', async (t) => {
  const triple = fc.tuple(tricky, tricky, tricky);
  fc.assert(
    fc.property(kgArb, triple, triple, (kg, [ta, ia, na], [tb, ib, nb]) => {
      fc.pre(ta !== tb || ia !== ib || na !== nb);
      return userStateKey(instancePrefix(kg, ta, ia), na) !== userStateKey(instancePrefix(kg, tb, ib), nb);
    }),
    { numRuns: 2000 },
  );
  // The hard cases: the same characters cut into (type, id, name) at different places.
  fc.assert(
    fc.property(kgArb, tricky, tricky, fc.nat(), fc.nat(), fc.nat(), fc.nat(), (kg, s1, s2, a, b, c, d) => {
      const all = s1 + s2;
      const cut = (x: number, y: number): [string, string, string] => {
        const [i, j] = [x % (all.length + 1), y % (all.length + 1)].sort((p, q) => p - q) as [number, number];
        return [all.slice(0, i), all.slice(i, j), all.slice(j)];
      };
      const [ta, ia, na] = cut(a, b);
      const [tb, ib, nb] = cut(c, d);
      fc.pre(ta !== tb || ia !== ib);
      return userStateKey(instancePrefix(kg, ta, ia), na) !== userStateKey(instancePrefix(kg, tb, ib), nb);
    }),
    { numRuns: 2000 },
  );
  // Hand-picked near misses: the boundary between type and id must not be ambiguous.
  const cases: Array<[string, string, string]> = [
    ['a', 'b\u0000c', 's'],
    ['a\u0000', 'b', '\u0000cs'],
    ['a\u0000b', '', 'cs'],
    ['a', '\u00ff', 's'],
    ['a', '\u00c3\u00bf', 's'], // the latin1 view of UTF-8 0xc3 0xbf ('\u00ff')
    ['a', '\u00ff\u00ff', ''],
    ['a', '\u00ff', '\u00ff'],
    ['a\u0000', 'b', 's'],
    ['a', '\u0000b', 's'],
  ];
  const keys = new Set(cases.map(([type, id, name]) => userStateKey(instancePrefix(3, type, id), name)));
  t.equal(keys.size, cases.length, 'hand-picked cases are all distinct');
});

void t.test("an instance prefix starts each of its own state keys and no other instance's keys", async (t) => {
  fc.assert(
    fc.property(kgArb, tricky, tricky, tricky, tricky, tricky, (kg, type, id, otherType, otherId, name) => {
      const mine = instancePrefix(kg, type, id);
      if (!userStateKey(mine, name).startsWith(mine)) return false;
      if (type === otherType && id === otherId) return true;
      const theirs = instancePrefix(kg, otherType, otherId);
      // Neither instance's scan range may contain the other's state.
      return !userStateKey(theirs, name).startsWith(mine) && !userStateKey(mine, name).startsWith(theirs);
    }),
    { numRuns: 2000 },
  );
  t.notOk(userStateKey(instancePrefix(0, 'a/b', 'user1'), 'x').startsWith(instancePrefix(0, 'a/b', 'user')), 'an id that extends another id');
  t.notOk(userStateKey(instancePrefix(0, 'a/b', 'u'), 'x').startsWith(instancePrefix(1, 'a/b', 'u')), 'same instance name in another key group');
});

void t.test('identifiers are encoded as UTF-8 bytes', async (t) => {
  const key = instancePrefix(0, 'n/t', '\u00e9\u{1F600}');
  t.equal(Buffer.from(toBytes(key)).subarray(3).toString('hex'), '0003' + Buffer.from('n/t').toString('hex') + '0006' + 'c3a9f09f9880');
  t.throws(() => instancePrefix(0, 'n/t', 'x'.repeat(0x10000)), RangeError, 'ids longer than 65535 bytes are refused');
  t.doesNotThrow(() => instancePrefix(0, 'n/t', 'x'.repeat(0xffff)), '65535 bytes fit');
});

void t.test('timer keys of one key group sort by fire time', async (t) => {
  fc.assert(
    fc.property(kgArb, fc.double({ min: 0, noNaN: true }), fc.double({ min: 0, noNaN: true }), tricky, tricky, (kg, a, b, id, token) => {
      fc.pre(a !== b);
      const order = byteOrder(timerKey(kg, a, 'f/t', id, token), timerKey(kg, b, 'z/z', '', ''));
      return Math.sign(order) === Math.sign(a - b);
    }),
  );
  t.ok(byteOrder(timerKey(0, 1e12, 'a/b', 'x', 't'), timerKey(0, 1e12 + 1, 'a/b', 'x', 't')) < 0, 'one millisecond apart');
});

void t.test('prefixEnd is above every key with the prefix and at most any larger key without it', async (t) => {
  const latin1 = fc.string({ unit: fc.integer({ min: 0, max: 0xff }).map((c) => String.fromCharCode(c)), maxLength: 6 });
  fc.assert(
    fc.property(latin1, latin1, latin1, (prefix, suffix, other) => {
      fc.pre(/[^\u00ff]/.test(prefix)); // a prefix of only 0xff bytes has no upper bound
      const end = prefixEnd(prefix);
      if (!(byteOrder(prefix + suffix, end) < 0)) return false;
      if (byteOrder(prefix, end) >= 0) return false;
      // A key that does not start with the prefix and sorts after it is at or past the end.
      if (!other.startsWith(prefix) && byteOrder(other, prefix) > 0 && byteOrder(other, end) < 0) return false;
      return true;
    }),
    { numRuns: 2000 },
  );
  t.equal(prefixEnd('ab'), 'ac');
  t.equal(prefixEnd('a\u00ff\u00ff'), 'b', 'trailing 0xff bytes carry');
  t.equal(prefixEnd('\u0000'), '\u0001');
  t.throws(() => prefixEnd('\u00ff\u00ff'), RangeError, 'all-0xff prefix');
  t.throws(() => prefixEnd(''), RangeError, 'empty prefix');
});

void t.test('toBytes and fromBytes convert keys losslessly, and f64 values round-trip', async (t) => {
  const all = Array.from({ length: 256 }, (_, i) => String.fromCharCode(i)).join('');
  t.equal(fromBytes(toBytes(all)), all);
  t.equal(toBytes(all).byteLength, 256, 'one byte per char');
  const view = new Uint8Array([9, 0x61, 0xff, 9]).subarray(1, 3);
  t.equal(fromBytes(view), 'a\u00ff', 'respects the offset and length of a view');
  for (const n of [0, 1, -1, 1.5, Number.MAX_VALUE, Number.MIN_VALUE, 1_700_000_000_000.25, Infinity]) {
    t.equal(decodeF64(encodeF64(n)), n, `${n}`);
  }
  const inside = new Uint8Array(16);
  inside.set(encodeF64(42.5), 4);
  t.equal(decodeF64(inside.subarray(4, 12)), 42.5, 'decodes from a view at an offset');
});
