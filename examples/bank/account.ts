/**
 * YCSB-style bank accounts. Each account record has 10 fields of 128 random bits and an integer
 * balance. Operations: insert, read (record to egress), write (replace one field, ack to egress),
 * add and subtract (subtract fails with InsufficientFunds when the balance would go negative).
 * The account function takes `add`/`subtract` from any caller, so transfer coordinators can use it
 * as a participant without changes.
 */
import { defineFunction, egressType, InvocationFailed, valueState } from '../../index.js';

export const FIELD_COUNT = 10;

export interface AccountRecord {
  /** FIELD_COUNT fields, each 128 random bits as 32 hex digits. */
  fields: string[];
  balance: number;
}

export type AccountOp =
  | { op: 'insert'; requestId: string; record: AccountRecord }
  | { op: 'read'; requestId: string }
  | { op: 'write'; requestId: string; field: number; value: string }
  | { op: 'add'; requestId: string; amount: number }
  | { op: 'subtract'; requestId: string; amount: number };

/** What the `responses` egress receives for each request. */
export interface Response {
  requestId: string;
  account: string;
  op: AccountOp['op'];
  /** 200 done, 404 no such account, 422 refused (insufficient funds), 400 bad request. */
  status: 200 | 400 | 404 | 422;
  balance?: number;
  record?: AccountRecord;
}

export class InsufficientFunds extends InvocationFailed {}
export class NoSuchAccount extends InvocationFailed {}
export class BadRequest extends InvocationFailed {}

const state = { account: valueState<AccountRecord>() };

export const account = defineFunction({
  type: 'bank/account',
  state,
  // The memory and Kafka bank jobs each define their own `responses` egress: declare its record type.
  egresses: { responses: egressType<Response>() },
  handler(ctx, message: AccountOp) {
    const respond = (status: Response['status'], extra: Partial<Response> = {}): void =>
      ctx.egress('responses', { requestId: message.requestId, account: ctx.self.id, op: message.op, status, ...extra });
    if (message.op === 'insert') {
      ctx.state.account.set(message.record);
      respond(200, { balance: message.record.balance });
      return;
    }
    const record = ctx.state.account.get();
    if (record === undefined) throw new NoSuchAccount(`account ${ctx.self.id} does not exist`);
    switch (message.op) {
      case 'read':
        respond(200, { record, balance: record.balance });
        return;
      case 'write':
        if (!Number.isInteger(message.field) || message.field < 0 || message.field >= FIELD_COUNT) {
          throw new BadRequest(`field must be 0..${FIELD_COUNT - 1}, got ${message.field}`);
        }
        record.fields[message.field] = message.value;
        ctx.state.account.set(record);
        respond(200);
        return;
      case 'add':
        record.balance += message.amount;
        ctx.state.account.set(record);
        respond(200, { balance: record.balance });
        return;
      case 'subtract':
        if (record.balance < message.amount) {
          throw new InsufficientFunds(`account ${ctx.self.id} has ${record.balance}, cannot subtract ${message.amount}`);
        }
        record.balance -= message.amount;
        ctx.state.account.set(record);
        respond(200, { balance: record.balance });
        return;
    }
  },
  onInvocationFailed(ctx, error, message) {
    const status = error instanceof InsufficientFunds ? 422 : error instanceof NoSuchAccount ? 404 : 400;
    ctx.egress('responses', { requestId: message.requestId, account: ctx.self.id, op: message.op, status });
  },
});
