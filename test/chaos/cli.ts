/**
 * `npm run chaos -- --duration 600 --seed N`: the fault campaign (campaign.ts) for a long run. Prints
 * the faults injected, the requests answered, recovery times and every violation, as a table, and
 * writes the same into the "Fault campaign" section of bench/RESULTS.md with the machine and the
 * command. Exit code 1 when a check failed.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { type CampaignResult, resultTable, runCampaign } from './campaign.js';

const { values } = parseArgs({
  options: {
    duration: { type: 'string', default: '600' },
    seed: { type: 'string' },
    'no-results': { type: 'boolean', default: false },
  },
});
const seed = values.seed !== undefined ? Number(values.seed) : Date.now() % 1_000_000;
const duration = Number(values.duration);
if (!Number.isInteger(seed) || !Number.isFinite(duration) || duration <= 0) {
  process.stderr.write('usage: npm run chaos -- [--duration SECONDS (default 600)] [--seed N] [--no-results]\n');
  process.exit(2);
}

const result = await runCampaign({ seed, durationMs: duration * 1000 });
const report = formatReport(result, `npm run chaos -- --duration ${duration} --seed ${seed}`);
process.stdout.write(`${report}\n`);
if (!values['no-results']) writeSection(report);
process.exit(result.violations.length === 0 ? 0 : 1);

function formatReport(r: CampaignResult, command: string): string {
  const cpu = cpus();
  const lines = [
    `Machine: ${cpu.length} cores (${cpu[0]?.model.trim() ?? 'unknown'}), Node ${process.version}, ${process.platform}/${process.arch}. Date: ${new Date().toISOString().slice(0, 10)}.`,
    '',
    `Command: \`${command}\``,
    '',
    `Seed ${r.seed}: ${r.faults.length} faults injected over ${(r.durationMs / 1000).toFixed(0)} s (faults, drain and checks), ${r.requests} requests, ${r.answered} answered; recovery (end of a fault to the next committed response) median ${r.recovery.medianMs} ms, max ${r.recovery.maxMs} ms, ${r.recovery.unrecovered} faults with no response after them; ${r.republishedAfterFallback} responses published again after a restore fell back past a corrupt checkpoint (at-least-once by design for those epochs), ${r.answersChangedByFallback} of them with another answer than the first; ${r.compensationsAbandoned} saga compensations given up (dead letters, accounted for).`,
    '',
    resultTable([r]),
    '',
  ];
  if (r.violations.length === 0) lines.push('Violations: none.');
  else {
    const counts = new Map<string, number>();
    for (const v of r.violations) counts.set(v.check, (counts.get(v.check) ?? 0) + 1);
    lines.push(`Violations: ${r.violations.length} (${[...counts].map(([c, n]) => `${c} ${n}`).join(', ')}):`, '');
    for (const v of r.violations.slice(0, 40)) lines.push(`- ${v.check}${v.requestId === undefined ? '' : ` \`${v.requestId}\``}: ${v.detail}`);
    if (r.violations.length > 40) lines.push(`- ... and ${r.violations.length - 40} more`);
  }
  lines.push('', 'Faults in order:', '');
  for (const f of r.faults) lines.push(`- ${(f.at / 1000).toFixed(1)} s ${f.kind}: ${f.detail}; recovery ${f.recoveryMs === undefined ? 'none seen' : `${f.recoveryMs} ms`}`);
  return lines.join('\n');
}

/** Replaces (or appends) the "## Fault campaign" section of bench/RESULTS.md. */
function writeSection(report: string): void {
  const file = join(dirname(fileURLToPath(import.meta.url)), '../../bench/RESULTS.md');
  const text = readFileSync(file, 'utf8');
  const heading = '## Fault campaign';
  const intro =
    'Each run is `test/chaos/`: the chaos bank job (2PC transfers and group reads, sagas, transfers that must fail) over a Kafka broker of its own, with faults at seeded random moments; the checks are those of test/chaos/campaign.ts (every request answered once, group reads sum to the group total, balances = initial + committed deltas, sagas conserve, must-fail transfers leave no effect, no native crash).';
  const section = `${heading}\n\n${intro}\n\n${report}\n`;
  const start = text.indexOf(`${heading}\n`);
  let next: string;
  if (start < 0) next = `${text.trimEnd()}\n\n${section}`;
  else {
    const end = text.indexOf('\n## ', start + heading.length);
    next = text.slice(0, start) + section + (end < 0 ? '' : text.slice(end));
  }
  writeFileSync(file, next);
}
