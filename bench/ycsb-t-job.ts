/**
 * The job the YCSB-T benchmark runs (the seed thesis's transfer experiment): YCSB accounts (10
 * fields of 128 random bits and a balance, 10000 at first), reads, writes, and transfers of 1 between
 * two distinct accounts as a two-phase-commit or a saga coordinator. A transfer marked `fail` fails
 * in its credit leg, so its debit is rolled back (2PC) or compensated (saga).
 */
import {
  defineFunction,
  defineJob,
  defineRouter,
  generatorIngress,
  InvocationFailed,
  memoryEgress,
  sagaCoordinator,
  tpcCoordinator,
  valueState,
} from '../index.js';
import { field, mix } from './ycsb-records.js';

export const INITIAL_BALANCE = 10_000;
export const SPLITS = 16;

export class TransferRefused extends InvocationFailed {}

interface AccountRecord {
  fields: string[];
  balance: number;
}

type AccountOp =
  | { op: 'insert'; requestId: number; fields: string[] }
  | { op: 'read'; requestId: number }
  | { op: 'write'; requestId: number; field: number; value: string }
  | { op: 'add' | 'subtract'; amount: number; fail?: boolean };

const state = { account: valueState<AccountRecord>() };

export const account = defineFunction<AccountOp, typeof state>({
  type: 'ycsbt/account',
  state,
  handler(ctx, message) {
    const record = ctx.state.account.get() ?? { fields: [], balance: INITIAL_BALANCE };
    switch (message.op) {
      case 'insert':
        // Keeps the balance: a transfer may have reached the account before its insert.
        ctx.state.account.set({ fields: message.fields, balance: record.balance });
        ctx.egress('responses', { requestId: message.requestId, status: 200 });
        return;
      case 'read':
        ctx.egress('responses', { requestId: message.requestId, status: 200, record });
        return;
      case 'write':
        record.fields[message.field] = message.value;
        ctx.state.account.set(record);
        ctx.egress('responses', { requestId: message.requestId, status: 200 });
        return;
      case 'add':
      case 'subtract': {
        if (message.fail === true) throw new TransferRefused('refused on purpose');
        const balance = message.op === 'add' ? record.balance + message.amount : record.balance - message.amount;
        if (balance < 0) throw new TransferRefused('insufficient funds');
        record.balance = balance;
        ctx.state.account.set(record);
        return;
      }
    }
  },
});

export interface Transfer {
  requestId: number;
  from: string;
  to: string;
  fail: boolean;
}

export const transfer = tpcCoordinator<Transfer>('ycsbt/transfer', (ctx, t) => {
  ctx.invoke(account.address(t.from), { op: 'subtract', amount: 1 });
  ctx.invoke(account.address(t.to), { op: 'add', amount: 1, fail: t.fail });
  ctx.onSuccess.egress('responses', { requestId: t.requestId, status: 200 });
  ctx.onFailure.egress('responses', { requestId: t.requestId, status: 422 });
  // Deadlock victim: answered as retryable (the client would retry), so the rate stays the offered one.
  ctx.onRetryable.egress('responses', { requestId: t.requestId, status: 409 });
});

export const transferSaga = sagaCoordinator<Transfer>('ycsbt/transfer-saga', (ctx, t) => {
  ctx.invokePair(account.address(t.from), { op: 'subtract', amount: 1 }, { op: 'add', amount: 1 });
  ctx.invokePair(account.address(t.to), { op: 'add', amount: 1, fail: t.fail }, { op: 'subtract', amount: 1 });
  ctx.onSuccess.egress('responses', { requestId: t.requestId, status: 200 });
  ctx.onFailure.egress('responses', { requestId: t.requestId, status: 422 });
});

export interface YcsbTParams {
  keys: number;
  seed: number;
  /** Share of operations that are transfers; the rest is half reads, half writes. */
  transferRatio: number;
  /** Share of transfers that fail in their second leg. */
  failRatio: number;
  protocol: 'tpc' | 'saga';
  distribution: 'uniform' | 'zipfian';
}

