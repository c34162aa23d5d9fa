import t from 'tap';
import protobuf from 'protobufjs';
import { jsonCodec, protobufCodec } from '../../../engine/codec.js';
import {
  boolType,
  doubleType,
  EDDY_JSON_TYPENAME,
  floatType,
  hasOwnTypename,
  intType,
  jsonType,
  longType,
  stringType,
  typenameOf,
} from '../../../engine/statefun/types.js';

const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');

void t.test('built-in types encode as the StateFun wrappers, fixed-width ints, defaults as zero bytes', async (t) => {
  t.equal(hex(intType.encode(3)), '0d03000000', 'int 3: sfixed32, as in the captured responses');
  t.equal(hex(intType.encode(-1)), '0dffffffff');
  t.equal(hex(intType.encode(0)), '', 'int 0: no bytes');
  t.equal(hex(longType.encode(1n)), '090100000000000000', 'long: sfixed64');
  t.equal(hex(longType.encode(-(1n << 63n))), '090000000000000080');
  t.equal(hex(longType.encode(0n)), '');
  t.equal(hex(boolType.encode(true)), '0801');
  t.equal(hex(boolType.encode(false)), '');
  t.equal(hex(floatType.encode(1.5)), '0d0000c03f');
  t.equal(hex(doubleType.encode(1.5)), '09000000000000f83f');
  t.equal(hex(doubleType.encode(0)), '');
  t.equal(hex(doubleType.encode(-0)), '090000000000000080', '-0 is not the default: kept');
  t.equal(hex(stringType.encode('user-53;1493932125089')), '0a15' + Buffer.from('user-53;1493932125089').toString('hex'));
  t.equal(hex(stringType.encode('')), '');
});

void t.test('built-in types decode what they encode, and what a protobuf library writes', async (t) => {
  for (const n of [0, 1, -1, 2147483647, -2147483648]) t.equal(intType.decode(intType.encode(n)), n);
  for (const n of [0n, 1n, -1n, (1n << 63n) - 1n, -(1n << 63n)]) t.equal(longType.decode(longType.encode(n)), n);
  for (const b of [true, false]) t.equal(boolType.decode(boolType.encode(b)), b);
  t.equal(floatType.decode(floatType.encode(0.1)), Math.fround(0.1), 'float rounds to 32 bits');
  t.equal(doubleType.decode(doubleType.encode(0.1)), 0.1);
  for (const s of ['', 'caf\u00e9', '\u{1F600}', 'x'.repeat(300)]) t.equal(stringType.decode(stringType.encode(s)), s);
  // Written by protobufjs from a .proto (an independent encoder), with an unknown field before the value.
  const root = protobuf.parse(`syntax = "proto3"; message I { int32 other = 7; sfixed32 value = 1; }
    message L { sfixed64 value = 1; } message S { string value = 1; }`).root;
  const I = root.lookupType('I');
  t.equal(intType.decode(I.encode({ other: 9, value: -7 }).finish()), -7, 'unknown fields are skipped');
  t.equal(longType.decode(root.lookupType('L').encode({ value: 1234567890123 }).finish()), 1234567890123n);
  t.equal(stringType.decode(root.lookupType('S').encode({ value: 'hi' }).finish()), 'hi');
});

void t.test('values of the wrong kind are refused with the type named', async (t) => {
  t.throws(() => intType.encode(1.5), { code: 'EDDY_UNDECODABLE_PAYLOAD' });
  t.throws(() => intType.encode(2 ** 31), { code: 'EDDY_UNDECODABLE_PAYLOAD' });
  t.throws(() => longType.encode(1 as unknown as bigint), { code: 'EDDY_UNDECODABLE_PAYLOAD' });
  t.throws(() => longType.encode(1n << 64n), { code: 'EDDY_UNDECODABLE_PAYLOAD' });
  t.throws(() => stringType.encode(5 as unknown as string), { code: 'EDDY_UNDECODABLE_PAYLOAD' });
  t.throws(() => intType.decode(Uint8Array.of(0x08, 0x03)), { code: 'EDDY_UNDECODABLE_PAYLOAD' }, 'a varint is not an sfixed32');
});

void t.test('typenames of codecs', async (t) => {
  t.equal(typenameOf(intType), 'io.statefun.types/int');
  t.equal(typenameOf(jsonType('com.example/User')), 'com.example/User');
  t.same(jsonType<{ a: number }>('com.example/User').decode(jsonType('com.example/User').encode({ a: 1 })), { a: 1 });
  t.equal(typenameOf(jsonCodec()), EDDY_JSON_TYPENAME);
  const root = protobuf.parse('syntax = "proto3"; package bank; message Account { int64 balance = 1; }').root;
  t.equal(typenameOf(protobufCodec(root.lookupType('bank.Account'))), 'type.googleapis.com/bank.Account');
  t.ok(hasOwnTypename(intType));
  t.ok(hasOwnTypename(protobufCodec(root.lookupType('bank.Account'))));
  t.notOk(hasOwnTypename(jsonCodec()));
  t.throws(() => jsonType('User'), { code: 'EDDY_INVALID_ARGUMENT' });
});
