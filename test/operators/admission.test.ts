import t from 'tap';
import { AdmissionLimit } from '../../operators/coordinators/admission.js';

const end = (limit: AdmissionLimit, count: number, waited: (i: number) => boolean): void => {
  for (let i = 0; i < count; i++) limit.transactionEnded(waited(i));
};

void t.test('the admission limit halves while most transactions wait for locks, down to 1 and no further', async (t) => {
  const limit = new AdmissionLimit(256);
  t.equal(limit.current, 256, 'it starts at maxTransactionsPerWorker');
  end(limit, 64, () => true);
  t.equal(limit.current, 128, 'one window (64 transactions) that all waited halves it');
  end(limit, 10_000, () => true);
  t.equal(limit.current, 1, 'under lasting contention it reaches 1');
});

void t.test('without contention the limit grows back by a quarter per window, up to the maximum', async (t) => {
  const limit = new AdmissionLimit(100);
  end(limit, 10_000, () => true);
  t.equal(limit.current, 1);
  end(limit, 16, () => false);
  t.equal(limit.current, 2, 'a window of 16 that did not wait: 1 -> 2 (rounded up)');
  end(limit, 10_000, () => false);
  t.equal(limit.current, 100, 'it never exceeds the maximum');
});

void t.test('moderate contention keeps the limit where it is', async (t) => {
  const limit = new AdmissionLimit(64);
  end(limit, 64 * 20, (i) => i % 2 === 0);
  t.equal(limit.current, 64, 'half of them waited: neither shrinks nor grows');
});