export type YcsbTRequest =
  | { kind: 'account'; key: string; message: AccountOp }
  | { kind: 'transfer'; protocol: 'tpc' | 'saga'; coordinator: string; message: Transfer };


/** Zipfian (theta 0.99) ranks over `n` keys, YCSB's generator (Gray et al.), with its constants cached per n. */
const zipfCache = new Map<number, { zetan: number; alpha: number; eta: number }>();
function zipfian(n: number, uniform: number): number {
  const theta = 0.99;
  let c = zipfCache.get(n);
  if (c === undefined) {
    let zetan = 0;
    for (let i = 1; i <= n; i++) zetan += 1 / i ** theta;
    const zeta2 = 1 + 1 / 2 ** theta;
    c = { zetan, alpha: 1 / (1 - theta), eta: (1 - (2 / n) ** (1 - theta)) / (1 - zeta2 / zetan) };
    zipfCache.set(n, c);
  }
  const uz = uniform * c.zetan;
  if (uz < 1) return 0;
  if (uz < 1 + 0.5 ** theta) return 1;
  return Math.min(n - 1, Math.floor(n * (c.eta * uniform - c.eta + 1) ** c.alpha));
}

function keyAt(params: YcsbTParams, split: number, index: number, salt: number): string {
  const uniform = mix(params.seed, split, index, salt) / 2 ** 32;
  const rank = params.distribution === 'zipfian' ? zipfian(params.keys, uniform) : Math.floor(uniform * params.keys);
  return `user${rank}`;
}

/** Split s first inserts its keys (s, s + SPLITS, ...), then runs the workload over all keys. */
export function generateRequest(params: YcsbTParams, index: number, split: number): YcsbTRequest {
  const keysInSplit = Math.max(1, Math.ceil((params.keys - split) / SPLITS));
  const requestId = index * SPLITS + split;
  if (index < keysInSplit) {
    const fields = Array.from({ length: 10 }, (_, n) => field(params.seed, split, index, n));
    return { kind: 'account', key: `user${split + index * SPLITS}`, message: { op: 'insert', requestId, fields } };
  }
  const pick = mix(params.seed, split, index, 1) / 2 ** 32;
  if (pick < params.transferRatio) {
    const from = keyAt(params, split, index, 2);
    let to = keyAt(params, split, index, 3);
    if (to === from) to = `user${(Number(from.slice(4)) + 1) % params.keys}`;
    const fail = mix(params.seed, split, index, 4) / 2 ** 32 < params.failRatio;
    // One coordinator instance per transfer (the seed's benchmark keys it by a fresh request id); the
    // engine bounds how many run at once (maxTransactionsPerWorker).
    return { kind: 'transfer', protocol: params.protocol, coordinator: `t${requestId}`, message: { requestId, from, to, fail } };
  }
  const key = keyAt(params, split, index, 5);
  if (pick < params.transferRatio + (1 - params.transferRatio) / 2) return { kind: 'account', key, message: { op: 'read', requestId } };
  return { kind: 'account', key, message: { op: 'write', requestId, field: mix(params.seed, split, index, 6) % 10, value: field(params.seed, split, index, 7) } };
}

export default defineJob({
  name: 'ycsb-t',
  module: import.meta.url,
  functions: [account, transfer, transferSaga],
  ingresses: [generatorIngress<YcsbTRequest, YcsbTParams>('requests', { splits: SPLITS, generate: generateRequest })],
  routers: [
    defineRouter<YcsbTRequest>('requests', (request) =>
      request.kind === 'account'
        ? { to: account.address(request.key), message: request.message }
        : { to: (request.protocol === 'tpc' ? transfer : transferSaga).address(request.coordinator), message: request.message },
    ),
  ],
  egresses: [memoryEgress('responses', { retain: false })],
});
