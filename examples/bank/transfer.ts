/**
 * Transfers between bank accounts, twice: as a two-phase-commit coordinator (serializable: nobody
 * ever sees the money in flight) and as a saga (no locks; a failed credit is compensated). The account
 * function takes part unchanged: `subtract` throws InsufficientFunds, which fails the transfer.
 */
import { egressType, sagaCoordinator, tpcCoordinator } from '../../index.js';
import { account } from './account.js';

export interface TransferRequest {
  requestId: string;
  from: string;
  to: string;
  amount: number;
  /** Times this transfer was chosen as a deadlock victim so far. */
  attempt?: number;
}

/** What the `responses` egress receives for a transfer. */
export interface TransferResponse {
  requestId: string;
  op: 'transfer';
  protocol: '2pc' | 'saga';
  /** 200 done, 422 refused (insufficient funds: nothing moved). */
  status: 200 | 422;
}

/** Legs answer under their own ids, so every request id is answered exactly once. */
const leg = (request: TransferRequest, side: 'debit' | 'credit'): string => `${request.requestId}:${side}`;

const egresses = { responses: egressType<TransferResponse>() };

export const transfer = tpcCoordinator('bank/transfer', (ctx, request: TransferRequest) => {
  ctx.invoke(account.address(request.from), { op: 'subtract', requestId: leg(request, 'debit'), amount: request.amount });
  ctx.invoke(account.address(request.to), { op: 'add', requestId: leg(request, 'credit'), amount: request.amount });
  ctx.onSuccess.egress('responses', { requestId: request.requestId, op: 'transfer', protocol: '2pc', status: 200 });
  ctx.onFailure.egress('responses', { requestId: request.requestId, op: 'transfer', protocol: '2pc', status: 422 });
  // A deadlock victim: try again a little later, with some jitter so the two do not meet again.
  const attempt = (request.attempt ?? 0) + 1;
  ctx.onRetryable.sendAfter(5 + ((attempt * 7919 + request.amount) % 20), ctx.self, { ...request, attempt });
}, { egresses });

export const transferSaga = sagaCoordinator('bank/transfer-saga', (ctx, request: TransferRequest) => {
  ctx.invokePair(
    account.address(request.from),
    { op: 'subtract', requestId: leg(request, 'debit'), amount: request.amount },
    { op: 'add', requestId: `${leg(request, 'debit')}:undo`, amount: request.amount },
  );
  ctx.invokePair(
    account.address(request.to),
    { op: 'add', requestId: leg(request, 'credit'), amount: request.amount },
    { op: 'subtract', requestId: `${leg(request, 'credit')}:undo`, amount: request.amount },
  );
  ctx.onSuccess.egress('responses', { requestId: request.requestId, op: 'transfer', protocol: 'saga', status: 200 });
  ctx.onFailure.egress('responses', { requestId: request.requestId, op: 'transfer', protocol: 'saga', status: 422 });
}, { egresses });
