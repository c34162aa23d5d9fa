/**
 * `npm run bench -- <benchmark> [--duration s] [--workers 1,2] [--keys 100,5000] [--seed n] [--json] [--no-write] [--plot]`
 * `npm run bench -- --help` lists the benchmarks and their flags.
 */
import { FlagError, parseFlags } from './harness.js';
import { runCheckpointBench } from './checkpoint.js';
import { runKafkaBench } from './kafka.js';
import { runMapStateBench } from './map-state.js';
import { runStatefunBench } from './statefun.js';
import { runYcsb } from './ycsb.js';
import { runYcsbT } from './ycsb-t.js';

const USAGE = `usage: npm run bench -- <benchmark> [flags]

benchmarks:
  ycsb        YCSB reads and writes (memory connector, LevelDB state)
  ycsb-t      transfers as two-phase commit and sagas, with reads and writes
  checkpoint  what a checkpoint every second costs, and how long a restore takes
  kafka       YCSB over Kafka (needs a broker: scripts/with-kafka npm run bench -- kafka)
  statefun    the same Kafka job embedded, served by eddy serve behind Flink StateFun, and as a Python SDK function behind StateFun
  map-state   single-entry reads and writes of maps with --keys entries per instance (default 10000), mapState against one valueState object

flags of every benchmark:
  --duration <s>        measured seconds per run (default 3)
  --workers <n,n,...>   worker counts to run
  --keys <n,n,...>      key counts to run
  --seed <n>            workload seed (default 42)
  --json                one JSON object per run on stdout
  --no-write            do not update bench/RESULTS.md
  --plot                also draw SVG charts into bench/plots/ (ycsb, checkpoint, kafka, statefun)

flags of ycsb-t:
  --transfer-ratios <%,...>  share of transfers (default 100)
  --protocols tpc,saga       protocols to run
  --fail-ratios <%,...>      share of transfers that fail in their second leg (default 0)
  --zipfian                  zipfian (0.99) keys instead of uniform
  --max-transactions <n,...> maxTransactionsPerWorker (2PC) or maxSagasPerWorker (sagas)
  --latency-load <share>     share of the maximum for the latency run (default 0.8)`;

/** The flags only ycsb-t knows, and whether each takes a value. */
const YCSB_T_FLAGS = new Map([
  ['--transfer-ratios', true],
  ['--protocols', true],
  ['--fail-ratios', true],
  ['--zipfian', false],
  ['--max-transactions', true],
  ['--latency-load', true],
]);

/** The benchmarks that draw charts with --plot. */
const PLOTTED = new Set(['ycsb', 'checkpoint', 'kafka', 'statefun']);

async function run(name: string | undefined, rest: string[], command: string): Promise<void> {
  if (rest.includes('--plot') && name !== undefined && !PLOTTED.has(name)) throw new FlagError(`--plot: ${name} has no charts yet; ${[...PLOTTED].join(', ')} have`);
  switch (name) {
    case 'ycsb':
      return runYcsb(parseFlags(rest, { workers: [1, 2], keys: [100, 5000, 10000] }), command);
    case 'ycsb-t': {
      // The shared parser sees only the common flags; ycsb-t reads its own from the whole list.
      const common: string[] = [];
      for (let i = 0; i < rest.length; i++) {
        const takesValue = YCSB_T_FLAGS.get(rest[i]!);
        if (takesValue === undefined) common.push(rest[i]!);
        else if (takesValue) i++;
      }
      return runYcsbT(parseFlags(common, { workers: [2], keys: [5000] }), rest, command);
    }
    case 'checkpoint':
      return runCheckpointBench(parseFlags(rest, { workers: [2], keys: [10000, 100000, 1000000] }), command);
    case 'map-state':
      return runMapStateBench(parseFlags(rest, { workers: [2], keys: [10000] }), command);
    case 'kafka':
      return runKafkaBench(parseFlags(rest, { workers: [2], keys: [1000] }), command);
    case 'statefun':
      return runStatefunBench(parseFlags(rest, { workers: [2], keys: [1000] }), command);
    default:
      throw new FlagError(`unknown benchmark ${JSON.stringify(name)}`);
  }
}

const [name, ...rest] = process.argv.slice(2);
if (name === undefined) {
  console.error(USAGE);
  process.exitCode = 2;
} else if (name === '--help' || name === '-h' || rest.includes('--help') || rest.includes('-h')) {
  console.log(USAGE);
} else {
  try {
    await run(name, rest, `npm run bench -- ${process.argv.slice(2).join(' ')}`);
  } catch (error) {
    // A flag mistake: say what is wrong and how to ask for the flags, without a stack trace.
    if (!(error instanceof FlagError || isParseArgsError(error))) throw error;
    console.error(`npm run bench: ${(error as Error).message}\nsee: npm run bench -- --help`);
    process.exitCode = 2;
  }
}

function isParseArgsError(error: unknown): boolean {
  const code = (error as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS_');
}
