/**
 * `npm run demo`: the bank on the embedded defaults (memory ingress and egress, LevelDB state in a
 * temporary folder). Loads the accounts, runs a seeded mix of reads, writes, adds and subtracts with
 * progress on the terminal, then checks the books: every request answered once, and the total
 * balance equals the initial total plus successful adds minus successful subtracts.
 *
 *   npm run demo -- --accounts 1000 --operations 200000 --workers 2 --seed 7
 */
import { parseArgs } from 'node:util';
import { engine, showProgress } from '../../index.js';
import type { Response } from './account.js';
import job from './job.js';
import { type BankRequest, insertRequests, operationRequests } from './workload.js';

const { values } = parseArgs({
  options: {
    accounts: { type: 'string', default: '1000' },
    operations: { type: 'string', default: '200000' },
    workers: { type: 'string', default: '2' },
    seed: { type: 'string', default: '7' },
  },
});
const accounts = Number(values.accounts);
const operations = Number(values.operations);
const workers = Number(values.workers);
const seed = Number(values.seed);
const initialBalance = 10_000;

const requests: BankRequest[] = [...insertRequests(accounts, seed, initialBalance), ...operationRequests({ accounts, operations, seed })];
console.log(`bank demo: ${accounts} accounts, ${operations} operations, ${workers} workers, seed ${seed}`);

const started = Date.now();
const handle = engine.submit(job, { workers, inputs: { requests } });
showProgress(handle, { total: requests.length, egress: 'responses' });
const summary = await handle.done;
const seconds = (Date.now() - started) / 1000;

const responses = handle.output<Response>('responses');
const byRequest = new Map(requests.map((r) => [r.requestId, r]));
const counts = new Map<string, number>();
let expectedTotal = accounts * initialBalance;
const lastBalance = new Map<string, number>();
const answered = new Set<string>();
for (const response of responses) {
  answered.add(response.requestId);
  const key = `${response.op} ${response.status}`;
  counts.set(key, (counts.get(key) ?? 0) + 1);
  const request = byRequest.get(response.requestId);
  if (response.status === 200 && request !== undefined && (request.op === 'add' || request.op === 'subtract')) {
    expectedTotal += request.op === 'add' ? request.amount : -request.amount;
  }
  if (response.balance !== undefined) lastBalance.set(response.account, response.balance);
}
const total = [...lastBalance.values()].reduce((a, b) => a + b, 0);

console.log(`\n${responses.length} responses in ${seconds.toFixed(1)} s (${Math.round(requests.length / seconds)} requests/s), ` +
  `latency p50 ${summary.latency.p50Ms.toFixed(1)} ms, p99 ${summary.latency.p99Ms.toFixed(1)} ms`);
for (const [key, count] of [...counts].sort()) console.log(`  ${key.padEnd(14)} ${count}`);
console.log(`  dead letters   ${summary.egress['dead-letters'] ?? 0}`);
const ok = answered.size === requests.length && responses.length === requests.length && total === expectedTotal;
console.log(`total balance ${total} (expected ${expectedTotal}): ${ok ? 'books balance, every request answered once' : 'MISMATCH'}`);
process.exitCode = ok ? 0 : 1;
