/**
 * `npm run bench -- <benchmark> [--duration s] [--workers 1,2] [--keys 100,5000] [--seed n] [--json] [--no-write]`
 * Benchmarks: ycsb, checkpoint, kafka (needs a broker: `scripts/with-kafka npm run bench -- kafka`).
 */
import { parseFlags } from './harness.js';
import { runCheckpointBench } from './checkpoint.js';
import { runKafkaBench } from './kafka.js';
import { runYcsb } from './ycsb.js';

const [name, ...rest] = process.argv.slice(2);
const command = `npm run bench -- ${process.argv.slice(2).join(' ')}`;
switch (name) {
  case 'ycsb':
    await runYcsb(parseFlags(rest, { workers: [1, 2], keys: [100, 5000, 10000] }), command);
    break;
  case 'checkpoint':
    await runCheckpointBench(parseFlags(rest, { workers: [2], keys: [10000, 100000, 1000000] }), command);
    break;
  case 'kafka':
    await runKafkaBench(parseFlags(rest, { workers: [2], keys: [1000] }), command);
    break;
  default:
    console.error(`usage: npm run bench -- ycsb|checkpoint|kafka [--duration s] [--workers 1,2] [--keys 100,5000,10000] [--seed n] [--json] [--no-write]`);
    process.exitCode = 2;
}
