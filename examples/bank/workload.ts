/**
 * A seeded YCSB-style workload for the bank: first an insert per account, then a mix of reads,
 * writes, adds and subtracts over uniformly chosen accounts. The same seed gives the same requests.
 */
import { type AccountRecord, FIELD_COUNT } from './account.js';

/** One request record on the `requests` ingress. */
export type BankRequest =
  | { requestId: string; account: string; op: 'insert'; record: AccountRecord }
  | { requestId: string; account: string; op: 'read' }
  | { requestId: string; account: string; op: 'write'; field: number; value: string }
  | { requestId: string; account: string; op: 'add' | 'subtract'; amount: number }
  /** `account` names the coordinator instance that runs the transfer (one transfer at a time each). */
  | { requestId: string; account: string; op: 'transfer'; protocol: '2pc' | 'saga'; from: string; to: string; amount: number };

export interface WorkloadMix {
  read: number;
  write: number;
  add: number;
  subtract: number;
  /** Transfers as two-phase commit and as sagas. Default: none. */
  transfer2pc?: number;
  transferSaga?: number;
}

/** Coordinator instances transfers are spread over. */
export const TRANSFER_COORDINATORS = 64;

export interface WorkloadOptions {
  accounts: number;
  operations: number;
  seed: number;
  mix?: WorkloadMix;
  initialBalance?: number;
  /** Amounts of add/subtract are uniform in 1..maxAmount. */
  maxAmount?: number;
}

/** mulberry32: small, fast, good enough for workloads; every random choice derives from the seed. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function accountId(index: number): string {
  return `account-${index}`;
}

function randomField(random: () => number): string {
  let hex = '';
  for (let i = 0; i < 4; i++) hex += Math.floor(random() * 0x100000000).toString(16).padStart(8, '0');
  return hex;
}

export function randomRecord(random: () => number, balance: number): AccountRecord {
  return { fields: Array.from({ length: FIELD_COUNT }, () => randomField(random)), balance };
}

export function insertRequests(accounts: number, seed: number, initialBalance = 10_000): BankRequest[] {
  const random = seededRandom(seed);
  return Array.from({ length: accounts }, (_, i) => ({
    requestId: `insert-${i}`,
    account: accountId(i),
    op: 'insert' as const,
    record: randomRecord(random, initialBalance),
  }));
}

export function operationRequests(options: WorkloadOptions): BankRequest[] {
  const mix = options.mix ?? { read: 0.4, write: 0.2, add: 0.2, subtract: 0.2 };
  const total = mix.read + mix.write + mix.add + mix.subtract + (mix.transfer2pc ?? 0) + (mix.transferSaga ?? 0);
  const random = seededRandom(options.seed ^ 0x5eed);
  const maxAmount = options.maxAmount ?? 100;
  const requests: BankRequest[] = [];
  for (let i = 0; i < options.operations; i++) {
    const account = accountId(Math.floor(random() * options.accounts));
    const requestId = `op-${i}`;
    let pick = random() * total;
    if ((pick -= mix.read) < 0) requests.push({ requestId, account, op: 'read' });
    else if ((pick -= mix.write) < 0) {
      requests.push({ requestId, account, op: 'write', field: Math.floor(random() * FIELD_COUNT), value: randomField(random) });
    } else if ((pick -= mix.add) < 0) requests.push({ requestId, account, op: 'add', amount: 1 + Math.floor(random() * maxAmount) });
    else if ((pick -= mix.subtract) < 0) requests.push({ requestId, account, op: 'subtract', amount: 1 + Math.floor(random() * maxAmount) });
    else {
      const protocol = (pick -= mix.transfer2pc ?? 0) < 0 ? '2pc' : 'saga';
      const to = accountId((Number(account.slice('account-'.length)) + 1 + Math.floor(random() * (options.accounts - 1))) % options.accounts);
      const coordinator = `${protocol}-${i % TRANSFER_COORDINATORS}`;
      requests.push({ requestId, account: coordinator, op: 'transfer', protocol, from: account, to, amount: 1 + Math.floor(random() * maxAmount * 5) });
    }
  }
  return requests;
}
