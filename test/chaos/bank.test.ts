// The fault campaign, short (about 2-3 minutes): every fault kind at least once at seeded random
// moments, against the chaos bank job over a Kafka broker of the test's own. Each check of
// campaign.ts is one assertion, listing the violating request ids; `npm run chaos` is the long run.
// EDDY_TEST_SEED picks the seed (default 1).
import t from 'tap';
import { FAULT_KINDS, runCampaign } from './campaign.js';

const CHECKS = [
  'unanswered', 'answered-twice', 'unexpected-response', 'garbled-response', 'read-failed', 'read-incomplete', 'read-not-serializable',
  'balance-mismatch', 'saga-not-conserved', 'must-fail-succeeded', 'must-fail-effect', 'native-crash', 'job-failed', 'stop-hung', 'nemesis-failed', 'unexpected-dead-letter',
] as const;

t.setTimeout(420_000);

void t.test('bank under faults: every request answered once, reads serializable, balances explained by committed transfers, no crash', async (t) => {
  const seed = Number(process.env.EDDY_TEST_SEED ?? 1);
  t.comment(`seed ${seed} (EDDY_TEST_SEED)`);
  const result = await runCampaign({ seed, durationMs: 60_000, drainMs: 45_000, log: (line) => t.comment(line) });
  for (const kind of FAULT_KINDS) {
    const skip = result.skipped.find((s) => s.kind === kind);
    if (skip !== undefined) t.comment(`fault kind ${kind} skipped: ${skip.why}`);
    else t.ok(result.faults.some((f) => f.kind === kind), `fault ${kind} injected at least once`);
  }
  t.ok(result.answered > 0, `requests answered (${result.answered} of ${result.requests})`);
  t.comment(`${result.republishedAfterFallback} responses published again after a fallback past a corrupt checkpoint (documented at-least-once for those epochs), ${result.answersChangedByFallback} with another answer than the first`);
  for (const check of CHECKS) {
    const found = result.violations.filter((v) => v.check === check);
    t.same(found.map((v) => `${v.requestId ?? '-'}: ${v.detail}`).slice(0, 20), [], `check ${check}: no violation (${found.length} found, seed ${seed})`);
  }
  const unknown = result.violations.filter((v) => !(CHECKS as readonly string[]).includes(v.check));
  t.same(unknown, [], 'no violation of another kind');
});
