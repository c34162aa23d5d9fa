import t from 'tap';
import fifoJob, { type FifoMessage, type FifoTrace } from '../fixtures/fifo-job.js';
import { groupBy, run } from '../fixtures/harness.js';

void t.test('per address, async invocations run one at a time in arrival order while other addresses overlap', async (t) => {
  const ADDRESSES = 16;
  const PER_ADDRESS = 40;
  // Record i goes to split i mod 16 (see the fixture), so each address's records share one FIFO path.
  const records: FifoMessage[] = Array.from({ length: ADDRESSES * PER_ADDRESS }, (_, i) => ({ id: `a${i % ADDRESSES}`, seq: i }));
  const handle = run(t, fifoJob, { workers: 2, inputs: { in: records } });
  const summary = await handle.done;
  t.equal(summary.endedBy, 'end-of-input');
  const traces = handle.output<FifoTrace>('trace');
  t.equal(traces.length, records.length, 'one trace per record');

  const byAddress = groupBy(traces, (trace) => trace.id);
  t.equal(byAddress.size, ADDRESSES);
  for (const [id, list] of byAddress) {
    const expected = records.filter((r) => r.id === id).map((r) => r.seq);
    t.same(list.map((trace) => trace.seq), expected, `${id}: egress in input order`);
    // Each invocation saw exactly the seqs before it in its state: processed in order, none twice.
    list.forEach((trace, i) => {
      if (JSON.stringify(trace.before) !== JSON.stringify(expected.slice(0, i))) t.fail(`${id} seq ${trace.seq} saw state ${JSON.stringify(trace.before)}`);
    });
    t.notOk(list.some((trace) => trace.sameAddressOverlap), `${id}: never two invocations at once`);
    const sorted = [...list].sort((a, b) => a.start - b.start);
    for (let i = 1; i < sorted.length; i++) {
      if (sorted[i]!.start < sorted[i - 1]!.end) t.fail(`${id}: seq ${sorted[i]!.seq} started before seq ${sorted[i - 1]!.seq} ended`);
    }
    t.equal(new Set(list.map((trace) => trace.thread)).size, 1, `${id}: always on the same thread`);
  }

  // Different addresses overlap: in one thread, and in time across the whole job.
  const maxInFlight = Math.max(...traces.map((trace) => trace.inFlightAtStart));
  t.ok(maxInFlight > 1, `a thread ran up to ${maxInFlight} invocations at once`);
  let overlappingPairs = 0;
  const all = [...traces].sort((a, b) => a.start - b.start);
  for (let i = 0; i < all.length; i++) {
    for (let j = i + 1; j < all.length && all[j]!.start < all[i]!.end; j++) if (all[j]!.id !== all[i]!.id) overlappingPairs++;
  }
  t.ok(overlappingPairs > records.length / 4, `${overlappingPairs} pairs of invocations of different addresses overlapped in time`);
  t.equal(new Set(traces.map((trace) => trace.thread)).size, 2, 'both workers ran invocations');
});
