import t from 'tap';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';
import {
  decodeFromFunction,
  decodeKafkaProducerRecord,
  decodeToFunction,
  encodeFromFunction,
  encodeKafkaProducerRecord,
  encodeToFunction,
  functionTypeOf,
  KAFKA_PRODUCER_RECORD_TYPENAME,
  sfAddress,
  splitTypename,
  statefunTypes,
  typedValue,
  valueBytes,
} from '../../../engine/statefun/protocol.js';

// Request/response pairs captured from StateFun 3.3.0 calling the official Python SDK (a greeter with
// one int state `seen`); the .txt files are the same messages in protobuf text format.
const wireDir = fileURLToPath(new URL('../../fixtures/statefun-wire/', import.meta.url));
const samples = readdirSync(wireDir).filter((f) => f.endsWith('.bin')).map((f) => f.slice(0, -4));

/** Protobuf text format as protoc/Python print it: fields in number order, bytes C-escaped (octal). */
function textFormat(type: protobuf.Type, message: Record<string, unknown>, indent = ''): string {
  let out = '';
  for (const field of [...type.fieldsArray].sort((a, b) => a.id - b.id)) {
    if (!Object.prototype.hasOwnProperty.call(message, field.name)) continue;
    const value = message[field.name];
    if (value === null || value === undefined) continue;
    const resolved = field.resolve().resolvedType;
    for (const item of field.repeated ? (value as unknown[]) : [value]) {
      if (resolved instanceof protobuf.Type) {
        out += `${indent}${snake(field.name)} {\n${textFormat(resolved, item as Record<string, unknown>, indent + '  ')}${indent}}\n`;
      } else if (resolved instanceof protobuf.Enum) {
        out += `${indent}${snake(field.name)}: ${resolved.valuesById[item as number]}\n`;
      } else if (field.type === 'bytes') {
        out += `${indent}${snake(field.name)}: "${cEscape(item as Uint8Array)}"\n`;
      } else if (field.type === 'string') {
        out += `${indent}${snake(field.name)}: "${cEscape(Buffer.from(item as string, 'utf8'))}"\n`;
      } else {
        out += `${indent}${snake(field.name)}: ${String(item)}\n`;
      }
    }
  }
  return out;
}

