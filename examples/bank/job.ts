/**
 * The bank job: requests (inserts, reads, writes, adds, subtracts) arrive on the `requests` ingress,
 * each is routed to its account, and every request gets one record on the `responses` egress.
 * Requests are dealt to splits by account, so each account sees its requests in input order.
 */
import { defineJob, defineRouter, memoryEgress, memoryIngress } from '../../index.js';
import { account } from './account.js';
import type { BankRequest } from './workload.js';

export default defineJob({
  name: 'bank',
  module: import.meta.url,
  functions: [account],
  ingresses: [memoryIngress<BankRequest>('requests', { splitBy: (request) => request.account })],
  routers: [
    defineRouter<BankRequest>('requests', (request) => {
      const { account: id, ...message } = request;
      return { to: account.address(id), message };
    }),
  ],
  egresses: [memoryEgress('responses')],
});
