/**
 * The bank job: requests (inserts, reads, writes, adds, subtracts, transfers) arrive on the
 * `requests` ingress; account operations are routed to their account, transfers to a 2PC or a saga
 * coordinator, and every request gets one record on the `responses` egress. Requests are dealt to
 * splits by account, so each account sees its own requests in input order.
 */
import { defineJob, defineRouter, memoryEgress, memoryIngress, type Route, routeTo } from '../../index.js';
import { account } from './account.js';
import { transfer, transferSaga } from './transfer.js';
import type { BankRequest } from './workload.js';

/** Account operations go to their account, transfers to a 2PC or saga coordinator instance. */
export function routeRequest(request: BankRequest): Route {
  if (request.op === 'transfer') {
    const { account: coordinator, protocol, op: _op, ...message } = request;
    return routeTo((protocol === '2pc' ? transfer : transferSaga).address(coordinator), message);
  }
  const { account: id, ...message } = request;
  return routeTo(account.address(id), message);
}

const requests = memoryIngress<BankRequest>('requests', { splitBy: (request) => request.account });

export default defineJob({
  name: 'bank',
  module: import.meta.url,
  functions: [account, transfer, transferSaga],
  ingresses: [requests],
  routers: [defineRouter(requests, routeRequest)],
  egresses: [memoryEgress('responses')],
});