function snake(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

function cEscape(bytes: Uint8Array): string {
  let out = '';
  for (const b of bytes) {
    if (b === 0x0a) out += '\\n';
    else if (b === 0x0d) out += '\\r';
    else if (b === 0x09) out += '\\t';
    else if (b === 0x22) out += '\\"';
    else if (b === 0x27) out += "\\'";
    else if (b === 0x5c) out += '\\\\';
    else if (b >= 0x20 && b < 0x7f) out += String.fromCharCode(b);
    else out += `\\${b.toString(8).padStart(3, '0')}`;
  }
  return out;
}

function expectedText(name: string): string {
  return readFileSync(`${wireDir}${name}.txt`, 'utf8').split('\n').filter((line) => !line.startsWith('#')).join('\n');
}

void t.test('every captured sample decodes, prints as its .txt, and re-encodes byte for byte', async (t) => {
  t.equal(samples.length, 8, "all captured samples found");
  for (const name of samples) {
    const bytes = new Uint8Array(readFileSync(`${wireDir}${name}.bin`));
    const header = readFileSync(`${wireDir}${name}.txt`, 'utf8').split('\n')[0]!;
    if (name.includes('request')) {
      t.match(header, /^# ToFunction/, `${name} is a request`);
      const message = decodeToFunction(bytes);
      t.equal(textFormat(statefunTypes.ToFunction, message as Record<string, unknown>), expectedText(name), `${name} fields`);
      t.same(Buffer.from(encodeToFunction(message)), Buffer.from(bytes), `${name} re-encodes byte for byte`);
    } else {
      t.match(header, /^# FromFunction/, `${name} is a response`);
      const message = decodeFromFunction(bytes);
      t.equal(textFormat(statefunTypes.FromFunction, message as Record<string, unknown>), expectedText(name), `${name} fields`);
      t.same(Buffer.from(encodeFromFunction(message)), Buffer.from(bytes), `${name} re-encodes byte for byte`);
    }
  }
});

void t.test('decoded fields: the batched request carries the state value and two invocations in order', async (t) => {
  const request = decodeToFunction(readFileSync(`${wireDir}203-batched-request.bin`)).invocation!;
  t.equal(functionTypeOf(request.target!), 'example/greeter');
  t.equal(request.target!.id, 'user-410');
  t.equal(request.state![0]!.stateName, 'seen');
  t.same(Buffer.from(request.state![0]!.stateValue!.value!), Buffer.from([0x0d, 1, 0, 0, 0]), 'int 1 is sfixed32, not a varint');
  t.equal(request.invocations!.length, 2);
  t.notOk(request.invocations![0]!.caller, 'from an ingress: no caller');
});

void t.test('messages built here (defaults left out) are the bytes the Python SDK sent', async (t) => {
  const built = encodeFromFunction({
    incompleteInvocationContext: { missingValues: [{ stateName: 'seen', expirationSpec: {}, typeTypename: 'io.statefun.types/int' }] },
  });
  t.same(Buffer.from(built), readFileSync(`${wireDir}01-response.bin`), 'the missing-state answer');
  const result = encodeFromFunction({
    invocationResult: {
      stateMutations: [{ mutationType: 1, stateName: 'seen', stateValue: typedValue('io.statefun.types/int', Uint8Array.of(0x0d, 1, 0, 0, 0)) }],
      outgoingEgresses: [
        {
          egressNamespace: 'example',
          egressType: 'out',
          argument: typedValue('io.statefun.types/string', Buffer.concat([Uint8Array.of(0x0a, 23), Buffer.from('user-53;1;1493932125089')])),
        },
      ],
    },
  });
  t.same(Buffer.from(result), readFileSync(`${wireDir}03-response.bin`), 'an invocation result');
});

void t.test('a delayed message and its cancellation round-trip; int64 delay decodes to the same number', async (t) => {
  const bytes = encodeFromFunction({
    invocationResult: {
      delayedInvocations: [
        { delayInMs: 86_400_000 * 400, target: sfAddress('com.example.fns/greeter', 'a'), argument: typedValue('io.statefun.types/string', new Uint8Array(0)), cancellationToken: 't1' },
        { isCancellationRequest: true, cancellationToken: 't0' },
      ],
    },
  });
  const back = decodeFromFunction(bytes).invocationResult!.delayedInvocations!;
  t.equal(Number(back[0]!.delayInMs), 86_400_000 * 400);
  t.same(back[0]!.target, { namespace: 'com.example.fns', type: 'greeter', id: 'a' });
  t.equal(back[0]!.argument!.hasValue, true);
  t.equal(valueBytes(back[0]!.argument).byteLength, 0, 'an empty value is present with no bytes');
  t.equal(back[1]!.isCancellationRequest, true);
  t.equal(back[1]!.cancellationToken, 't0');
});

void t.test('KafkaProducerRecord round-trips', async (t) => {
  t.equal(KAFKA_PRODUCER_RECORD_TYPENAME, 'type.googleapis.com/io.statefun.sdk.egress.KafkaProducerRecord');
  const bytes = encodeKafkaProducerRecord({ key: 'k', valueBytes: Buffer.from('v'), topic: 'out' });
  t.same(Buffer.from(bytes), Buffer.from([0x0a, 1, 0x6b, 0x12, 1, 0x76, 0x1a, 3, 0x6f, 0x75, 0x74]));
  const back = decodeKafkaProducerRecord(bytes);
  t.equal(back.key, 'k');
  t.equal(back.topic, 'out');
});

void t.test('typenames split at the last slash; bad ones and undecodable bytes are named', async (t) => {
  t.same(splitTypename('com.example/fns/greeter'), { namespace: 'com.example/fns', name: 'greeter' });
  t.throws(() => splitTypename('greeter'), { code: 'EDDY_INVALID_ARGUMENT' });
  t.throws(() => splitTypename('ns/'), { code: 'EDDY_INVALID_ARGUMENT' });
  t.throws(() => decodeToFunction(Uint8Array.of(0xa2, 0x06, 0x50)), { code: 'EDDY_UNDECODABLE_PAYLOAD' });
});
