import t from 'tap';
import fc from 'fast-check';
import { keyGroupOf, ownerOfKeyGroup, DEFAULT_MAX_PARALLELISM } from '../../index.js';
import hopsJob, { type HopsDelivery, type HopsInput, type HopsVisit } from '../fixtures/hops-job.js';
import { groupBy, run } from '../fixtures/harness.js';

const TYPES = ['e2e-hops/a', 'e2e-hops/b', 'e2e-hops/c'] as const;
const hop = fc.record({ type: fc.constantFrom(...TYPES), id: fc.constantFrom(...Array.from({ length: 12 }, (_, i) => `n${i}`)) });
const graph = fc.record({
  workers: fc.integer({ min: 1, max: 3 }),
  messages: fc.array(fc.array(hop, { minLength: 1, maxLength: 8 }), { minLength: 1, maxLength: 60 }),
});

void t.test('function-to-function messages along random paths across 1..3 workers arrive exactly once, in the owner thread', async (t) => {
  let runs = 0;
  await fc.assert(
    fc.asyncProperty(graph, async ({ workers, messages }) => {
      runs++;
      const inputs: HopsInput[] = messages.map((hops, i) => ({ msg: `m${i}`, hops }));
      const handle = run(t, hopsJob, { workers, inputs: { in: inputs } });
      const summary = await handle.done;
      const delivered = handle.output<HopsDelivery>('delivered');
      const visits = handle.output<HopsVisit>('visits');

      // Every message ends exactly once, after exactly its hops, in order.
      const byMsg = groupBy(delivered, (d) => d.msg);
      if (byMsg.size !== inputs.length || delivered.length !== inputs.length) return false;
      for (const input of inputs) {
        const trace = byMsg.get(input.msg)?.[0]?.trace;
        if (trace === undefined) return false;
        if (JSON.stringify(trace.map(({ type, id }) => ({ type, id }))) !== JSON.stringify(input.hops)) return false;
      }
      // Each hop ran in the thread that owns its id's key group: one thread per owner, distinct ones.
      const threadOfOwner = new Map<number, number>();
      for (const d of delivered) {
        for (const step of d.trace) {
          const owner = ownerOfKeyGroup(keyGroupOf(step.id, DEFAULT_MAX_PARALLELISM), workers, DEFAULT_MAX_PARALLELISM);
          if ((threadOfOwner.get(owner) ?? step.thread) !== step.thread) return false;
          threadOfOwner.set(owner, step.thread);
        }
      }
      if (new Set(threadOfOwner.values()).size !== threadOfOwner.size) return false;
      // Per instance, the visit counter in state went 1, 2, ..., n with n its number of hops.
      const expectedVisits = new Map<string, number>();
      for (const input of inputs) for (const h of input.hops) expectedVisits.set(`${h.type}:${h.id}`, (expectedVisits.get(`${h.type}:${h.id}`) ?? 0) + 1);
      const byInstance = groupBy(visits, (v) => `${v.type}:${v.id}`);
      if (byInstance.size !== expectedVisits.size) return false;
      for (const [instance, n] of expectedVisits) {
        const counts = (byInstance.get(instance) ?? []).map((v) => v.visits).sort((a, b) => a - b);
        if (JSON.stringify(counts) !== JSON.stringify(Array.from({ length: n }, (_, i) => i + 1))) return false;
      }
      const hops = inputs.reduce((sum, input) => sum + input.hops.length, 0);
      return summary.totals.invocations === hops && summary.totals.messagesSent === hops - inputs.length && summary.totals.deadLetters === 0;
    }),
    { numRuns: 8, endOnFailure: true },
  );
  t.equal(runs, 8, 'ran 8 random graphs');
});
