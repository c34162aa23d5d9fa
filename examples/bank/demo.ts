/**
 * `npm run demo`: the bank on the embedded defaults (memory ingress and egress, LevelDB state in a
 * temporary folder). Loads the accounts, runs a seeded mix of reads, writes, adds, subtracts and
 * transfers (two-phase commit and sagas) with progress on the terminal, then checks the books: every
 * request answered once, and the total balance equals the initial total plus successful adds minus
 * successful subtracts (transfers move money, they never make or lose any).
 *
 *   npm run demo -- --accounts 1000 --operations 40000 --workers 2 --seed 7
 */
import { parseArgs } from 'node:util';
import { type DeadLetter, engine, showProgress } from '../../index.js';
import type { Response } from './account.js';
import job from './job.js';
import type { TransferResponse } from './transfer.js';
import { type BankRequest, insertRequests, operationRequests } from './workload.js';

const { values } = parseArgs({
  options: {
    accounts: { type: 'string', default: '1000' },
    operations: { type: 'string', default: '40000' },
    workers: { type: 'string', default: '2' },
    seed: { type: 'string', default: '7' },
  },
});
const accounts = Number(values.accounts);
const operations = Number(values.operations);
const workers = Number(values.workers);
const seed = Number(values.seed);
const initialBalance = 10_000;

const mix = { read: 0.3, write: 0.1, add: 0.1, subtract: 0.1, transfer2pc: 0.25, transferSaga: 0.15 };
const requests: BankRequest[] = [...insertRequests(accounts, seed, initialBalance), ...operationRequests({ accounts, operations, seed, mix })];
console.log(`bank demo: ${accounts} accounts, ${operations} operations, ${workers} workers, seed ${seed}`);

const started = Date.now();
const handle = engine.submit(job, { workers, inputs: { requests } });
showProgress(handle, { total: requests.length, egress: 'responses' });
const summary = await handle.done;
const seconds = (Date.now() - started) / 1000;

// Transfer legs answer under `<request id>:debit` and `:credit` (`:undo` for a saga's compensation).
const all = handle.output<Response | TransferResponse>('responses');
const responses = all.filter((r) => !r.requestId.includes(':'));
const legs = all.filter((r): r is Response => r.requestId.includes(':'));
const byRequest = new Map(requests.map((r) => [r.requestId, r]));
const counts = new Map<string, number>();
let expectedTotal = accounts * initialBalance;
const lastBalance = new Map<string, number>();
const answered = new Set<string>();
for (const response of responses) {
  answered.add(response.requestId);
  const key = response.op === 'transfer' ? `transfer ${response.protocol} ${response.status}` : `${response.op} ${response.status}`;
  counts.set(key, (counts.get(key) ?? 0) + 1);
  const request = byRequest.get(response.requestId);
  if (response.status === 200 && request !== undefined && (request.op === 'add' || request.op === 'subtract')) {
    expectedTotal += request.op === 'add' ? request.amount : -request.amount;
  }
}
// Responses of one account arrive in the order it processed them, transfer legs included.
for (const response of all) {
  if ('balance' in response && response.balance !== undefined && response.status === 200) lastBalance.set(response.account, response.balance);
}
const total = [...lastBalance.values()].reduce((a, b) => a + b, 0);
// A saga's compensation can fail for good (its credit was spent meanwhile): it is a dead letter with
// its message, the money it did not take back is accounted for, and it is shown.
const abandoned = handle.output<DeadLetter>('dead-letters').filter((letter) => letter.code === 'EDDY_COMPENSATION_FAILED');
for (const letter of abandoned) {
  const undo = JSON.parse(Buffer.from(letter.payloadBase64 ?? '', 'base64').toString('utf8')) as { op: string; amount: number };
  expectedTotal += undo.op === 'subtract' ? undo.amount : -undo.amount;
  console.log(`  ${letter.code}: ${letter.reason}`);
}

console.log(`\n${responses.length} responses in ${seconds.toFixed(1)} s (${Math.round(requests.length / seconds)} requests/s), ` +
  `latency p50 ${summary.latency.p50Ms.toFixed(1)} ms, p99 ${summary.latency.p99Ms.toFixed(1)} ms`);
for (const [key, count] of [...counts].sort()) console.log(`  ${key.padEnd(20)} ${count}`);
console.log(`  ${'dead letters'.padEnd(20)} ${summary.egress['dead-letters'] ?? 0}`);
const t = summary.totals;
console.log(`transactions (2PC): ${t.transactionsCommitted} committed, ${t.transactionsAborted} aborted, ${t.transactionsRetryable} retryable ` +
  `(deadlock victims, retried; ${t.deadlocksFound} deadlocks found); sagas: ${t.sagasSucceeded} succeeded, ${t.sagasFailed} compensated; ${legs.length} leg responses`);
const ok = answered.size === requests.length && responses.length === requests.length && total === expectedTotal;
console.log(`total balance ${total} (expected ${expectedTotal}): ${ok ? 'books balance, every request answered once' : 'MISMATCH'}`);
process.exitCode = ok ? 0 : 1;
