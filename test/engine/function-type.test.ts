import t from 'tap';
import fc from 'fast-check';
import { jsonCodec } from '../../engine/codec.js';
import { EddyError } from '../../engine/errors.js';
import { defineFunction, egressType, formatAddress, validateAddress, valueState } from '../../engine/function-type.js';
import { memoryEgress } from '../../connectors/memory.js';
import { instancePrefix, userStateKey } from '../../engine/state/state-keys.js';

function thrownBy(fn: () => unknown): EddyError | undefined {
  try {
    fn();
  } catch (error) {
    if (error instanceof EddyError) return error;
    throw error;
  }
  return undefined;
}

void t.test('function type names must look like namespace/name', async (t) => {
  const bad = ['', 'account', 'bank/', '/account', 'bank/account/x', 'bank account/x', 'bank/acc\u00f6unt', 'bank:x/y', 'bank/account\n'];
  for (const type of bad) {
    const error = thrownBy(() => defineFunction({ type, handler: () => {} }));
    t.equal(error?.code, 'EDDY_INVALID_JOB', `${JSON.stringify(type)} is refused`);
    t.match(error?.message ?? '', `defineFunction: function type ${JSON.stringify(type)} must look like "namespace/name"`, `${JSON.stringify(type)}: named in the message`);
  }
  for (const type of ['bank/account', 'a/b', 'My.Name-space_2/Type.v2-x_y']) {
    t.equal(defineFunction({ type, handler: () => {} }).type, type, `${type} is accepted`);
  }
});

void t.test('defineFunction refuses a missing handler and state not declared with valueState', async (t) => {
  const noHandler = thrownBy(() => defineFunction({ type: 'bank/account', handler: undefined as never }));
  t.equal(noHandler?.code, 'EDDY_INVALID_JOB');
  t.match(noHandler?.message ?? '', 'function bank/account: handler must be a function');
  const badState = thrownBy(() => defineFunction({ type: 'bank/account', state: { balance: 0 } as never, handler: () => {} }));
  t.equal(badState?.code, 'EDDY_INVALID_JOB');
  t.match(badState?.message ?? '', 'function bank/account: state "balance" must be declared with valueState()');
});

void t.test('defineFunction fills in defaults and builds addresses of its type', async (t) => {
  const fn = defineFunction({ type: 'bank/account', handler: () => {} });
  t.equal(fn.kind, 'regular');
  t.same(fn.state, {});
  t.equal(fn.codec.name, 'json');
  t.equal(fn.onInvocationFailed, undefined);
  t.same(fn.address('42'), { type: 'bank/account', id: '42' });
  t.equal(formatAddress(fn.address('42')), 'bank/account:42');
});

void t.test('valueState ttlMs must be a positive number of milliseconds', async (t) => {
  for (const ttlMs of [0, -1, Number.NaN, Number.POSITIVE_INFINITY, '1000' as unknown as number]) {
    const error = thrownBy(() => valueState({ ttlMs }));
    t.equal(error?.code, 'EDDY_INVALID_JOB', `ttlMs ${String(ttlMs)} is refused`);
    t.match(error?.message ?? '', 'valueState ttlMs must be a positive number of milliseconds', `ttlMs ${String(ttlMs)}: names ttlMs`);
  }
  t.equal(valueState({ ttlMs: 1 }).ttlMs, 1);
  t.equal(valueState({ ttlMs: 0.5 }).ttlMs, 0.5, 'fractions of a millisecond are allowed');
  t.equal(valueState().ttlMs, undefined, 'no TTL by default');
  t.equal(valueState().codec.name, 'json', 'JSON by default');
  const codec = jsonCodec<number>();
  t.equal(valueState({ codec }).codec, codec, 'a given codec is kept');
});

void t.test('validateAddress accepts { type, id } with a non-empty id and refuses anything else', async (t) => {
  t.doesNotThrow(() => validateAddress({ type: 'bank/account', id: 'caf\u00e9 \u{1F600} \u0000' }, 'test'));
  const bad: unknown[] = [undefined, null, 'bank/account:1', { type: 'bank/account' }, { type: 'bank/account', id: '' }, { type: 1, id: 'x' }, { type: 'bank/account', id: 7 }];
  for (const value of bad) {
    const error = thrownBy(() => validateAddress(value, 'router of ingress orders'));
    t.equal(error?.code, 'EDDY_INVALID_ADDRESS', `${JSON.stringify(value)} is refused`);
    t.match(error?.message ?? '', 'router of ingress orders: ', `${JSON.stringify(value)}: names where`);
  }
});

void t.test('validateAddress refuses ids with unpaired surrogates, which UTF-8 cannot carry', async (t) => {
  // UTF-8 (state keys, the wire format) has no encoding for a lone surrogate: Node writes U+FFFD, so
  // these ids would share one instance's state, and a peer cannot decode them off the wire.
  const a = 'user\uD800';
  const b = 'user\uDC00';
  t.equal(userStateKey(instancePrefix(0, 'bank/account', a), 's'), userStateKey(instancePrefix(0, 'bank/account', b), 's'), 'the collision this prevents');
  for (const id of [a, b, '\uDC00\uD800', '\uD83D']) {
    const error = thrownBy(() => validateAddress({ type: 'bank/account', id }, 'send from bank/transfer:1'));
    t.equal(error?.code, 'EDDY_INVALID_ADDRESS', `${JSON.stringify(id)} is refused`);
    t.match(error?.message ?? '', 'send from bank/transfer:1', 'names where');
    t.match(error?.message ?? '', 'well-formed', 'says what is wrong');
  }
  fc.assert(fc.property(fc.string({ unit: 'binary', minLength: 1 }), (id) => {
    validateAddress({ type: 'bank/account', id }, 'test');
    return true;
  }), { numRuns: 500 });
  t.pass('every well-formed non-empty id is accepted');
});

void t.test('declared egresses must be keyed by their names', async (t) => {
  const misnamed = thrownBy(() => defineFunction({ type: 'bank/account', egresses: { responses: memoryEgress('replies') }, handler: () => {} }));
  t.equal(misnamed?.code, 'EDDY_INVALID_JOB');
  t.match(misnamed?.message ?? '', 'function bank/account: egresses.responses is the egress "replies"; use its name as the key');
  const notAnEgress = thrownBy(() => defineFunction({ type: 'bank/account', egresses: { responses: 'responses' } as never, handler: () => {} }));
  t.equal(notAnEgress?.code, 'EDDY_INVALID_JOB');
  t.match(notAnEgress?.message ?? '', 'egresses.responses must be an egress or egressType<Record>()');
  const fn = defineFunction({ type: 'bank/account', egresses: { replies: memoryEgress('replies'), audit: egressType<string>() }, handler: () => {} });
  t.same(fn.egresses, ['replies', 'audit'], 'the declared names are kept for the job to check');
});
