import t from 'tap';
import protobuf from 'protobufjs';
import { type Codec, decodeOrExplain, defaultCodec, jsonCodec, protobufCodec } from '../../engine/codec.js';
import { EddyError } from '../../engine/errors.js';

const { root } = protobuf.parse(`
  syntax = "proto3";
  package test.codec;
  message Greeting {
    string name = 1;
    int64 visits = 2;
    bytes avatar = 3;
    repeated string tags = 4;
    Visit last = 5;
    repeated sint64 deltas = 6;
    map<string, fixed64> totals = 7;
    uint64 big = 8;
  }
  message Visit {
    sfixed64 at = 1;
  }
`);
const Greeting = root.lookupType('test.codec.Greeting');

interface GreetingValue {
  name: string;
  visits: string;
  avatar: Uint8Array;
  tags: string[];
}

void t.test('json codec round-trips JSON values', async (t) => {
  const codec = jsonCodec();
  t.equal(codec.name, 'json');
  const values: unknown[] = [null, 0, -1.5, 'text with \u00e9 and \u{1F600}', [], [1, 'a', null], { nested: { list: [true, false] } }];
  for (const value of values) t.same(codec.decode(codec.encode(value)), value, JSON.stringify(value));
  t.equal(Buffer.from(codec.encode({ a: 'é' })).toString('utf8'), '{"a":"é"}', 'UTF-8 JSON text');
  t.equal(defaultCodec.name, 'json', 'the default codec is JSON');
});

void t.test('json codec refuses values JSON cannot represent', async (t) => {
  const codec = jsonCodec();
  for (const value of [undefined, () => 1, Symbol('s')]) {
    t.throws(() => codec.encode(value), { code: 'EDDY_UNDECODABLE_PAYLOAD', message: /json codec cannot encode/ }, typeof value);
  }
});

void t.test('protobuf codec round-trips a message as a plain object and names the type', async (t) => {
  const codec = protobufCodec<GreetingValue>(Greeting);
  t.equal(codec.name, 'protobuf:test.codec.Greeting');
  const value = { name: 'Ada', visits: '9007199254740993', avatar: new Uint8Array([0, 255, 7]), tags: ['a', 'b'] };
  const bytes = codec.encode(value);
  t.same(Greeting.toObject(Greeting.decode(bytes), { longs: String }), value, 'the bytes are the protobuf encoding');
  const back = codec.decode(bytes);
  t.equal(back.name, 'Ada');
  t.equal(back.visits, '9007199254740993', 'int64 beyond 2^53 survives as a string');
  t.same([...back.avatar], [0, 255, 7]);
  t.same(back.tags, ['a', 'b']);
  t.equal(Object.getPrototypeOf(back), Object.prototype, 'a plain object, not a protobufjs message');
  const empty = codec.decode(codec.encode({} as GreetingValue));
  t.same({ name: empty.name, visits: empty.visits, tags: empty.tags, avatar: [...empty.avatar] }, { name: '', visits: '0', tags: [], avatar: [] }, 'defaults are filled in');
});

void t.test('protobuf codec encodes what it decoded: 64-bit integers as decimal strings, nested, repeated and in maps', async (t) => {
  const codec = protobufCodec<Record<string, unknown>>(Greeting);
  const value = {
    name: 'Grace',
    visits: '-9223372036854775808',
    last: { at: '-1' },
    deltas: ['9223372036854775807', '-5', '0'],
    totals: { a: '18446744073709551615', b: '1' },
    big: '18446744073709551615',
  };
  const once = codec.decode(codec.encode(value));
  t.match(once, value, 'decimal strings in, the same strings out');
  const twice = codec.decode(codec.encode(once));
  t.same(twice, once, 'a decoded value encodes again to the same value');
  t.equal(value.visits, '-9223372036854775808', 'the caller\'s value is not modified');
});

void t.test('protobuf codec refuses a value that does not fit the type, naming the type and the field', async (t) => {
  const codec = protobufCodec<Record<string, unknown>>(Greeting);
  const refused: Array<[Record<string, unknown>, RegExp]> = [
    [{ name: 42 }, /test\.codec\.Greeting.*name: string expected/],
    [{ visits: 'many' }, /visits: integer\|Long expected/],
    [{ visits: '9223372036854775808' }, /visits: integer\|Long expected/], // one past the int64 maximum
    [{ big: '-1' }, /big: integer\|Long expected/], // unsigned
    [{ deltas: ['1', 'x'] }, /deltas: integer\|Long\[\] expected/],
    [{ last: { at: 1.5 } }, /last\.at: integer\|Long expected/],
    [{ tags: 'not a list' }, /tags: array expected/],
  ];
  for (const [value, message] of refused) {
    t.throws(() => codec.encode(value), { code: 'EDDY_UNDECODABLE_PAYLOAD', message }, JSON.stringify(value));
  }
});

void t.test('decodeOrExplain names the codec and the place when the bytes are garbage, keeping the cause', async (t) => {
  const garbage = new Uint8Array([0xff, 0xfe, 0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f]);
  const cases: Array<[string, Codec<unknown>]> = [
    ['json', jsonCodec()],
    ['protobuf:test.codec.Greeting', protobufCodec(Greeting)],
  ];
  for (const [name, codec] of cases) {
    let thrown: unknown;
    try {
      decodeOrExplain(codec, garbage, 'message to bank/account:42');
    } catch (error) {
      thrown = error;
    }
    t.type(thrown, EddyError, name);
    const error = thrown as EddyError;
    t.equal(error.code, 'EDDY_UNDECODABLE_PAYLOAD', `${name}: code`);
    t.match(error.message, `message to bank/account:42: 8 bytes are not valid ${name}`, `${name}: names the place, the size and the codec`);
    t.equal(error.retryable, false, `${name}: undecodable bytes never become decodable`);
    t.type(error.cause, Error, `${name}: keeps the decoder's error as cause`);
  }
  t.same(decodeOrExplain(jsonCodec(), new TextEncoder().encode('{"ok":1}'), 'x'), { ok: 1 }, 'valid bytes decode');
});

void t.test('jsonCodec.encodeAfter leaves the header bytes free and encodes the same bytes as encode behind them', async (t) => {
  const codec = jsonCodec<{ name: string; n: number }>();
  const value = { name: 'ünïcode ✓', n: 42 };
  const bytes = codec.encodeAfter!(value, 9);
  const plain = codec.encode(value);
  t.equal(bytes.byteLength, 9 + plain.byteLength);
  t.same(Buffer.from(bytes.subarray(9)), Buffer.from(plain));
  t.same(codec.decode(bytes.subarray(9)), value);
  t.throws(() => codec.encodeAfter!(undefined as never, 1), { code: 'EDDY_UNDECODABLE_PAYLOAD' });
});
