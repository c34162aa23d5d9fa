/**
 * `npm run bench -- <benchmark> [--duration s] [--workers 1,2] [--keys 100,5000] [--seed n] [--json] [--no-write]`
 * Benchmarks: ycsb, ycsb-t (transfers as 2PC and sagas; see bench/ycsb-t.ts for its own flags), checkpoint,
 * kafka (needs a broker: `scripts/with-kafka npm run bench -- kafka`).
 */
import { parseFlags } from './harness.js';
import { runCheckpointBench } from './checkpoint.js';
import { runKafkaBench } from './kafka.js';
import { runYcsb } from './ycsb.js';
import { runYcsbT } from './ycsb-t.js';

const [name, ...rest] = process.argv.slice(2);
const command = `npm run bench -- ${process.argv.slice(2).join(' ')}`;
switch (name) {
  case 'ycsb':
    await runYcsb(parseFlags(rest, { workers: [1, 2], keys: [100, 5000, 10000] }), command);
    break;
  case 'ycsb-t': {
    // ycsb-t has flags of its own: the shared parser sees only the common ones.
    const own = new Set(['--transfer-ratios', '--protocols', '--fail-ratios', '--zipfian', '--max-transactions', '--latency-load']);
    const common: string[] = [];
    for (let i = 0; i < rest.length; i++) {
      const arg = rest[i]!;
      if (!own.has(arg)) common.push(arg);
      else if (arg !== '--zipfian') i++;
    }
    await runYcsbT(parseFlags(common, { workers: [2], keys: [5000] }), rest, command);
    break;
  }
  case 'checkpoint':
    await runCheckpointBench(parseFlags(rest, { workers: [2], keys: [10000, 100000, 1000000] }), command);
    break;
  case 'kafka':
    await runKafkaBench(parseFlags(rest, { workers: [2], keys: [1000] }), command);
    break;
  default:
    console.error(`usage: npm run bench -- ycsb|ycsb-t|checkpoint|kafka [--duration s] [--workers 1,2] [--keys 100,5000,10000] [--seed n] [--json] [--no-write]`);
    process.exitCode = 2;
}
