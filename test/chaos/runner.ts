/**
 * The fault campaign's job process: what `eddy run test/fixtures/chaos-kafka-bank-job.ts` does, plus
 * the one fault hook the CLI lacks, a worker kill. The driver (campaign.ts) runs it as a child so
 * that it can SIGKILL the whole process and start it again with `--restore latest`.
 *
 *   node --import tsx test/chaos/runner.ts --workers N --checkpoint-dir D --state-dir S
 *        [--checkpoint-interval-ms MS] [--restore latest]
 *
 * stdin, one command a line: `kill <worker>` (handle.killWorker), `stop` (a clean stop).
 * stdout, one JSON event a line: {event:'started'}, {event:'killed',worker}, {event:'kill-refused',
 * worker,error}, {event:'done',summary}, {event:'failed',code,error} (then exit code 1).
 */
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { submit } from '../../index.js';
import job from '../fixtures/chaos-kafka-bank-job.js';

const { values } = parseArgs({
  options: {
    workers: { type: 'string' },
    'checkpoint-dir': { type: 'string' },
    'state-dir': { type: 'string' },
    'checkpoint-interval-ms': { type: 'string', default: '500' },
    restore: { type: 'string' },
  },
});

const emit = (event: Record<string, unknown>): void => {
  process.stdout.write(`${JSON.stringify(event)}\n`);
};

const handle = submit(job, {
  workers: Number(values.workers ?? 2),
  checkpointDir: values['checkpoint-dir'],
  stateDir: values['state-dir'],
  checkpointIntervalMs: Number(values['checkpoint-interval-ms']),
  ...(values.restore !== undefined && { restoreFrom: values.restore === 'latest' ? 'latest' : Number(values.restore) }),
  // Faults come every few seconds and one may fail several attempts (a broker outage fails sources
  // and sinks alike): a budget per minute that such a schedule stays under, as an operator would set.
  restartStrategy: { maxFailures: 60, intervalMs: 60_000 },
  log: (line) => process.stderr.write(`${line}\n`),
});
emit({ event: 'started', pid: process.pid });

// Every 5 s the transaction figures of each worker go to the job log: after a violation they tell
// whether 2PC was stuck (slots held, requests waiting, locks held) or merely slow.
const figures = setInterval(() => {
  handle.metrics().then(
    ({ perWorker }) => {
      const each = perWorker.map((w, i) => `w${i} running ${w.transactionsRunning}/${w.transactionLimit} waiting ${w.transactionsWaiting} locks ${w.locksHeld} sagas ${w.sagasRunning}`);
      process.stderr.write(`${new Date().toISOString()} transactions: ${each.join('; ')}\n`);
    },
    () => {},
  );
}, 5000);
figures.unref();

createInterface({ input: process.stdin }).on('line', (line) => {
  const [command, arg] = line.trim().split(/\s+/);
  if (command === 'kill') {
    const worker = Number(arg);
    handle.killWorker(worker).then(
      () => emit({ event: 'killed', worker }),
      (error: unknown) => emit({ event: 'kill-refused', worker, error: String((error as Error)?.message ?? error) }),
    );
  } else if (command === 'stop') void handle.stop().catch(() => {});
});

handle.done.then(
  (summary) => {
    emit({ event: 'done', summary: { endedBy: summary.endedBy, restarts: summary.restarts, checkpoints: summary.checkpoints.length } });
    process.exit(0);
  },
  (error: unknown) => {
    const e = error as { code?: string; message?: string };
    emit({ event: 'failed', code: e?.code ?? 'unknown', error: String(e?.message ?? error) });
    process.exit(1);
  },
);
